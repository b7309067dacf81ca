"""XtremeDistil: distil a transformer NER teacher into a small BiLSTM student.

  python run_xtreme_distil.py                      # the demo data in data/demo
  python run_xtreme_distil.py --task=DIR --transfer_file=FILE --model_dir=DIR
  python run_xtreme_distil.py --mode=export --model_dir=DIR    # SavedModel, TFLite, ONNX
  python run_xtreme_distil.py --mode=predict --model_dir=DIR --input=FILE --output=FILE

Flags keep the names of the original XtremeDistil script where they exist.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from xtremedistil import options as options_lib

FLAGS = flags.FLAGS

# === Options of a run (xtremedistil/options.py: one definition for flags and config.json) ===
options_lib.define_flags(FLAGS)

# === Modes ===
flags.DEFINE_enum("mode", "train", ["train", "export", "predict"],
                  "What to do: 'train' runs the whole pipeline; 'export' writes the trained "
                  "student of --model_dir as a SavedModel (TF Serving layout) and TFLite files "
                  "under --model_dir/export; 'predict' tags (NER) or classifies --input with "
                  "the exported SavedModel (exporting first when there is none).")
flags.DEFINE_integer("cpu_devices", 1,
                     "Split the CPU into this many logical devices (replicas of 'mirrored').")
flags.DEFINE_bool("verbose", False,
                  "Show TensorFlow's and the libraries' own log lines and Keras' progress "
                  "output (silenced by default).")

# === Export and predict ===
flags.DEFINE_string("export_name", "student",
                    "Model name in TF Serving: the SavedModel goes to "
                    "--model_dir/export/saved_model/<export_name>/<export_version>.")
flags.DEFINE_integer("export_version", 1, "SavedModel version folder (TF Serving version).")
flags.DEFINE_bool("export", True, "--mode=train: export the student when training ends "
                  "(--noexport: train only; --mode=export later).")
flags.DEFINE_string("input", "",
                    "--mode=predict: text file to tag ('-': standard input), one raw sentence "
                    "a line, split into words as the teacher's basic tokenizer splits "
                    "(punctuation and CJK characters are words of their own); empty lines give "
                    "empty sentences; a line that does not decode stops the run before "
                    "anything is written (--skip_bad_lines: an empty result). Classification runs: one "
                    "raw text a line (pair runs: 'text_a<TAB>text_b'); blank lines are "
                    "skipped, a line with another number of fields stops with file:line.")
flags.DEFINE_string("output", "", "--mode=predict: file to write the predictions to.")
flags.DEFINE_enum("output_format", "auto", ["auto", "conll", "tsv", "jsonl", "spans"],
                  "--mode=predict: 'conll' (NER) writes 'token<TAB>tag' lines with a blank "
                  "line after every sentence; 'tsv' (classification) one "
                  "'text<TAB>label<TAB>probability' line per non-blank input line (pairs: "
                  "'text_a<TAB>text_b<TAB>label<TAB>probability'); 'jsonl' one object a line "
                  "(NER {tokens, tags, probabilities}; classification {line, text, (text_b,) "
                  "label, probability, probabilities}); 'spans' (NER) one {text, entities: "
                  "[{text, type, start, end, score}]} object a line, start/end in Unicode "
                  "characters of the line; 'auto' conll for NER, tsv for classification.")
flags.DEFINE_integer("predict_batch_size", 256, "--mode=predict: sentences per model call.")


def validate_flags():
    """Cross-flag rules, checked before anything expensive runs."""
    if FLAGS.mode == "train":
        options_lib.from_flags(FLAGS).validate()
    if FLAGS.mode == "predict" and not (FLAGS.input and FLAGS.output):
        raise ValueError("--mode=predict needs --input (a text file) and --output.")
    if FLAGS.mode == "predict" and FLAGS.input != "-" and not os.path.exists(FLAGS.input):
        raise ValueError(f"--input={FLAGS.input} does not exist.")
    if FLAGS.export_version < 1 or FLAGS.predict_batch_size < 1:
        raise ValueError("--export_version and --predict_batch_size must be positive.")


def main(argv):
    del argv
    validate_flags()
    from xtremedistil import distribute  # pylint: disable=import-outside-toplevel
    from xtremedistil import export  # pylint: disable=import-outside-toplevel
    distribute.split_cpu(FLAGS.cpu_devices)
    if FLAGS.mode == "export":
        export.export_all(FLAGS.model_dir, FLAGS.export_name, FLAGS.export_version)
        return
    if FLAGS.mode == "predict":
        from xtremedistil import predict  # pylint: disable=import-outside-toplevel
        count = predict.predict_file(FLAGS.model_dir, FLAGS.input, FLAGS.output,
                                     FLAGS.output_format, FLAGS.export_name,
                                     FLAGS.predict_batch_size, FLAGS.encoding,
                                     FLAGS.skip_bad_lines)
        logging.info("predict: %d predictions written to %s", count, FLAGS.output)
        return
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    pipeline.run(options_lib.from_flags(FLAGS), given=options_lib.given_flags(FLAGS))
    if not distribute.is_chief() or not FLAGS.export:
        return  # the chief exports
    export.export_all(FLAGS.model_dir, FLAGS.export_name, FLAGS.export_version,
                      unless_current=True)


def run_main(argv):
    """main, with faults of input, options and training reported as one clear line instead of
    a traceback (ValueError is what the library raises for them); --verbose shows tracebacks."""
    from xtremedistil import training  # pylint: disable=import-outside-toplevel
    try:
        main(argv)
    except (ValueError, training.NonFiniteLossError) as error:
        if FLAGS.verbose:
            raise
        logging.error("%s", error)
        sys.exit(f"error: {error}")


def quiet_start(argv):
    """Before TensorFlow loads: silence its chatter unless --verbose."""
    from xtremedistil import console  # pylint: disable=import-outside-toplevel
    console.quiet_tensorflow(verbose=FLAGS.verbose)
    run_main(argv)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(quiet_start)
