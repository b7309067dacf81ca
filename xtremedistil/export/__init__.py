"""Export of a trained student: a SavedModel that tags raw sentences, and TFLite files.

Legend: B sentences, N words in the batch, M word parts (words cut at the teacher's special
tokens), P word pieces, W most words in a sentence, T seq_len, C tags, V_t teacher vocabulary.

Everything is written under `model_dir/export/`:
  saved_model/models.config        TF Serving model config file (absolute base path)
  saved_model/<name>/<version>/    SavedModel: signatures 'serving_default' and 'student_ids'
  tflite/student_fp32.tflite       student ids int32 [1, T] -> logits float32 [1, T, C]
  tflite/student_fp16.tflite       the same with float16 weights
  tflite/student_int8.tflite       int8 (full-integer or dynamic range, see the sidecar)
  tflite/vocab.txt, teacher_vocab.txt, labels.txt, student_tflite.json (the sidecar)
  (teacher_tokenizer/ instead of teacher_vocab.txt, and no SavedModel, for teachers whose
  tokenizer is not BERT WordPiece: BPE, SentencePiece)

The SavedModel tokenises in the graph exactly as training did (`features.encode`: the teacher's
HF fast tokenizer with `is_split_into_words=True`), so it needs only TensorFlow and
tensorflow_text (whose ops TF Serving's model server links in).
"""

import dataclasses
import functools
import itertools
import json
import os
import shutil
import string
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from absl import logging

from xtremedistil import student as student_lib

SERVING_SIGNATURE = "serving_default"
STUDENT_IDS_SIGNATURE = "student_ids"
OUTSIDE_TAG = "O"  # tag of words cut off by seq_len
TFLITE_FILES = {"fp32": "student_fp32.tflite", "fp16": "student_fp16.tflite",
                "int8": "student_int8.tflite"}
MIN_INT8_AGREEMENT = 0.98  # full-integer int8 is kept only if it agrees this well with Keras

# Characters BERT's normaliser deletes: Cc (but tab, newline, carriage return), Cf, Co, U+FFFD.
_CONTROL_CHARS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}]"
# Unicode White_Space that is not a control character: split like a space inside a word.
_SPACE_CHARS = r"[\p{Zs}\x{2028}\x{2029}]"
# BERT punctuation: all ASCII punctuation and symbols, and Unicode category P.
_PUNCTUATION = r"[!-/:-@\[-`{-~]|\p{P}"
# CJK ideographs, each a token of its own: the ranges of HF tokenizers' BertNormalizer (which
# starts the fifth at U+2B920 where Python BERT has U+2B820).
_CJK = ("[\\x{4E00}-\\x{9FFF}\\x{3400}-\\x{4DBF}\\x{20000}-\\x{2A6DF}\\x{2A700}-\\x{2B73F}"
        "\\x{2B740}-\\x{2B81F}\\x{2B920}-\\x{2CEAF}\\x{F900}-\\x{FAFF}\\x{2F800}-\\x{2FA1F}]")


class UnsupportedTokenizerError(ValueError):
    """The teacher's tokenizer cannot be reproduced in the graph (not BERT WordPiece)."""


# === The trained model_dir ===

@dataclasses.dataclass
class TrainedRun:
    """What export needs from a model_dir written by pipeline.run."""
    model_dir: str
    options: dict
    tags: list
    student_vocab: list  # teacher piece strings; index = student id
    teacher_hidden_size: int
    teacher_vocab_size: int
    do_lower_case: bool

    @property
    def seq_len(self):
        return int(self.options["seq_len"])

    @property
    def teacher_dir(self):
        return os.path.join(self.model_dir, "teacher")

    @property
    def weights_path(self):
        return os.path.join(self.model_dir, "student", "best.h5")


