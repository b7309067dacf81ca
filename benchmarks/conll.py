"""CoNLL-2003 English (optionally CoNLL-2002 Spanish/Dutch) through the XtremeDistil pipeline.

  eng.train / eng.testa / eng.testb = train / dev / test (IOB1, converted to IOB2),
  esp.* / ned.* (--language_set=esp,ned): latin-1, IOB1-ish, read the same way.
Labeled train = the first --train_sentences of each train file (0: all); transfer = the next
--transfer_sentences train sentences with tags dropped, or, with --transfer_sentences=0, the
labeled train sentences themselves without tags (no extra unlabeled text). One teacher and one
student for all languages of the set; baseline=True (a same-shape student on the labels alone).

  python benchmarks/conll.py --quick
  python benchmarks/conll.py                       # full English CoNLL-2003
  python benchmarks/conll.py --language_set=esp,ned

Output: --output JSON (same schema as panx.py) and a Markdown table beside it.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import panx  # pylint: disable=wrong-import-position
from absl import app  # pylint: disable=wrong-import-position
from absl import flags  # pylint: disable=wrong-import-position
from absl import logging  # pylint: disable=wrong-import-position

FLAGS = flags.FLAGS

# CoNLL file prefix -> (language code in the results, encoding)
SETS = {"eng": ("en", "utf-8"), "esp": ("es", "latin-1"), "ned": ("nl", "latin-1")}
SPLIT_FILES = {"train": "train", "dev": "testa", "test": "testb"}
CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

QUICK = {"train_sentences": 1000, "dev_sentences": 300, "test_sentences": 1000,
         "transfer_sentences": 3000, "ft_epochs": 3, "distil_epochs": 3,
         "model_dir": "benchmarks/out/conll_quick", "output": "benchmarks/out/conll_quick.json"}


def define_conll_flags():
    flags.DEFINE_string("data_dir", "../shared/data/conll",
                        "CoNLL folder with eng.* / esp.* / ned.* (relative to the repo root).")
    flags.DEFINE_list("language_set", "eng",
                      "CoNLL file sets, comma-separated: eng (CoNLL-2003 English), esp, ned "
                      "(CoNLL-2002 Spanish, Dutch; latin-1).")
    flags.DEFINE_integer("train_sentences", 0,
                         "Labeled train sentences per set: the first N (0: all).")
    flags.DEFINE_integer("dev_sentences", 0, "Dev (testa) sentences per set, first N (0: all).")
    flags.DEFINE_integer("test_sentences", 0, "Test (testb) sentences per set, first N (0: all).")
    flags.DEFINE_integer("transfer_sentences", 0,
                         "Unlabeled transfer sentences per set: the N train sentences after the "
                         "labeled ones, tags dropped. 0: the labeled train sentences themselves, "
                         "tags dropped (no extra text).")
    flags.DEFINE_string("model_dir", "benchmarks/out/conll", "Pipeline output folder.")
    flags.DEFINE_string("output", "benchmarks/out/conll.json",
                        "Result JSON; the Markdown table goes beside it (.md).")
    flags.DEFINE_bool("quick", False,
                      "Smoke benchmark: " + ", ".join(f"--{k}={v}" for k, v in QUICK.items())
                      + " (flags given explicitly win).")
    panx.define_recipe_flags(ft_epochs=3, distil_epochs=6)


def _first(sentences, n):
    return sentences[:n] if n else sentences


def load_conll(data_dir, language_set, train_n, dev_n, test_n, transfer_n):
    from xtremedistil import data as data_lib  # pylint: disable=import-outside-toplevel
    splits = {"train": [], "dev": [], "test": []}
    transfer, counts = [], {}
    for name in language_set:
        if name not in SETS:
            raise app.UsageError(f"--language_set: unknown set {name!r}; expected "
                                 f"{', '.join(SETS)}")
        language, encoding = SETS[name]
        loaded = {}
        for split, suffix in SPLIT_FILES.items():
            path = os.path.join(data_dir, f"{name}.{suffix}")
            if not os.path.exists(path):
                raise app.UsageError(f"{path} does not exist")
            loaded[split] = data_lib.read_labeled_file(
                path, data_format="columns", labels=CONLL_TAGS, encoding=encoding,
                tag_scheme="iob1", language=language).sentences
        train = _first(loaded["train"], train_n)
        extra = (loaded["train"][len(train):len(train) + transfer_n] if transfer_n
                 else train)
        splits["train"] += train
        splits["dev"] += _first(loaded["dev"], dev_n)
        splits["test"] += _first(loaded["test"], test_n)
        transfer += extra
        counts[language] = {"train": len(train), "dev": len(_first(loaded["dev"], dev_n)),
                            "test": len(_first(loaded["test"], test_n)),
                            "transfer": len(extra)}
    return splits, transfer, counts


def main(argv):
    del argv
    started = time.time()
    if FLAGS.quick:
        panx.apply_quick(QUICK)
    data_dir = panx.resolve(FLAGS.data_dir)
    if not os.path.isdir(data_dir):
        raise app.UsageError(f"--data_dir={FLAGS.data_dir}: no folder {data_dir}. The CoNLL "
                             "files live in ../shared/data/conll beside the repository.")
    language_set = [s.strip() for s in FLAGS.language_set if s.strip()]
    model_dir = panx.resolve(FLAGS.model_dir)
    recipe = panx.recipe_options()
    data_options = {"data_dir": data_dir, "language_set": language_set,
                    "train_sentences": FLAGS.train_sentences,
                    "dev_sentences": FLAGS.dev_sentences,
                    "test_sentences": FLAGS.test_sentences,
                    "transfer_sentences": FLAGS.transfer_sentences}
    panx.prepare_model_dir(model_dir, {"data": data_options, "recipe": recipe},
                           FLAGS.reuse_teacher_from)
    splits, transfer, counts = load_conll(
        data_dir, language_set, FLAGS.train_sentences, FLAGS.dev_sentences,
        FLAGS.test_sentences, FLAGS.transfer_sentences)
    task_dir = os.path.join(model_dir, "data")
    panx.write_task(task_dir, splits, transfer)
    # write_task writes PAN-X labels; CoNLL has MISC too.
    with open(os.path.join(task_dir, "labels.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(CONLL_TAGS) + "\n")
    logging.info("CoNLL sentences per language: %s", counts)

    metrics, progress = panx.run_pipeline(model_dir, task_dir, recipe)
    summary = panx.summarise(metrics, time.time() - started)
    sizes = "Sentences per language (train labeled / transfer unlabeled / dev / test): " + \
        ", ".join(f"{lang} {c['train']} / {c['transfer']} / {c['dev']} / {c['test']}"
                  for lang, c in counts.items()) + \
        (" (transfer = the labeled train sentences, tags dropped)"
         if not FLAGS.transfer_sentences else " (transfer = train sentences after the labeled ones)")
    table = panx.markdown(summary, metrics, progress, panx.command_line(), sizes)
    panx.write_outputs(summary, table, panx.resolve(FLAGS.output))


if __name__ == "__main__":
    define_conll_flags()
    logging.set_verbosity(logging.INFO)
    app.run(main)
