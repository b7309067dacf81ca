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

Writes <model_dir>/data/ (derived train/dev/test.tsv, transfer.txt, labels.tsv), the pipeline's
model_dir, --output (JSON) and the same path with .md (Markdown table).
"""

import json
import os
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from absl import app  # pylint: disable=wrong-import-position
from absl import flags  # pylint: disable=wrong-import-position
from absl import logging  # pylint: disable=wrong-import-position

FLAGS = flags.FLAGS

PANX_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
DEFAULT_LANGUAGES = "en,de,es,fr,nl,ru,ar,hi,zh,ja"

# Recipe options passed through to xtremedistil.pipeline.Config, with the benchmark's defaults
# (sized for the 10-language run in < 60 minutes on 2 CPU cores).
RECIPE_DEFAULTS = {
    "seq_len": 32,
    "pt_teacher_checkpoint": "",
    "teacher_layer": -1,
    "ft_batch_size": 16,
    "ft_epochs": 2,
    "ft_learning_rate": 1e-4,
    "student_vocab": "full",
    "word_emb_dim": 100,
    "bilstm_hidden_size": 128,
    "dropout_rate": 0.1,
    "distil_batch_size": 32,
    "distil_epochs": 3,
    "distil_learning_rate": 1e-3,
    "logits_loss": "mse",
    "temperature": 1.0,
    "patience": 2,
    "seed": 42,
}
RECIPE_HELP = {
    "seq_len": "Word pieces per sentence (longer ones truncated, cut words scored as O).",
    "pt_teacher_checkpoint": "Teacher checkpoint folder; empty: MiniLM-L6-H384 uncased.",
    "teacher_layer": "Teacher layer distilled in stage 1 (0 embeddings, -1 last).",
    "ft_batch_size": "Teacher fine-tuning batch size.",
    "ft_epochs": "Teacher fine-tuning epochs (early stopping on dev F1).",
    "ft_learning_rate": "Teacher fine-tuning peak learning rate.",
    "student_vocab": "Student word pieces: 'seen' in train/transfer, or the teacher's 'full' vocabulary.",
    "word_emb_dim": "Student word embedding size (factorised teacher embeddings).",
    "bilstm_hidden_size": "Student LSTM units per direction.",
    "dropout_rate": "Student dropout after the BiLSTM.",
    "distil_batch_size": "Student batch size.",
    "distil_epochs": "Maximum epochs of each of the 9 student sub-stages (and 4 baseline ones).",
    "distil_learning_rate": "Student Adam learning rate.",
    "logits_loss": "Stage 2 loss: 'mse' (paper) or 'kl' (with --temperature).",
    "temperature": "Softmax temperature of the KL logit loss.",
    "patience": "Epochs without improvement before a (sub-)stage stops.",
    "seed": "Random seed.",
}
ENUM_CHOICES = {"logits_loss": ["mse", "kl"], "student_vocab": ["seen", "full"]}
# Options that decide the fine-tuned teacher (with the data): --reuse_teacher_from checks them.
TEACHER_KEYS = ("seq_len", "pt_teacher_checkpoint", "ft_batch_size", "ft_epochs",
                "ft_learning_rate", "patience", "seed")


def define_recipe_flags(**overrides):
    """Defines the recipe flags and the run flags shared by the benchmarks."""
    for name, default in {**RECIPE_DEFAULTS, **overrides}.items():
        if name in ENUM_CHOICES:
            flags.DEFINE_enum(name, default, ENUM_CHOICES[name], RECIPE_HELP[name])
        elif isinstance(default, str):
            flags.DEFINE_string(name, default, RECIPE_HELP[name])
        elif isinstance(default, float):
            flags.DEFINE_float(name, default, RECIPE_HELP[name])
        else:
            flags.DEFINE_integer(name, default, RECIPE_HELP[name])
    flags.DEFINE_string("reuse_teacher_from", "",
                        "A finished benchmark model_dir with the same data and teacher options: "
                        "its fine-tuned teacher (and, with the same --teacher_layer, its stored "
                        "teacher outputs) is copied instead of trained again. For student-only "
                        "experiments.")
    flags.DEFINE_bool("overwrite", False,
                      "Delete --model_dir first when it holds a run with other options "
                      "(otherwise such a run is refused; the same options resume).")


def resolve(path):
    """A path relative to the repository root (absolute paths unchanged)."""
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(REPO, path))


def recipe_options():
    return {name: FLAGS[name].value for name in RECIPE_DEFAULTS}


def apply_quick(quick_values):
    """Sets the --quick values of flags the user did not give explicitly."""
    for name, value in quick_values.items():
        if not FLAGS[name].present:
            flag = FLAGS[name]
            flag.value = flag.parser.parse(value) if isinstance(value, str) else value


# === Derived data ===

def write_task(folder, splits, transfer):
    """Writes train/dev/test.tsv (XtremeDistil format, 'lang:TAG'), transfer.txt, labels.tsv."""
    os.makedirs(folder, exist_ok=True)
    for split, sentences in splits.items():
        with open(os.path.join(folder, f"{split}.tsv"), "w", encoding="utf-8") as f:
            for s in sentences:
                _check_tokens(s)
                tags = " ".join(f"{s.language}:{t}" for t in s.tags)
                f.write(f"{' '.join(s.tokens)}\t{tags}\n")
    with open(os.path.join(folder, "transfer.txt"), "w", encoding="utf-8") as f:
        for s in transfer:
            _check_tokens(s)
            f.write(" ".join(s.tokens) + "\n")
    with open(os.path.join(folder, "labels.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(PANX_TAGS) + "\n")


def _check_tokens(sentence):
    for token in sentence.tokens:
        if not token or any(c in token for c in " \t\r\n"):
            raise ValueError(f"{sentence.source}: token {token!r} cannot be written to the "
                             "XtremeDistil TSV format (empty or contains whitespace)")


def prepare_model_dir(model_dir, manifest, reuse_from):
    """Refuses (or with --overwrite deletes) a model_dir made with other options; reuses a teacher.

    The pipeline's own resume check compares data file paths and model shape only, so a rerun
    with other sizes or another recipe (epochs, learning rates, logits loss) in the same folder
    would silently reuse stale results; the manifest covers every option.
    """
    path = os.path.join(model_dir, "benchmark.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        changed = sorted(k for k in set(previous) | set(manifest)
                         if previous.get(k) != manifest.get(k))
        if changed and not FLAGS.overwrite:
            raise app.UsageError(
                f"--model_dir={model_dir} holds a run with other options ("
                + ", ".join(f"{k}: {previous.get(k)!r} -> {manifest.get(k)!r}" for k in changed)
                + "); give another --model_dir, or --overwrite to delete it.")
        if changed:
            logging.info("--overwrite: deleting %s", model_dir)
            shutil.rmtree(model_dir)
    os.makedirs(model_dir, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    if reuse_from:
        _reuse_teacher(resolve(reuse_from), model_dir, manifest)


def _reuse_teacher(source, model_dir, manifest):
    with open(os.path.join(source, "benchmark.json"), encoding="utf-8") as f:
        other = json.load(f)
    # The teacher is fine-tuned on the labeled data: the transfer set does not change it.
    keys = [k for k in manifest["data"] if k != "transfer_per_language"] + list(TEACHER_KEYS)
    mine = {**manifest["data"], **manifest["recipe"]}
    theirs = {**other["data"], **other["recipe"]}
    changed = [k for k in keys if mine.get(k) != theirs.get(k)]
    if changed:
        raise app.UsageError(f"--reuse_teacher_from={source}: other data or teacher options "
                             f"({', '.join(changed)}); cannot reuse its teacher.")
    if not os.path.exists(os.path.join(source, "teacher", "tf_model.h5")):
        raise app.UsageError(f"--reuse_teacher_from={source}: no fine-tuned teacher there.")
    if not os.path.exists(os.path.join(model_dir, "teacher")):
        shutil.copytree(os.path.join(source, "teacher"), os.path.join(model_dir, "teacher"))
        logging.info("teacher: copied from %s", source)
    same_outputs = all(mine.get(k) == theirs.get(k)
                     for k in ("teacher_layer", "transfer_per_language"))
    outputs = os.path.join(source, "teacher_outputs")
    if same_outputs and os.path.isdir(outputs) and not os.path.exists(
            os.path.join(model_dir, "teacher_outputs")):
        shutil.copytree(outputs, os.path.join(model_dir, "teacher_outputs"))
        logging.info("teacher outputs: copied from %s", source)


def run_pipeline(model_dir, task_dir, recipe, language=""):
    """pipeline.run on the derived files; returns (metrics, seconds of the baseline stages)."""
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    config = pipeline.Config(
        task=task_dir, transfer_file=os.path.join(task_dir, "transfer.txt"),
        model_dir=model_dir, data_format="xtremedistil", tag_scheme="iob2",
        language=language, baseline=True, **recipe)
    metrics = pipeline.run(config)
    return metrics, _progress(model_dir)


def _progress(model_dir):
    """The best dev F1 of student and baseline (from progress.json)."""
    info = {}
    for name, folder in (("student", "student"), ("baseline", "student_baseline")):
        path = os.path.join(model_dir, folder, "progress.json")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            records = json.load(f)
        scored = [r for r in records if r.get("dev_f1") is not None]
        if scored:
            info[f"{name}_dev_f1"] = max(r["dev_f1"] for r in scored)
    return info


# === Report ===

def summarise(metrics, seconds):
    """The benchmark JSON: per-language F1s and retention, means, params, seconds."""
    languages = {}
    for language, teacher in metrics["teacher"]["per_language"].items():
        student = metrics["student"]["per_language"][language]["f1"]
        baseline = metrics["baseline"]["per_language"][language]["f1"]
        languages[language] = {
            "teacher_f1": teacher["f1"], "student_f1": student, "baseline_f1": baseline,
            "retention": student / teacher["f1"] if teacher["f1"] else 0.0}
    mean_teacher = metrics["teacher"]["mean_f1"]
    mean_student = metrics["student"]["mean_f1"]
    return {
        "languages": languages,
        "mean_teacher_f1": mean_teacher,
        "mean_student_f1": mean_student,
        "mean_baseline_f1": metrics["baseline"]["mean_f1"],
        # Ratio of the macro means (not the mean of per-language ratios).
        "mean_retention": mean_student / mean_teacher if mean_teacher else 0.0,
        "params": {"teacher": metrics["params"]["teacher"],
                   "student": metrics["params"]["student"]},
        "seconds": round(seconds, 1),
    }


def markdown(summary, metrics, progress, command, sizes):
    """Results table, sizes, stage times."""
    lines = [f"Command: `{command}`", "", sizes, "",
             "| language | test sentences | teacher F1 | student F1 | baseline F1 | retention |",
             "|---|---|---|---|---|---|"]
    for language, row in summary["languages"].items():
        n = metrics["teacher"]["per_language"][language]["sentences"]
        lines.append(f"| {language} | {n} | {100 * row['teacher_f1']:.1f} | "
                     f"{100 * row['student_f1']:.1f} | {100 * row['baseline_f1']:.1f} | "
                     f"{100 * row['retention']:.1f}% |")
    lines.append(f"| **mean** | | **{100 * summary['mean_teacher_f1']:.1f}** | "
                 f"**{100 * summary['mean_student_f1']:.1f}** | "
                 f"**{100 * summary['mean_baseline_f1']:.1f}** | "
                 f"**{100 * summary['mean_retention']:.1f}%** |")
    params = summary["params"]
    lines += ["", "F1: entity-level (seqeval), test split. Retention: student F1 / teacher F1; "
              "the mean row's retention is mean student F1 / mean teacher F1.",
              f"Parameters: teacher {params['teacher']:,}, student {params['student']:,} "
              f"({params['teacher'] / params['student']:.1f}x smaller). "
              f"Best student sub-stage (dev): {metrics['best_stage']}. "
              f"Sentences longer than --seq_len (train+dev+test+transfer, cut words scored "
              f"as O): {metrics['truncated_sentences']}.",
              "Dev mean F1 (model selection): student {:.1f}, baseline {:.1f}.".format(
                  100 * progress.get("student_dev_f1", 0.0),
                  100 * progress.get("baseline_dev_f1", 0.0)),
              "", "| stage | seconds |", "|---|---|"]
    staged = 0.0
    for stage in metrics["stages"]:
        lines.append(f"| {stage['name']} | {stage['seconds']:.0f} |")
        staged += stage["seconds"]
    other = metrics["seconds"] - staged
    lines.append(f"| other (data, teacher inference on test, student/baseline "
                 f"evaluation) | {other:.0f} |")
    lines.append(f"| **total (benchmark)** | **{summary['seconds']:.0f}** |")
    return "\n".join(lines) + "\n"


def write_outputs(summary, table, output):
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    table_path = os.path.splitext(output)[0] + ".md"
    with open(table_path, "w", encoding="utf-8") as f:
        f.write(table)
    print(table)
    print(f"wrote {output} and {table_path}")


def command_line():
    return "python " + " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


# === PAN-X ===

QUICK = {"languages": "en,de,ru", "train_per_language": 500, "dev_per_language": 100,
         "test_per_language": 500, "transfer_per_language": 1000, "ft_epochs": 2,
         "distil_epochs": 2, "model_dir": "benchmarks/out/panx_quick",
         "output": "benchmarks/out/panx_quick.json"}


def define_panx_flags():
    flags.DEFINE_string("data_dir", "../shared/data/panx",
                        "PAN-X folder with {train,dev,test}-<lang>.tsv (relative to the repo root).")
    flags.DEFINE_list("languages", DEFAULT_LANGUAGES, "Languages, comma-separated.")
    flags.DEFINE_integer("train_per_language", 1000,
                         "Labeled train sentences per language: the first N of train-<lang>.tsv.")
    flags.DEFINE_integer("dev_per_language", 500,
                         "Dev sentences per language (the first N), for model selection only.")
    flags.DEFINE_integer("test_per_language", 0,
                         "Test sentences per language (the first N); 0: the full test split "
                         "(10,000 for most languages).")
    flags.DEFINE_integer("transfer_per_language", 5000,
                         "Unlabeled transfer sentences per language: the train sentences after "
                         "the labeled ones, tags dropped. 0: no transfer set is possible, use >0.")
    flags.DEFINE_string("model_dir", "benchmarks/out/panx", "Pipeline output folder.")
    flags.DEFINE_string("output", "benchmarks/out/panx.json",
                        "Result JSON; the Markdown table goes beside it (.md).")
    flags.DEFINE_bool("quick", False,
                      "Smoke benchmark: " + ", ".join(f"--{k}={v}" for k, v in QUICK.items())
                      + " (flags given explicitly win); < 10 minutes on 2 cores.")
    define_recipe_flags()


def load_panx(data_dir, languages, train_n, dev_n, test_n, transfer_n):
    """(splits dict, transfer list, per-language counts) from the PAN-X files."""
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


def main(argv):
    del argv
    started = time.time()
    if FLAGS.quick:
        apply_quick(QUICK)
    data_dir = resolve(FLAGS.data_dir)
    if not os.path.isdir(data_dir):
        raise app.UsageError(f"--data_dir={FLAGS.data_dir}: no folder {data_dir}. The PAN-X "
                             "files live in ../shared/data/panx beside the repository.")
    if FLAGS.train_per_language < 1 or FLAGS.transfer_per_language < 1:
        raise app.UsageError("--train_per_language and --transfer_per_language must be >= 1.")
    languages = [l.strip() for l in FLAGS.languages if l.strip()]
    model_dir = resolve(FLAGS.model_dir)
    recipe = recipe_options()
    data_options = {"data_dir": data_dir, "languages": languages,
                    "train_per_language": FLAGS.train_per_language,
                    "dev_per_language": FLAGS.dev_per_language,
                    "test_per_language": FLAGS.test_per_language,
                    "transfer_per_language": FLAGS.transfer_per_language}
    prepare_model_dir(model_dir, {"data": data_options, "recipe": recipe},
                      FLAGS.reuse_teacher_from)

    splits, transfer, counts = load_panx(
        data_dir, languages, FLAGS.train_per_language, FLAGS.dev_per_language,
        FLAGS.test_per_language, FLAGS.transfer_per_language)
    task_dir = os.path.join(model_dir, "data")
    write_task(task_dir, splits, transfer)
    logging.info("PAN-X sentences per language: %s", counts)

    metrics, progress = run_pipeline(model_dir, task_dir, recipe)
    summary = summarise(metrics, time.time() - started)
    sizes = ("Per language: first {train} train sentences labeled, the next {transfer} "
             "unlabeled (transfer), {dev} dev sentences for model selection, {test} test "
             "sentences. One multilingual teacher and one student for all languages.").format(
                 train=FLAGS.train_per_language, transfer=FLAGS.transfer_per_language,
                 dev=FLAGS.dev_per_language or "all",
                 test=FLAGS.test_per_language or "all (full split)")
    table = markdown(summary, metrics, progress, command_line(), sizes)
    write_outputs(summary, table, resolve(FLAGS.output))


if __name__ == "__main__":
    define_panx_flags()
    logging.set_verbosity(logging.INFO)
    app.run(main)