def read_trained_run(model_dir):
    """Reads model_dir/config.json; fails if the run has no trained student yet."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"--model_dir={model_dir}: no config.json; train first (--mode=train).")
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    run = TrainedRun(model_dir, saved["options"], saved["tags"], saved["student_vocab"],
                     int(saved["teacher_hidden_size"]), int(saved["teacher_vocab_size"]),
                     bool(saved["do_lower_case"]))
    if not os.path.exists(run.weights_path):
        raise ValueError(f"{run.weights_path} is missing: the student has not finished "
                         f"training in --model_dir={model_dir}; run --mode=train first.")
    return run


def load_student(run, batch_size=None, seq_len=None):
    """The trained student (tf-keras) with best.h5 loaded; a static batch_size for TFLite.

    seq_len defaults to the run's; the weights fit any.
    """
    options = run.options
    model = student_lib.build_student(
        len(run.student_vocab), seq_len or run.seq_len, len(run.tags), run.teacher_hidden_size,
        options["word_emb_dim"], options["bilstm_hidden_size"], options["dropout_rate"],
        batch_size=batch_size)
    model.load_weights(run.weights_path)
    return model


# === The teacher's WordPiece tokenizer, as settings ===

@dataclasses.dataclass
class WordPieceSettings:
    """What the teacher's HF fast tokenizer does, read from its tokenizer.json and vocab.txt."""
    piece_ids: dict  # piece -> teacher id (vocab.txt, later duplicates win as in HF)
    lowercase: bool
    strip_accents: bool
    clean_text: bool
    handle_chinese_chars: bool
    unk_token: str
    cls_token: str
    sep_token: str
    pad_token: str
    prefix: str  # continuing sub-word prefix, '##'
    max_chars_per_word: int
    raw_added_tokens: dict  # token -> id, matched in the raw text before normalisation
    normalized_added_tokens: dict  # token -> id, matched after normalisation

    def all_ids(self):
        return {**self.piece_ids, **self.raw_added_tokens, **self.normalized_added_tokens}


def _read_vocab_txt(teacher_dir):
    path = os.path.join(teacher_dir, "vocab.txt")
    if not os.path.exists(path):
        raise UnsupportedTokenizerError(
            f"{teacher_dir} has no vocab.txt: only WordPiece (BERT-style vocab.txt) teachers can "
            "be served with in-graph tokenisation. Use the 'student_ids' signature or the TFLite "
            "files with your own tokenizer instead.")
    with open(path, encoding="utf-8") as f:
        pieces = [line.rstrip("\n") for line in f]
    return {piece: i for i, piece in enumerate(pieces)}


def _settings_from_tokenizer_json(path, piece_ids):
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    model, normalizer = spec.get("model") or {}, spec.get("normalizer") or {}
    pre_tokenizer = spec.get("pre_tokenizer") or {}
    found = (model.get("type"), normalizer.get("type"), pre_tokenizer.get("type"))
    if found != ("WordPiece", "BertNormalizer", "BertPreTokenizer"):
        raise UnsupportedTokenizerError(
            f"{path}: model/normalizer/pre-tokenizer are {found}; only WordPiece with "
            "BertNormalizer and BertPreTokenizer (BERT-style vocab.txt) can be served with "
            "in-graph tokenisation. Use the 'student_ids' signature or the TFLite files with "
            "your own tokenizer instead.")
    lowercase = bool(normalizer.get("lowercase", True))
    strip_accents = normalizer.get("strip_accents")
    added = spec.get("added_tokens") or []
    special = {t["content"] for t in added if t.get("special")}
    post = (spec.get("post_processor") or {}).get("special_tokens") or {}

    def special_token(name, default):
        return name if name in post or name in special else default

    return WordPieceSettings(
        piece_ids=piece_ids, lowercase=lowercase,
        strip_accents=lowercase if strip_accents is None else bool(strip_accents),
        clean_text=bool(normalizer.get("clean_text", True)),
        handle_chinese_chars=bool(normalizer.get("handle_chinese_chars", True)),
        unk_token=model.get("unk_token", "[UNK]"),
        cls_token=special_token("[CLS]", "[CLS]"), sep_token=special_token("[SEP]", "[SEP]"),
        pad_token=(spec.get("padding") or {}).get("pad_token", "[PAD]"),
        prefix=model.get("continuing_subword_prefix", "##"),
        max_chars_per_word=int(model.get("max_input_chars_per_word", 100)),
        raw_added_tokens={t["content"]: t["id"] for t in added if not t.get("normalized")},
        normalized_added_tokens={t["content"]: t["id"] for t in added if t.get("normalized")})


def _settings_from_tokenizer_config(teacher_dir, piece_ids, do_lower_case):
    """A BERT tokenizer saved without tokenizer.json: BERT defaults and tokenizer_config.json."""
    path = os.path.join(teacher_dir, "tokenizer_config.json")
    config = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    lowercase = bool(config.get("do_lower_case", do_lower_case))
    strip_accents = config.get("strip_accents")
    tokens = {name: config.get(f"{name}_token", f"[{name.upper()}]")
              for name in ("unk", "cls", "sep", "pad", "mask")}
    specials = {t: piece_ids[t] for t in tokens.values() if t in piece_ids}
    return WordPieceSettings(
        piece_ids=piece_ids, lowercase=lowercase,
        strip_accents=lowercase if strip_accents is None else bool(strip_accents),
        clean_text=True, handle_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
        unk_token=tokens["unk"], cls_token=tokens["cls"], sep_token=tokens["sep"],
        pad_token=tokens["pad"], prefix="##", max_chars_per_word=100,
        raw_added_tokens=specials, normalized_added_tokens={})


