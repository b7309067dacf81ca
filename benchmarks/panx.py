"""WikiANN (PAN-X) quality benchmark of XtremeDistil: one multilingual teacher and student.

The low-resource setting of the XtremeDistil paper, per language:
  labeled train   the first --train_per_language train sentences (default 1000),
  dev             the first --dev_per_language dev sentences (default 500), model selection only,
  test            the first --test_per_language test sentences (0: the full split),
  transfer        the next --transfer_per_language train sentences, tags dropped.
All languages go into ONE teacher and ONE student, trained by xtremedistil.pipeline.run with
baseline=True (a same-shape student trained on the labeled data alone).

  python benchmarks/panx.py --quick          # en,de,ru, small sizes, < 10 minutes on 2 cores
  python benchmarks/panx.py                  # 10 languages, < 60 minutes on 2 cores
  python benchmarks/panx.py --student=transformer --num_hidden_layers=4 --hidden_size=256 \
      --distil_multi_hidden_states --reuse_teacher_from=benchmarks/out/panx ...

The student's options (the BiLSTM's, or the transformer's shape and its layer-wise
distillation) are flags here as in run_xtreme_distil.py (benchmarks/harness.py RECIPE_OPTIONS),
and a run can continue from an earlier student (CONTINUE_OPTIONS):
  python benchmarks/panx.py --student=transformer ... --pt_student_checkpoint=<a finished
      transformer run's --model_dir, or a transformers folder> --distil_mode=soft ...
  python benchmarks/panx.py ... --init_student_from=<a finished run's --model_dir on the same
      data> --distil_mode=soft --lr_schedule=cosine ...   # all of its student, head included

Writes <model_dir>/data/ (derived train/dev/test.tsv, transfer.txt, labels.tsv), the pipeline's
model_dir, --output (JSON) and the same path with .md (Markdown table).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# pylint: disable=wrong-import-position
from absl import app
from absl import flags
from absl import logging

from benchmarks import harness
from xtremedistil import options as options_lib

FLAGS = flags.FLAGS

PANX_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
DEFAULT_LANGUAGES = "en,de,es,fr,nl,ru,ar,hi,zh,ja"
# Recipe defaults other than Options': the multilingual teacher, a student vocabulary that keeps
# the student >= 35x smaller than it (250k teacher pieces; README "Student vocabulary"), and
# epochs sized for the 10-language run in < 60 minutes on 2 cores.
RECIPE_DEFAULTS = {"pt_teacher_checkpoint": "multilingual-e5-small", "student_vocab": "seen",
                   "student_vocab_size": 30000, "ft_epochs": 2, "distil_epochs": 3}

# PAN-X's own recipe flags: start the transformer student from an earlier one and distil it
# with another mode, e.g. one more pass of teacher logits over a finished run's best student
# (--pt_student_checkpoint=<that run's --model_dir> --distil_mode=soft: its encoder, a new output
# layer), or over all of it (--init_student_from=<that run's --model_dir>).
CONTINUE_OPTIONS = ("pt_student_checkpoint", "init_student_from", "distil_mode")

QUICK = {"languages": "en,de,ru", "train_per_language": 500, "dev_per_language": 100,
         "test_per_language": 500, "transfer_per_language": 1000, "ft_epochs": 2,
         "distil_epochs": 2, "model_dir": "benchmarks/out/panx_quick",
         "output": "benchmarks/out/panx_quick.json"}


def define_panx_flags():
    define_data_flags()
    harness.define_flags("panx", QUICK, "; < 10 minutes on 2 cores", RECIPE_DEFAULTS)
    flags.adopt_module_key_flags(harness)
    options_lib.define_flags(FLAGS, names=CONTINUE_OPTIONS)
    for name in CONTINUE_OPTIONS:
        flags.declare_key_flag(name)


def define_data_flags(defaults=None):
    """--data_dir, --languages and the per-language sizes (also used by
    transformer_ablation.py, with its own defaults)."""
    defaults = {"languages": DEFAULT_LANGUAGES, "train_per_language": 1000,
                "dev_per_language": 500, "test_per_language": 0,
                "transfer_per_language": 5000, **(defaults or {})}
    flags.DEFINE_string("data_dir", "../shared/data/panx",
                        "PAN-X folder with {train,dev,test}-<lang>.tsv (relative to the "
                        "repo root).")
    flags.DEFINE_list("languages", defaults["languages"],
                      "Languages, comma-separated; 'all': every language with train, dev and "
                      "test files in --data_dir.")
    flags.DEFINE_integer("train_per_language", defaults["train_per_language"],
                         "Labeled train sentences per language: the first N of train-<lang>.tsv.")
    flags.DEFINE_integer("dev_per_language", defaults["dev_per_language"],
                         "Dev sentences per language (the first N), for model selection only.")
    flags.DEFINE_integer("test_per_language", defaults["test_per_language"],
                         "Test sentences per language (the first N); 0: the full test split "
                         "(10,000 for most languages).")
    flags.DEFINE_integer("transfer_per_language", defaults["transfer_per_language"],
                         "Unlabeled transfer sentences per language: the train sentences after "
                         "the labeled ones, tags dropped. 0: no transfer set is possible, use >0.")


def load_panx(data_dir, languages, train_per_language, dev_per_language, test_per_language,
              transfer_per_language):
    """(splits dict, transfer list, per-language counts) from the PAN-X files."""
    train_n, dev_n, test_n = train_per_language, dev_per_language, test_per_language
    transfer_n = transfer_per_language
    from xtremedistil import data as data_lib  # pylint: disable=import-outside-toplevel
    splits = {"train": [], "dev": [], "test": []}
    transfer, counts = [], {}

    def read(split, language):
        path = os.path.join(data_dir, f"{split}-{language}.tsv")
        if not os.path.exists(path):
            raise app.UsageError(f"{path} does not exist (language {language!r} not in "
                                 f"--data_dir={data_dir}?)")
        # iob1 repairs an I-X after O into B-X (ja/zh '#' inside entities, test-el once);
        # a no-op on valid IOB2.
        return data_lib.read_labeled_file(path, data_format="columns", labels=PANX_TAGS,
                                          tag_scheme="iob1", language=language).sentences

    for language in languages:
        train = read("train", language)
        dev, test = read("dev", language), read("test", language)
        counts[language] = {
            "train": len(train[:train_n]), "dev": len(dev[:dev_n] if dev_n else dev),
            "test": len(test[:test_n] if test_n else test),
            "transfer": len(train[train_n:train_n + transfer_n])}
        if counts[language]["transfer"] < transfer_n:
            logging.warning("%s: only %d transfer sentences (train has %d)", language,
                            counts[language]["transfer"], len(train))
        splits["train"] += train[:train_n]
        splits["dev"] += dev[:dev_n] if dev_n else dev
        splits["test"] += test[:test_n] if test_n else test
        transfer += train[train_n:train_n + transfer_n]
    return splits, transfer, counts


def all_languages(data_dir):
    """The languages with all three split files in data_dir, sorted."""
    names = set(os.listdir(data_dir))
    found = sorted(name[len("train-"):-len(".tsv")] for name in names
                   if name.startswith("train-") and name.endswith(".tsv"))
    languages = [l for l in found if {f"dev-{l}.tsv", f"test-{l}.tsv"} <= names]
    if not languages:
        raise app.UsageError(f"--languages=all: no train-/dev-/test-<lang>.tsv files in "
                             f"{data_dir}.")
    return languages


def shortfalls(counts, sizes):
    """A sentence naming the languages with fewer sentences than asked for, and how many."""
    short = []
    for language, count in sorted(counts.items()):
        asked = {split: sizes[f"{split}_per_language"] for split in count}
        missing = [f"{split} {n:,}" for split, n in count.items() if n < asked[split]]
        if missing:
            short.append(f"{language} ({', '.join(missing)})")
    return f" Fewer sentences than that: {'; '.join(short)}." if short else ""


def main(argv):
    del argv
    harness.apply_quick(QUICK)
    data_dir = harness.data_folder("PAN-X")
    if FLAGS.train_per_language < 1 or FLAGS.transfer_per_language < 1:
        raise app.UsageError("--train_per_language and --transfer_per_language must be >= 1.")
    languages = [l.strip() for l in FLAGS.languages if l.strip()]
    if languages == ["all"]:
        languages = all_languages(data_dir)
    sizes = {name: FLAGS[name].value for name in (
        "train_per_language", "dev_per_language", "test_per_language", "transfer_per_language")}
    description = (
        "Per language: first {train} train sentences labeled, the next {transfer} unlabeled "
        "(transfer), {dev} dev sentences for model selection, {test} test sentences. One "
        "multilingual teacher and one student for all languages.").format(
            train=FLAGS.train_per_language, transfer=FLAGS.transfer_per_language,
            dev=FLAGS.dev_per_language or "all",
            test=FLAGS.test_per_language or "all (full split)")
    harness.run({"data_dir": data_dir, "languages": languages, **sizes},
                lambda: load_panx(data_dir, languages, **sizes), PANX_TAGS,
                lambda counts: description + shortfalls(counts, sizes), continue_options())


def continue_options():
    """CONTINUE_OPTIONS not at their defaults; --pt_student_checkpoint resolved, and a finished
    transformer benchmark run given there exported as its best student's checkpoint."""
    defaults = options_lib.Options()
    given = {name: FLAGS[name].value for name in CONTINUE_OPTIONS
             if FLAGS[name].value != getattr(defaults, name)}
    if given.get("pt_student_checkpoint"):
        folder = harness.resolve(given["pt_student_checkpoint"])
        if os.path.exists(os.path.join(folder, "metrics.json")):
            folder = harness.export_checkpoint(folder)
            logging.info("--pt_student_checkpoint: the run's best student, exported to %s",
                         folder)
        given["pt_student_checkpoint"] = folder
    if given.get("init_student_from"):
        given["init_student_from"] = harness.resolve(given["init_student_from"])
    return given


if __name__ == "__main__":
    define_panx_flags()
    harness.start(main)
