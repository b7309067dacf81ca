"""Every option of a run, defined once.

The absl flags of run_xtreme_distil.py and of the benchmarks are made from `Options` (names,
defaults, help, choices), config.json stores it (`manifest.py`), and library code takes it as a
plain dataclass: library code never reads flags.
"""

import dataclasses
import os

DATA, TEACHER, STUDENT, DISTIL, RUN = "data", "teacher", "student", "distillation", "run"


def option(default, help_text, group, choices=None):
    """A dataclass field with the flag's help, group and (for enums) choices."""
    return dataclasses.field(default=default, metadata={
        "help": help_text, "group": group, "choices": choices})


@dataclasses.dataclass(frozen=True)
class Options:
    """The options of a run (flag names of the original XtremeDistil where they exist)."""
    # === Data ===
    task: str = option("data/demo", "Folder with train, dev and test files ('train.tsv' or "
                       "'train-<lang>.tsv' ...) and an optional labels.tsv.", DATA)
    transfer_file: str = option(
        "data/demo/transfer.txt", "Unlabeled sentences for distillation (required, at least "
        "2): one sentence a line, or the column format (tags ignored). Read as a stream, "
        "chunk by chunk.", DATA)
    train_file: str = option("", "Comma-separated train files; overrides --task's.", DATA)
    dev_file: str = option("", "Comma-separated dev files; overrides --task's.", DATA)
    test_file: str = option("", "Comma-separated test files; overrides --task's.", DATA)
    data_format: str = option(
        "auto", "Labeled file format: 'xtremedistil' (tokens<TAB>tags a line), 'columns' "
        "(CoNLL / WikiANN: token ... tag a line), or 'auto' to detect per file.", DATA,
        ["auto", "xtremedistil", "columns"])
    tag_scheme: str = option("iob2", "Tag scheme of the labeled files; IOB1 (CoNLL-2003/2002) "
                             "is converted to IOB2.", DATA, ["iob2", "iob1"])
    encoding: str = option("utf-8", "Text encoding of the data files (CoNLL-2002: latin-1).",
                           DATA)
    language: str = option("", "Language of sentences whose file gives none (no tag prefix, "
                           "no '-<lang>' in the file name). Empty: 'default'.", DATA)
    skip_bad_lines: bool = option(False, "Skip bad sentences (and report how many) instead of "
                                  "stopping at the first.", DATA)
    max_transfer: int = option(0, "Use at most this many transfer sentences (0: all).", DATA)
    augment_transfer: int = option(
        0, "Augmented copies of each training transfer example the teacher labels too (Tang "
        "et al. 2019: words masked with probability 0.1, then with probability 0.25 a random "
        "n-gram of 1-5 words kept; pairs masked only), for small transfer sets "
        "(xtremedistil/augment.py). 0: none.", DATA)
    seq_len: int = option(32, "Word pieces per sentence (a pair: per pair for the teacher, "
                          "per text for the student); longer ones are truncated for the model "
                          "(NER: their cut words scored as 'O').", DATA)
    do_NER: bool = option(True, "Token classification (NER): the 'tagging' task; false: "
                          "sentence classification (train/dev/test lines 'text<TAB>label'), "
                          "or with --do_pairwise sentence-pair classification.", DATA)
    do_pairwise: bool = option(False, "With --do_NER=false: classify sentence pairs, lines "
                               "'text_a<TAB>text_b<TAB>label' (transfer: 'text_a<TAB>text_b'); "
                               "the teacher reads the pair with segment ids, the student both "
                               "texts through the same BiLSTM.", DATA)

    # === Teacher ===
    pt_teacher: str = option("auto", "transformers TF class of the teacher (e.g. TFBertModel), "
                             "or 'auto' to read it from the checkpoint's config.json.", TEACHER)
    pt_teacher_checkpoint: str = option(
        "all-minilm-l6-v2", "The pre-trained teacher: a local folder (config.json, tokenizer "
        "files, and model.safetensors, tf_model.h5 or pytorch_model.bin), or a name this "
        "project builds locally from installed packages: 'all-minilm-l6-v2' (MiniLM-L6-H384, "
        "English, uncased) or 'multilingual-e5-small' (XLM-R shape, ~100 languages).", TEACHER)
    teacher_layer: int = option(-1, "Teacher layer whose hidden states stage 1 distils (0: "
                                "embeddings, -1: the last layer; the original code: 6).",
                                TEACHER)
    ft_batch_size: int = option(16, "Teacher fine-tuning batch size per replica.", TEACHER)
    ft_epochs: int = option(10, "Teacher fine-tuning epochs (early stopping on dev F1).",
                            TEACHER)
    ft_learning_rate: float = option(1e-4, "Teacher fine-tuning peak learning rate (the "
                                     "original code: 1e-5).", TEACHER)
    teacher_recipe: str = option(
        "ours", "Teacher fine-tuning: 'ours' AdamW (weight decay 0.01), linear warm-up over "
        "10% of the steps to --ft_learning_rate then linear decay, loss on the first piece of "
        "each word; 'paper' the original code's: Adam, per epoch a linear warm-up over 10 "
        "epochs to --ft_learning_rate then exponential decay to 1/100 of it at --ft_epochs, "
        "loss on every real piece (continuation pieces tagged I- of their word, [CLS] and "
        "[SEP] O). Both stop early on dev F1.", TEACHER, ["ours", "paper"])

    # === Student ===
    student: str = option("bilstm", "Student architecture, a name registered in "
                          "xtremedistil/students/: 'bilstm' (the smallest and fastest) or "
                          "'transformer' (a small BERT-style encoder).", STUDENT)
    student_vocab: str = option(
        "full", "The student's word pieces: 'full' the teacher's whole vocabulary (words "
        "unseen in training keep their factorised teacher embedding), 'seen' only those of "
        "the train and transfer sets (a smaller embedding; others become [UNK], e.g. for "
        "teachers with a 250k vocabulary).", STUDENT, ["full", "seen"])
    student_vocab_size: int = option(
        0, "With --student_vocab=seen: keep only this many pieces, those seen most often in the "
        "train and transfer sets (rarer ones become [UNK]; a cap on the embedding table's "
        "size); 0 keeps every seen piece.", STUDENT)
    word_emb_dim: int = option(100, "Student word embedding size (the teacher's embeddings, "
                               "factorised: --compress_word_embedding). The transformer "
                               "student projects them to --hidden_size; equal to it, the "
                               "projection starts as the identity (PCA to the encoder's "
                               "width).", STUDENT)
    compress_word_embedding: bool = option(
        True, "Start the student's word embeddings from the teacher's, compressed by PCA to "
        "--word_emb_dim (--pca_rescale); false: random (the transformer student from "
        "--pt_student_checkpoint: that folder's).", STUDENT)
    freeze_word_embedding: bool = option(
        False, "Keep the student's word embeddings as they start (--compress_word_embedding "
        "or --pt_student_checkpoint) in every stage; the transformer's projection to "
        "--hidden_size still trains.", STUDENT)
    bilstm_hidden_size: int = option(128, "Student LSTM units per direction.", STUDENT)
    num_hidden_layers: int = option(4, "--student=transformer: encoder layers.", STUDENT)
    hidden_size: int = option(256, "--student=transformer: width of the encoder (the word "
                              "embeddings, --word_emb_dim wide, are projected to it).", STUDENT)
    num_attention_heads: int = option(4, "--student=transformer: attention heads a layer; "
                                      "must divide --hidden_size.", STUDENT)
    intermediate_size: int = option(1024, "--student=transformer: width of each layer's "
                                    "feed-forward block.", STUDENT)
    pt_student_checkpoint: str = option(
        "", "--student=transformer: start the student's encoder from this transformers BERT "
        "folder (e.g. export/checkpoint/ of an earlier run: task transfer); its shape must "
        "match the student options, with --word_emb_dim equal to --hidden_size.", STUDENT)
    init_student_from: str = option(
        "", "Start the student as the best student of this finished run (its --model_dir) of "
        "the same task, labels, student shape and vocabulary, every layer (output layer "
        "included): a further pass over a finished student, e.g. --distil_mode=soft "
        "--lr_schedule=cosine. Unlike --pt_student_checkpoint (another task's encoder), "
        "nothing restarts.", STUDENT)
    dropout_rate: float = option(0.1, "Student dropout rate (where --student_dropout puts "
                                 "it).", STUDENT)
    student_dropout: str = option(
        "after_lstm", "Where the student drops out: 'after_lstm' once, after the BiLSTM; "
        "'paper' as the original code: on the word embeddings, inside the LSTM (input and "
        "recurrent), after the BiLSTM and before the output layer, all at --dropout_rate.",
        STUDENT, ["after_lstm", "paper"])
    head_init: str = option(
        "teacher", "The student's output layer starts as the teacher's classifier ('teacher', "
        "when the last teacher layer is distilled; else random) or random ('random', the "
        "original code).", STUDENT, ["teacher", "random"])
    pca_rescale: bool = option(True, "Rescale the factorised (PCA) word embeddings to unit "
                               "variance (the original code uses the PCA output as is).",
                               STUDENT)

    # === Distillation ===
    recipe: str = option(
        "ours", "Distillation recipe, a name registered in xtremedistil/recipes/: 'ours' the "
        "three XtremeDistil stages with these options' defaults ('xtremedistil' is the same); "
        "'paper' the same stages with the original code's choices (its options preset, "
        "README 'Differences from the original code'; options given explicitly win).", DISTIL)
    distil_mode: str = option(
        "stagewise", "How the student learns from the teacher on the transfer set: "
        "'stagewise' the stages of --recipe (representation, logits, labels, each with gradual "
        "unfreezing); 'soft' the teacher's logits (--logits_loss), then the labels; 'hard' "
        "the teacher's predicted labels (cross-entropy), then the labels. Every layer trains "
        "in 'soft' and 'hard' (after the attention and layers stages, when asked). 'none': "
        "no distillation, the student fine-tuned on the labels "
        "alone (e.g. task transfer from --pt_student_checkpoint); the teacher is neither "
        "fine-tuned nor run and no transfer set is read: --pt_teacher_checkpoint only gives "
        "the tokenizer (and, --compress_word_embedding, the embeddings).", DISTIL,
        ["stagewise", "soft", "hard", "none"])
    distil_batch_size: int = option(32, "Student batch size per replica.", DISTIL)
    distil_epochs: int = option(10, "Maximum epochs of each distillation sub-stage.", DISTIL)
    distil_chunk_size: int = option(10000, "Transfer sentences per chunk of stored teacher "
                                    "outputs.", DISTIL)
    distil_learning_rate: float = option(1e-3, "Student Adam learning rate (the start of "
                                         "--lr_schedule). The transformer student's own "
                                         "default: 3e-4.", DISTIL)
    lr_schedule: str = option(
        "constant", "Student learning rate in each stage: 'constant'; 'cosine' one cosine from "
        "--distil_learning_rate to 1e-8 over the stage's epochs (per step); 'sgdr' the "
        "original code's: per epoch, cosine to 1e-8 over 50 epochs, then warm restarts "
        "(period x2, peak x0.97).", DISTIL, ["constant", "cosine", "sgdr"])
    label_stage_sizes: str = option(
        "distil", "Batch size and epochs of the stages on labels: 'distil' "
        "--distil_batch_size and --distil_epochs; 'fine_tuning' --ft_batch_size and "
        "--ft_epochs (the original code).", DISTIL, ["distil", "fine_tuning"])
    label_stage_monitor: str = option(
        "loss", "What early stopping watches in the stages on labels: dev 'loss' or dev token "
        "'accuracy' (the original code).", DISTIL, ["loss", "accuracy"])
    logits_loss: str = option("mse", "Stage 2 loss: MSE between logits (the paper), or KL "
                              "with --temperature.", DISTIL, ["mse", "kl"])
    temperature: float = option(1.0, "Softmax temperature of the KL logit loss.", DISTIL)
    distil_multi_hidden_states: bool = option(
        False, "--student=transformer, stage-wise recipes: first a 'layers' stage in which each "
        "student layer learns a mapped teacher layer's hidden states (MSE, through a learned "
        "linear map to the teacher's width; XtremeDistilTransformers).", DISTIL)
    layer_map: str = option(
        "", "With --distil_multi_hidden_states: 'student:teacher' layer pairs, one per student "
        "layer (e.g. '1:2,2:4,3:6'); empty: uniform, student layer i learns teacher layer "
        "i * teacher layers // student layers (the last learns the last).", DISTIL)
    distil_attention: bool = option(
        False, "--student=transformer, stage-wise recipes: first an 'attention' stage in which "
        "the student's attention distributions (--attention_heads) learn those of its teacher "
        "layers (--layer_map; MiniLM), --attention_loss over every real piece.", DISTIL)
    attention_layers: str = option(
        "last", "With --distil_attention: the student layers whose attention learns the "
        "teacher's: 'last' the top layer alone (MiniLM), 'all' every layer.", DISTIL,
        ["last", "all"])
    attention_heads: str = option(
        "average", "With --distil_attention: 'average' the student's heads and the teacher's "
        "each averaged (any head counts); 'match' each student head learns its own group of "
        "teacher heads, averaged (one teacher head each where the counts are equal; the "
        "teacher's count must be a multiple of --num_attention_heads).", DISTIL,
        ["average", "match"])
    attention_loss: str = option(
        "kl", "With --distil_attention: KL(teacher || student) of each piece's attention "
        "distribution, or the mean squared error of its weights.", DISTIL, ["kl", "mse"])
    attention_cache_mb: int = option(
        1024, "With --distil_attention: the most MiB the teacher's attention maps (float16, "
        "--seq_len^2 per layer and sentence) may take in model_dir/teacher_outputs; when "
        "the transfer set needs more, the teacher runs on each batch of the attention stage "
        "instead (metrics.json: online_teacher).", DISTIL)
    transfer_mask: str = option(
        "words", "Transfer-set positions the representation and logit stages distil: 'words' "
        "the first piece of every word (where the fine-tuned teacher's logits were trained), "
        "'tokens' every real piece ([CLS], [SEP] and continuation pieces too).", DISTIL,
        ["words", "tokens"])
    patience: int = option(2, "Epochs without improvement before a stage stops early.", DISTIL)
    baseline: bool = option(False, "Also train a student of the same shape and initialisation "
                            "on the labeled data alone (no distillation) and report it as "
                            "'baseline' in metrics.json.", DISTIL)

    # === Run ===
    model_dir: str = option("models/demo", "Output folder; a rerun with the same folder "
                            "resumes where it stopped.", RUN)
    strategy: str = option(
        "mirrored", "tf.distribute strategy: 'mirrored' over all GPUs (else all logical CPUs), "
        "'multi_worker' the same over the machines of the TF_CONFIG environment variable (only "
        "the chief writes --model_dir), 'default' for none.", RUN,
        ["mirrored", "multi_worker", "default"])
    opt_policy: str = option(
        "float32", "Keras precision policy for the teacher and the student: mixed precision "
        "computes in 16 bits with float32 weights (loss scaling for float16).", RUN,
        ["float32", "mixed_float16", "mixed_bfloat16"])
    checkpoint_steps: int = option(
        1000, "Besides after every epoch, checkpoint model and optimizer every this many "
        "batches (0: after epochs only); a killed run resumes from the last one.", RUN)
    seed: int = option(42, "Random seed; the same seed repeats a run.", RUN)

    def validate(self):
        """ValueError naming the flag, for values no run can use."""
        for name in ("seq_len", "word_emb_dim", "bilstm_hidden_size", "distil_batch_size",
                     "ft_batch_size", "distil_chunk_size", "num_hidden_layers", "hidden_size",
                     "num_attention_heads", "intermediate_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be positive.")
        if self.augment_transfer < 0:
            raise ValueError("--augment_transfer must be >= 0 (0: no augmented copies).")
        if self.student_vocab_size < 0:
            raise ValueError("--student_vocab_size must be >= 0 (0: every seen piece).")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"--num_attention_heads={self.num_attention_heads} must divide "
                             f"--hidden_size={self.hidden_size}.")
        if self.pt_student_checkpoint and self.student != "transformer":
            raise ValueError("--pt_student_checkpoint starts a transformer student: it needs "
                             "--student=transformer.")
        if self.init_student_from and (os.path.abspath(self.init_student_from)
                                       == os.path.abspath(self.model_dir)):
            raise ValueError("--init_student_from is this run's own --model_dir: give the "
                             "finished run's folder, and a new --model_dir for this one.")
        if self.init_student_from and self.pt_student_checkpoint:
            raise ValueError("--init_student_from and --pt_student_checkpoint both start the "
                             "student: give one.")
        if self.distil_multi_hidden_states and self.student != "transformer":
            raise ValueError("--distil_multi_hidden_states maps student layers to teacher "
                             "layers: it needs --student=transformer.")
        if self.distil_attention and (self.student != "transformer" or self.do_pairwise):
            raise ValueError("--distil_attention needs --student=transformer and a task whose "
                             "student reads what the teacher reads (not --do_pairwise).")
        if self.distil_mode == "none" and (self.baseline or self.distil_attention
                                           or self.distil_multi_hidden_states):
            raise ValueError("--distil_mode=none trains on the labels alone: --baseline would "
                             "repeat it, and --distil_attention and --distil_multi_hidden_states "
                             "need a teacher.")
        if self.freeze_word_embedding and not (self.compress_word_embedding
                                               or self.pt_student_checkpoint
                                               or self.init_student_from):
            raise ValueError("--freeze_word_embedding would freeze random embeddings: keep "
                             "--compress_word_embedding or give --pt_student_checkpoint or "
                             "--init_student_from.")
        if self.attention_cache_mb < 0:
            raise ValueError("--attention_cache_mb must be >= 0 (0: never stored).")
        if not 0 <= self.dropout_rate < 1:
            raise ValueError("--dropout_rate must be in [0, 1).")
        if self.do_pairwise and self.do_NER:
            raise ValueError("--do_pairwise classifies sentence pairs: give --do_NER=false too.")
        if not self.task and not (self.train_file and self.dev_file and self.test_file):
            raise ValueError("Give --task, or all of --train_file, --dev_file and --test_file.")
        for field in dataclasses.fields(self):
            choices = field.metadata["choices"]
            if choices and getattr(self, field.name) not in choices:
                raise ValueError(f"--{field.name}={getattr(self, field.name)}: expected one of "
                                 f"{', '.join(choices)}.")
        return self

    @property
    def attention_student_layers(self):
        """The student layers (1-based) whose attention --distil_attention distils."""
        layers = self.num_hidden_layers
        return tuple(range(1, layers + 1)) if self.attention_layers == "all" else (layers,)

    @property
    def attention_maps_per_layer(self):
        """Attention maps a distilled layer gives: 1 (heads averaged) or one per student head."""
        return self.num_attention_heads if self.attention_heads == "match" else 1

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Options from a dict (config.json); options it lacks take today's defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