def read_wordpiece_settings(teacher_dir, do_lower_case=True):
    """The teacher tokenizer's settings; UnsupportedTokenizerError unless it is BERT WordPiece."""
    piece_ids = _read_vocab_txt(teacher_dir)
    path = os.path.join(teacher_dir, "tokenizer.json")
    if os.path.exists(path):
        settings = _settings_from_tokenizer_json(path, piece_ids)
    else:
        settings = _settings_from_tokenizer_config(teacher_dir, piece_ids, do_lower_case)
    ids = settings.all_ids()
    missing = [t for t in (settings.unk_token, settings.cls_token, settings.sep_token,
                           settings.pad_token) if t not in ids]
    if missing:
        raise UnsupportedTokenizerError(f"{teacher_dir}/vocab.txt lacks the pieces {missing}.")
    return settings


def student_id_lookup(settings, student_vocab, teacher_vocab_size):
    """[V_t] int32 array: student id of each teacher id (1, the unknown piece, when unseen)."""
    ids = settings.all_ids()
    missing = [piece for piece in student_vocab if piece not in ids]
    if missing:
        raise ValueError(f"student_vocab in config.json has pieces {missing[:5]} that the "
                         "teacher's vocab.txt lacks: config.json and teacher/ are from "
                         "different runs.")
    size = max(teacher_vocab_size, max(ids.values()) + 1)
    lookup = np.ones(size, np.int32)
    lookup[[ids[piece] for piece in student_vocab]] = np.arange(len(student_vocab),
                                                                dtype=np.int32)
    return lookup


# === In-graph tokenisation ===

def _alternatives(tokens):
    """An RE2 alternation matching any of `tokens` literally, longest first."""
    return "|".join(_escape_re2(t) for t in sorted(tokens, key=len, reverse=True))


def _escape_re2(text):
    return "".join("\\" + c if c in string.punctuation else c for c in text)


