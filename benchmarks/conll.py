"""CoNLL-2003 English (optionally CoNLL-2002 Spanish/Dutch) through the XtremeDistil pipeline.

  eng.train / eng.testa / eng.testb = train / dev / test (IOB1, converted to IOB2),
  esp.* / ned.* (--language_set=esp,ned): latin-1, IOB1-ish, read the same way.
Labeled train = the first --train_sentences of each train file (0: all); transfer = the next
--transfer_sentences train sentences with tags dropped, or, with --transfer_sentences=0, the
labeled train sentences themselves without tags; --transfer_files adds unlabeled sentences from
other files (e.g. PAN-X's English Wikipedia sentences). One teacher and one student for all
languages of the set; baseline=True (a same-shape student on the labels alone).

  python benchmarks/conll.py --quick
  python benchmarks/conll.py                       # full English CoNLL-2003
  python benchmarks/conll.py --language_set=esp,ned
  python benchmarks/conll.py --transfer_files=../shared/data/panx/train-en.tsv

Output: --output JSON (same schema as panx.py) and a Markdown table beside it.
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

from benchmarks import harness

FLAGS = flags.FLAGS

# CoNLL file prefix -> (language code in the results, encoding)
SETS = {"eng": ("en", "utf-8"), "esp": ("es", "latin-1"), "ned": ("nl", "latin-1")}
SPLIT_FILES = {"train": "train", "dev": "testa", "test": "testb"}
CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
# Recipe defaults other than Options'.
RECIPE_DEFAULTS = {"ft_epochs": 3, "distil_epochs": 6}

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
    flags.DEFINE_list("transfer_files", [],
                      "More unlabeled sentences for the transfer set, comma-separated files in "
                      "the main script's --transfer_file formats (one sentence a line, or "
                      "token<TAB>tag columns with the tags ignored), e.g. "
                      "../shared/data/panx/train-en.tsv. Relative to the repo root.")
    harness.define_flags("conll", QUICK, defaults=RECIPE_DEFAULTS)
    flags.adopt_module_key_flags(harness)


def _first(sentences, n):
    return sentences[:n] if n else sentences


def load_conll(data_dir, language_set, train_sentences, dev_sentences, test_sentences,
               transfer_sentences, transfer_files=()):
    """(splits dict, transfer list, per-language counts) from the CoNLL files, and the
    sentences of transfer_files (counted under "extra transfer")."""
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
        train = _first(loaded["train"], train_sentences)
        extra = (loaded["train"][len(train):len(train) + transfer_sentences]
                 if transfer_sentences else train)
        splits["train"] += train
        splits["dev"] += _first(loaded["dev"], dev_sentences)
        splits["test"] += _first(loaded["test"], test_sentences)
        transfer += extra
        counts[language] = {"train": len(train),
                            "dev": len(_first(loaded["dev"], dev_sentences)),
                            "test": len(_first(loaded["test"], test_sentences)),
                            "transfer": len(extra)}
    for path in transfer_files:
        resolved = harness.resolve(path)
        if not os.path.exists(resolved):
            raise app.UsageError(f"--transfer_files: {path} does not exist")
        extra = data_lib.read_transfer_file(resolved).sentences
        transfer += extra
        counts.setdefault("extra transfer", {})[path] = len(extra)
    return splits, transfer, counts


def describe(counts):
    extra = counts.get("extra transfer", {})
    return ("Sentences per language (train labeled / transfer unlabeled / dev / test): "
            + ", ".join(f"{lang} {c['train']} / {c['transfer']} / {c['dev']} / {c['test']}"
                        for lang, c in counts.items() if lang != "extra transfer")
            + (" (transfer = train sentences after the labeled ones)" if FLAGS.transfer_sentences
               else " (transfer = the labeled train sentences, tags dropped)")
            + "".join(f"; transfer also {n} sentences of {path}" for path, n in extra.items()))


def main(argv):
    del argv
    harness.apply_quick(QUICK)
    data_dir = harness.data_folder("CoNLL")
    language_set = [s.strip() for s in FLAGS.language_set if s.strip()]
    sizes = {name: FLAGS[name].value for name in (
        "train_sentences", "dev_sentences", "test_sentences", "transfer_sentences")}
    sizes["transfer_files"] = FLAGS.transfer_files
    harness.run({"data_dir": data_dir, "language_set": language_set, **sizes},
                lambda: load_conll(data_dir, language_set, **sizes), CONLL_TAGS, describe)


if __name__ == "__main__":
    define_conll_flags()
    harness.start(main)