# Options that may change when a run resumes in an existing model_dir; all others must match.
MAY_CHANGE_ON_RESUME = ("model_dir", "strategy", "baseline", "checkpoint_steps",
                        "attention_cache_mb")


def fields(group=None):
    """The option fields, all or those of one group."""
    return [f for f in dataclasses.fields(Options)
            if group is None or f.metadata["group"] == group]


def define_flags(flag_values, names=None, defaults=None):
    """Defines an absl flag per option (or per option in `names`), with `defaults` overriding
    the defaults of Options (benchmarks size their runs differently)."""
    from absl import flags  # pylint: disable=import-outside-toplevel
    defaults = defaults or {}
    for field in fields():
        if names is not None and field.name not in names:
            continue
        default = defaults.get(field.name, field.default)
        help_text, choices = field.metadata["help"], field.metadata["choices"]
        if choices:
            flags.DEFINE_enum(field.name, default, choices, help_text, flag_values=flag_values)
        elif field.type in (bool, "bool"):
            flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
        elif field.type in (int, "int"):
            flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
        elif field.type in (float, "float"):
            flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)


def given_flags(flag_values):
    """The names of the options given on the command line (a recipe's preset leaves them)."""
    return {f.name for f in fields() if f.name in flag_values and flag_values[f.name].present}


def from_flags(flag_values, **overrides):
    """Options from the flags defined by define_flags (others keep their defaults)."""
    values = {f.name: flag_values[f.name].value for f in fields() if f.name in flag_values}
    values.update(overrides)
    return Options(**values)