class GraphTokenizer(tf.Module):
    """Sentences -> student ids [B, T] and each word's first-piece position, in the graph.

    Reproduces `features.encode` (HF fast BERT tokenizer, `is_split_into_words=True`) followed
    by `StudentVocab.to_student_ids`:
      1. words = the sentence split at ASCII whitespace (tf.strings.split);
      2. each word is cut at the teacher's special tokens ('[SEP]' etc. match literally);
      3. the other parts are normalised as BertNormalizer does: control characters deleted,
         other Unicode spaces made spaces, accents stripped (NFD, then no Mn), lower-cased;
      4. split at spaces, punctuation and CJK ideographs (BertPreTokenizer), so a word like
         "U.S." gives several tokens, all pieces of that one word;
      5. WordPiece with the teacher's vocab.txt (tokens over 100 characters: [UNK]);
      6. a word left with no piece at all (e.g. only a zero-width space) becomes [UNK], as in
         features.encode, which however leaves such words without a piece after a
         sentence's last word with pieces (they get tag 'O' there, a predicted tag here);
      7. [CLS] + the first T - 2 pieces + [SEP], padded with [PAD] to T; teacher ids are mapped
         to student ids (unseen pieces: 1).
    """

    def __init__(self, settings, student_of_teacher_id, seq_len):
        super().__init__(name="graph_tokenizer")
        self._settings = settings
        self._seq_len = seq_len
        ids = settings.all_ids()
        self._cls_id, self._sep_id = ids[settings.cls_token], ids[settings.sep_token]
        self._pad_id, self._unk_id = ids[settings.pad_token], ids[settings.unk_token]
        pieces = sorted(ids)
        self.piece_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(pieces), tf.constant([ids[p] for p in pieces], tf.int64)),
            default_value=-1)
        self.wordpiece = tf_text.WordpieceTokenizer(
            self.piece_table, suffix_indicator=settings.prefix,
            max_bytes_per_word=4 * settings.max_chars_per_word + 4, token_out_type=tf.int64,
            unknown_token=settings.unk_token)
        self.student_of_teacher_id = tf.Variable(student_of_teacher_id, trainable=False,
                                                 name="student_of_teacher_id")
        self._raw_added = _alternatives(settings.raw_added_tokens)
        keep = [_PUNCTUATION] + ([_CJK] if settings.handle_chinese_chars else [])
        added = list(settings.raw_added_tokens) + list(settings.normalized_added_tokens)
        if added:
            keep.insert(0, _alternatives(added))
        self._keep_pattern = "|".join(keep)

    def split_words(self, sentences):
        """[B] strings -> ragged [B, (W)] words."""
        return tf.strings.split(tf_text.coerce_to_structurally_valid_utf8(sentences))

    def normalise(self, text):
        """BertNormalizer on [M] strings (words or word parts; no special tokens)."""
        settings = self._settings
        if settings.clean_text:
            text = tf.strings.regex_replace(text, _CONTROL_CHARS, "")
        text = tf.strings.regex_replace(text, _SPACE_CHARS, " ")
        if settings.strip_accents:
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
        if settings.lowercase:
            # HF lower-cases character by character; ICU would turn a final 'Σ' into 'ς'.
            text = tf.strings.regex_replace(text, "\u03a3", "\u03c3")
            text = tf.strings.lower(text, encoding="utf-8")
        return text

    def word_pieces(self, words):
        """[N] words -> ragged [N, (P)] teacher piece ids, at least one piece per word."""
        words = tf.strings.regex_replace(words, "\\x00", "")  # regex_split stops at NUL
        if self._raw_added:
            parts = tf_text.regex_split(words, self._raw_added, self._raw_added)  # [N, (M)]
        else:
            parts = tf.RaggedTensor.from_tensor(words[:, None])
        flat_parts = parts.flat_values  # [M]
        text = self.normalise(flat_parts)
        if self._raw_added:
            is_added = tf.strings.regex_full_match(flat_parts, f"(?:{self._raw_added})")
            text = tf.where(is_added, flat_parts, text)
        tokens = tf_text.regex_split(text, r"\s+|" + self._keep_pattern, self._keep_pattern)
        too_long = tf.strings.length(tokens.flat_values, unit="UTF8_CHAR") > (
            self._settings.max_chars_per_word)
        tokens = tokens.with_flat_values(
            tf.where(too_long, self._settings.unk_token, tokens.flat_values))  # [M, (S)]
        pieces = self.wordpiece.tokenize(tokens).merge_dims(1, 2)  # [M, (P)]
        pieces = parts.with_flat_values(pieces).merge_dims(1, 2)  # [N, (P)]
        pieceless = tf.cast(pieces.row_lengths() == 0, tf.int64)
        unknown = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(pieceless)], tf.constant(self._unk_id, tf.int64)), pieceless)
        return tf.concat([pieces, unknown], axis=1)

    def __call__(self, sentences):
        """[B] strings -> (words ragged [B, (W)], student ids [B, T], first-piece positions
        ragged [B, (W)] int64; positions >= T - 1 mean the word was cut off)."""
        words = self.split_words(sentences)  # [B, (W)]
        pieces = self.word_pieces(words.flat_values)  # [N, (P)]
        sentence_pieces = words.with_flat_values(pieces).merge_dims(1, 2)  # [B, (P)]
        before_word = tf.cumsum(pieces.row_lengths(), exclusive=True)  # [N]
        sentence_start = tf.gather(sentence_pieces.row_starts(), words.value_rowids())  # [N]
        first_piece = 1 + before_word - sentence_start  # [N], after [CLS]
        body = sentence_pieces[:, :self._seq_len - 2]  # [B, (<= T - 2)]
        cls = tf.fill([body.nrows(), 1], tf.constant(self._cls_id, tf.int64))  # [B, 1]
        sep = tf.fill([body.nrows(), 1], tf.constant(self._sep_id, tf.int64))  # [B, 1]
        teacher_ids = tf.concat([cls, body, sep], axis=1).to_tensor(
            default_value=tf.constant(self._pad_id, tf.int64), shape=[None, self._seq_len])
        student_ids = tf.gather(self.student_of_teacher_id, teacher_ids)  # [B, T]
        return words, student_ids, words.with_flat_values(first_piece)


# === SavedModel ===

def _untracked_call(student):
    """The student's inference call, hidden from tf.Module tracking.

    Saving a tf-keras model as a tracked attribute also serialises every layer's call
    functions (slow); tracking just its weights is all the signatures need.
    """
    return functools.partial(student, training=False)


class StudentServer(tf.Module):
    """The student behind two serving signatures; see `export_saved_model`."""

    def __init__(self, tokenizer, student, tags, seq_len):
        super().__init__(name="student_server")
        self.tokenizer = tokenizer
        self.student_weights = list(student.weights)
        self._student = _untracked_call(student)
        self._tags = list(tags)
        self._seq_len = seq_len

    @tf.function(autograph=False)
    def serve(self, sentences):
        """[B] sentences -> word-level tags and probabilities [B, W], padded with '' and 0."""
        words, student_ids, first_piece = self.tokenizer(sentences)
        probabilities = tf.nn.softmax(self._student(student_ids))  # [B, T, C]
        best_tag = tf.argmax(probabilities, axis=-1, output_type=tf.int32)  # [B, T]
        best_probability = tf.reduce_max(probabilities, axis=-1)  # [B, T]
        positions = first_piece.flat_values  # [N]
        kept = positions < self._seq_len - 1
        where = tf.stack([words.value_rowids(), tf.minimum(positions, self._seq_len - 1)], -1)
        tag = tf.where(kept, tf.gather(tf.constant(self._tags), tf.gather_nd(best_tag, where)),
                       OUTSIDE_TAG)  # [N]
        probability = tf.where(kept, tf.gather_nd(best_probability, where), 1.0)  # [N]
        return {
            "words": words.to_tensor(default_value=""),  # [B, W]
            "tags": words.with_flat_values(tag).to_tensor(default_value=""),  # [B, W]
            "probabilities": words.with_flat_values(probability).to_tensor(0.0),  # [B, W]
            "num_words": tf.cast(words.row_lengths(), tf.int32),  # [B]
        }

    @tf.function(autograph=False)
    def serve_student_ids(self, student_ids):
        """[B, T] student ids -> logits [B, T, C]."""
        return {"logits": self._student(student_ids)}

    @tf.function(autograph=False)
    def tokenize(self, sentences):
        """[B] sentences -> student ids [B, T] and first-piece positions [B, W] (-1 padded)."""
        words, student_ids, first_piece = self.tokenizer(sentences)
        return {"student_ids": student_ids,
                "first_piece": first_piece.to_tensor(default_value=-1),
                "num_words": tf.cast(words.row_lengths(), tf.int32)}


def build_server(run, student=None):
    """A StudentServer for a trained run (tokenizer from model_dir/teacher)."""
    settings = read_wordpiece_settings(run.teacher_dir, run.do_lower_case)
    lookup = student_id_lookup(settings, run.student_vocab, run.teacher_vocab_size)
    tokenizer = GraphTokenizer(settings, lookup, run.seq_len)
    return StudentServer(tokenizer, student or load_student(run), run.tags, run.seq_len)


def server_signatures(server, seq_len):
    """{'serving_default': sentences -> tags..., 'student_ids': ids -> logits}."""
    sentences = tf.TensorSpec([None], tf.string, name="sentences")
    server.tokenize.get_concrete_function(sentences)  # saved as a plain function
    return {
        SERVING_SIGNATURE: server.serve.get_concrete_function(sentences),
        STUDENT_IDS_SIGNATURE: server.serve_student_ids.get_concrete_function(
            tf.TensorSpec([None, seq_len], tf.int32, name="student_ids")),
    }


def saved_model_dir(model_dir, name="student", version=1):
    return os.path.join(model_dir, "export", "saved_model", name, str(version))


def export_saved_model(run, export_dir, student=None):
    """Writes the SavedModel to export_dir (replaced whole, through a temporary folder).

    serving_default: sentences tf.string [B] ->
      words          tf.string [B, W]  the whitespace-split words ('' past a sentence's end)
      tags           tf.string [B, W]  one tag per word ('' past the end; 'O' for words cut
                                       off by seq_len)
      probabilities  float32 [B, W]    softmax probability of each tag (0 past the end, 1 for
                                       cut-off words)
      num_words      int32 [B]         words of each sentence
    student_ids: student_ids int32 [B, T] -> logits float32 [B, T, C]
    """
    server = build_server(run, student)
    signatures = server_signatures(server, run.seq_len)
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp_", dir=parent)
    try:
        tf.saved_model.save(server, tmp, signatures=signatures)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; TF Serving may run as another user
        if os.path.exists(export_dir):
            shutil.rmtree(export_dir)
        os.replace(tmp, export_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return export_dir


def write_serving_config(saved_model_root, name):
    """TF Serving --model_config_file for the model `name` under saved_model_root."""
    base_path = os.path.abspath(os.path.join(saved_model_root, name))
    path = os.path.join(saved_model_root, "models.config")
    with open(path, "w", encoding="utf-8") as f:
        f.write("model_config_list {\n  config {\n"
                f"    name: \"{name}\"\n    base_path: \"{base_path}\"\n"
                "    model_platform: \"tensorflow\"\n  }\n}\n")
    return path


# === TFLite ===

def save_static_batch_student(student_batch1, seq_len, folder):
    """Saves the batch-1 student as a SavedModel for the TFLite converter.

    Its 'serving_default' signature: student_ids int32 [1, T] -> logits float32 [1, T, C].
    With the static batch, the converter fuses each LSTM into UNIDIRECTIONAL_SEQUENCE_LSTM.
    """
    module = tf.Module()
    module.student_weights = list(student_batch1.weights)
    call = _untracked_call(student_batch1)
    serve = tf.function(lambda student_ids: {"logits": call(student_ids)})
    signature = serve.get_concrete_function(
        tf.TensorSpec([1, seq_len], tf.int32, name="student_ids"))
    tf.saved_model.save(module, folder, signatures={SERVING_SIGNATURE: signature})
    return folder


def convert_tflite(static_saved_model, quantisation, representative_ids=None):
    """TFLite flatbuffer bytes of the batch-1 student SavedModel, builtin ops only.

    quantisation: 'fp32' (none), 'fp16' (float16 weights), 'dynamic_range' (int8 weights,
    float activations) or 'full_integer' (int8 weights and activations, calibrated on
    representative_ids [N, T]; int32 ids in, float32 logits out).
    """
    if quantisation not in ("fp32", "fp16", "dynamic_range", "full_integer"):
        raise ValueError(f"quantisation={quantisation!r}: expected fp32, fp16, dynamic_range "
                         "or full_integer.")
    converter = tf.lite.TFLiteConverter.from_saved_model(static_saved_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantisation != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantisation == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantisation == "full_integer":
        converter.representative_dataset = lambda: ([row[None, :]] for row in representative_ids)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def tflite_interpreter(model_path=None, model_content=None, runtime="litert"):
    """An allocated interpreter without default delegates (so op lists show every op).

    runtime: 'litert' (ai_edge_litert) or 'tf' (tf.lite.Interpreter).
    """
    if runtime == "litert":
        from ai_edge_litert import interpreter as litert  # pylint: disable=import-outside-toplevel
        interpreter_class, resolver = litert.Interpreter, litert.OpResolverType
    elif runtime == "tf":
        interpreter_class, resolver = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    else:
        raise ValueError(f"runtime={runtime!r}: expected 'litert' or 'tf'.")
    interpreter = interpreter_class(
        model_path=model_path, model_content=model_content,
        experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def tflite_logits(interpreter, student_ids):
    """Runs a [1, T] TFLite student sentence by sentence: [N, T] ids -> [N, T, C] logits.

    The fused LSTM ops keep their state in variable tensors between invocations, so the
    variables are reset before each sentence (as every app must do).
    """
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    logits = []
    for row in np.asarray(student_ids, np.int32):
        interpreter.reset_all_variables()
        interpreter.set_tensor(input_index, row[None, :])
        interpreter.invoke()
        logits.append(interpreter.get_tensor(output_index)[0])
    return np.stack(logits)


def tflite_ops(interpreter):
    """Sorted op names of an interpreter's graph."""
    details = interpreter._get_ops_details()  # pylint: disable=protected-access
    return sorted({op["op_name"] for op in details})


def tag_agreement(logits_a, logits_b, mask):
    """Share of masked positions where two [N, T, C] logits pick the same tag."""
    same = np.argmax(logits_a, -1) == np.argmax(logits_b, -1)
    return float(same[mask > 0].mean()) if mask.sum() else 1.0


def _transfer_ids(run, limit):
    """(student ids [N, T], label_mask [N, T]) of transfer sentences, tokenised like training."""
    from xtremedistil import data as data_lib  # pylint: disable=import-outside-toplevel
    from xtremedistil import features  # pylint: disable=import-outside-toplevel
    from xtremedistil import teacher as teacher_lib  # pylint: disable=import-outside-toplevel
    path = run.options.get("transfer_file") or ""
    if not path or not os.path.exists(path):
        return None, None
    # Only the first `limit` sentences are read: transfer files can be far larger than memory.
    sentences = list(itertools.islice(
        data_lib.iter_transfer_file(path, encoding=run.options.get("encoding", "utf-8")), limit))
    if not sentences:
        return None, None
    tokenizer = teacher_lib.load_tokenizer(run.teacher_dir)
    encoded = features.encode(sentences, tokenizer, run.seq_len)
    vocab = features.StudentVocab(
        np.asarray(tokenizer.convert_tokens_to_ids(run.student_vocab), np.int32))
    teacher_vocab_size = max(run.teacher_vocab_size, len(tokenizer))
    return vocab.to_student_ids(encoded.input_ids, teacher_vocab_size), encoded.label_mask


def _int8_model(run, static_saved_model, keras_student, calibration=200, check=200):
    """(flatbuffer, record): full-integer int8 if it converts and agrees with Keras on
    >= MIN_INT8_AGREEMENT of held-out transfer words, else dynamic-range int8."""
    record = {"quantisation": "dynamic_range"}
    ids, mask = _transfer_ids(run, calibration + check)
    if ids is None or len(ids) <= calibration // 2:
        record["full_integer"] = (f"not tried: transfer_file {run.options.get('transfer_file')!r}"
                                  " is missing or too small for calibration")
    else:
        calibrate, held_out = ids[:len(ids) // 2], ids[len(ids) // 2:]
        held_out_mask = mask[len(ids) // 2:]
        if len(ids) >= calibration + check:
            calibrate, held_out = ids[:calibration], ids[calibration:]
            held_out_mask = mask[calibration:]
        try:
            flat = convert_tflite(static_saved_model, "full_integer", calibrate)
        except Exception as error:  # pylint: disable=broad-except
            record["full_integer"] = f"conversion failed: {str(error).splitlines()[0][:300]}"
        else:
            agreement = tag_agreement(tflite_logits(tflite_interpreter(model_content=flat),
                                                    held_out),
                                      keras_student.predict(held_out, verbose=0), held_out_mask)
            record["full_integer"] = {"tag_agreement": round(agreement, 4),
                                      "held_out_sentences": int(len(held_out)),
                                      "calibration_sentences": int(len(calibrate))}
            if agreement >= MIN_INT8_AGREEMENT:
                record["quantisation"] = "full_integer"
                return flat, record
            flat = convert_tflite(static_saved_model, "dynamic_range")
            record["dynamic_range"] = {"tag_agreement": round(tag_agreement(
                tflite_logits(tflite_interpreter(model_content=flat), held_out),
                keras_student.predict(held_out, verbose=0), held_out_mask), 4)}
            return flat, record
    return convert_tflite(static_saved_model, "dynamic_range"), record


_RECIPE_TAIL = (
    "The tag of a word is argmax of the logits at its first piece (labels.txt, line = tag id); "
    "words cut off by seq_len get 'O'. Reset the interpreter's variable tensors before every "
    "sentence (Python reset_all_variables(), Java resetVariableTensors()): the fused LSTM ops "
    "keep the previous sentence's state in them.")
TOKENISATION_RECIPE = (
    "Split the sentence at whitespace into words. Tokenise each word on its own with the "
    "teacher's BERT WordPiece tokenizer (teacher_vocab.txt; lower-case and strip accents if "
    "do_lower_case; split at punctuation and CJK characters; '##' continuation pieces; words "
    "over 100 characters become [UNK]); a word with no piece at all becomes [UNK]. Map each "
    "piece string to its line number in vocab.txt (the student id), or to unk_id when absent. "
    "Input = [cls_id] + the first seq_len - 2 pieces + [sep_id], padded with pad_id to seq_len. "
    + _RECIPE_TAIL)
TEACHER_TOKENIZER_RECIPE = (
    "Split the sentence at whitespace into words and tokenise them with the teacher's own "
    "tokenizer in teacher_tokenizer/ (Hugging Face tokenizers: tokenizer(words, "
    "is_split_into_words=True, truncation=True, max_length=seq_len, padding='max_length'), "
    "which adds its special pieces); a word with no piece at all becomes the unknown piece. "
    "Map each teacher piece to its line number in vocab.txt (the student id), or to unk_id "
    "when absent. " + _RECIPE_TAIL)


def _write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in lines))


def _tokenisation_sidecar(run, tflite_dir):
    """Sidecar fields on making student ids: BERT WordPiece settings and teacher_vocab.txt, or,
    for other teachers (BPE, SentencePiece), the teacher's tokenizer in teacher_tokenizer/."""
    ids = {piece: i for i, piece in enumerate(run.student_vocab)}
    try:
        settings = read_wordpiece_settings(run.teacher_dir, run.do_lower_case)
    except UnsupportedTokenizerError:
        from xtremedistil import teacher as teacher_lib  # pylint: disable=import-outside-toplevel
        tokenizer = teacher_lib.load_tokenizer(run.teacher_dir)
        tokenizer.save_pretrained(os.path.join(tflite_dir, "teacher_tokenizer"))
        special = (tokenizer.pad_token, tokenizer.unk_token, tokenizer.cls_token,
                   tokenizer.sep_token)
        tokenisation = {"teacher_tokenizer": "teacher_tokenizer",
                        "tokenisation": TEACHER_TOKENIZER_RECIPE}
    else:
        special = (settings.pad_token, settings.unk_token, settings.cls_token,
                   settings.sep_token)
        shutil.copyfile(os.path.join(run.teacher_dir, "vocab.txt"),
                        os.path.join(tflite_dir, "teacher_vocab.txt"))
        tokenisation = {"do_lower_case": settings.lowercase,
                        "strip_accents": settings.strip_accents,
                        "max_chars_per_word": settings.max_chars_per_word,
                        "teacher_vocab": "teacher_vocab.txt", "tokenisation": TOKENISATION_RECIPE}
    pad, unk, cls, sep = special
    return {"pad_id": ids.get(pad, 0), "unk_id": ids.get(unk, 1), "cls_id": ids.get(cls, 1),
            "sep_id": ids.get(sep, 1), **tokenisation}


def export_tflite(run, tflite_dir, keras_student=None):
    """Writes student_{fp32,fp16,int8}.tflite, vocab/labels files and the json sidecar."""
    keras_student = keras_student or load_student(run)
    os.makedirs(tflite_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        static = save_static_batch_student(load_student(run, batch_size=1), run.seq_len, tmp)
        models = {"fp32": (convert_tflite(static, "fp32"), {"quantisation": "none (float32)"}),
                  "fp16": (convert_tflite(static, "fp16"), {"quantisation": "float16 weights"}),
                  "int8": _int8_model(run, static, keras_student)}
    files = {}
    for key, (flat, record) in models.items():
        path = os.path.join(tflite_dir, TFLITE_FILES[key])
        with open(path, "wb") as f:
            f.write(flat)
        interpreter = tflite_interpreter(model_content=flat)
        ops = tflite_ops(interpreter)
        if any(op.startswith("Flex") or op == "CUSTOM" for op in ops):
            raise RuntimeError(f"{path} needs non-builtin ops {ops}; it would not run on the "
                               "plain TFLite runtime.")
        files[TFLITE_FILES[key]] = dict(record, bytes=len(flat), ops=ops)
    _write_lines(os.path.join(tflite_dir, "vocab.txt"), run.student_vocab)
    _write_lines(os.path.join(tflite_dir, "labels.txt"), run.tags)
    interpreter = tflite_interpreter(model_content=models["fp32"][0])
    signature = interpreter.get_signature_list()
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    sidecar = {
        "seq_len": run.seq_len, "batch_size": 1, "num_tags": len(run.tags),
        "input": {"tensor_name": input_detail["name"], "signature_input": "student_ids",
                  "dtype": "int32", "shape": [int(d) for d in input_detail["shape"]]},
        "output": {"tensor_name": output_detail["name"], "signature_output": "logits",
                   "dtype": "float32", "shape": [int(d) for d in output_detail["shape"]]},
        "signatures": {k: {"inputs": v["inputs"], "outputs": v["outputs"]}
                       for k, v in signature.items()},
        "outside_tag": OUTSIDE_TAG, "vocab": "vocab.txt", "labels": "labels.txt",
        **_tokenisation_sidecar(run, tflite_dir), "files": files,
    }
    with open(os.path.join(tflite_dir, "student_tflite.json"), "w", encoding="utf-8") as f:
        json.dump(sidecar, f, indent=1, ensure_ascii=False)
    return sidecar


# === Everything ===

def export_all(model_dir, name="student", version=1):
    """Exports a trained model_dir: SavedModel (+ TF Serving config) and TFLite files.

    Returns {"saved_model": dir, "serving_config": path, "tflite_dir": dir, "tflite": sidecar}.
    The SavedModel tokenises in the graph, which needs a BERT WordPiece teacher: for others
    (BPE, SentencePiece) it is skipped with a warning (saved_model and serving_config None),
    and the TFLite files carry the teacher's tokenizer instead.
    """
    run = read_trained_run(model_dir)
    student = load_student(run)
    export_root = os.path.join(model_dir, "export")
    saved_model = serving_config = None
    try:
        read_wordpiece_settings(run.teacher_dir, run.do_lower_case)
    except UnsupportedTokenizerError as error:
        logging.warning("export: SavedModel skipped, its in-graph tokenizer needs BERT "
                        "WordPiece: %s", error)
    else:
        saved_model = export_saved_model(run, saved_model_dir(model_dir, name, version), student)
        serving_config = write_serving_config(os.path.join(export_root, "saved_model"), name)
        logging.info("export: SavedModel in %s, TF Serving config %s", saved_model,
                     serving_config)
    tflite_dir = os.path.join(export_root, "tflite")
    sidecar = export_tflite(run, tflite_dir, student)
    logging.info("export: TFLite files in %s (%s)", tflite_dir, ", ".join(
        f"{name} {record['bytes']:,} bytes, {record['quantisation']}"
        for name, record in sidecar["files"].items()))
    return {"saved_model": saved_model, "serving_config": serving_config,
            "tflite_dir": tflite_dir, "tflite": sidecar}
