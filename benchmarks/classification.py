"""Sentence and sentence-pair classification benchmark: hard, soft and stage-wise distillation.

The low-resource setting of Mukherjee & Awadallah (2020, "Distilling BERT into Simple Neural
Networks with Unlabeled Transfer Data"), from one folder with train/dev/test.tsv and labels.tsv
('text<TAB>label' lines, or with --pairwise 'text_a<TAB>text_b<TAB>label'; labels optionally
prefixed 'lang:' for per-language scores):
  labeled train   the first --labeled train lines (default 500),
  transfer        the next --transfer train lines, labels dropped (default -1: all the rest;
                  0: the labeled train texts themselves, unlabeled, i.e. no extra text),
  dev             the first --dev lines (0: all), model selection only,
  test            the first --test lines (0: all).

Every mode of --modes is its own xtremedistil.pipeline.run in <model_dir>/<mode>/ on the same
derived files (<model_dir>/data/). ONE teacher is fine-tuned, by the first run; the others
get a copy (hard links) of its teacher/ folder and of its stored teacher outputs, so the
teacher trains and reads the transfer set once. stagewise runs first when asked for: it
stores hidden states and logits, which serve hard and soft (logits alone) too. The first run
also trains the baseline: the same student on the labeled data alone.

  python benchmarks/classification.py --quick       # sized for < 10 minutes on 2 cores
  python benchmarks/classification.py               # sized for < 60 minutes on 2 cores
  python benchmarks/classification.py --data_dir=../shared/data/classification/tatoeba-en-es \\
      --pairwise --labeled=2000 --transfer=20000 --modes=stagewise   # pairs, ~50 minutes
  python benchmarks/classification.py --data_dir=data/demo_classification --quick
  python benchmarks/classification.py --sweep_transfer=0,1000,4000,-1   # accuracy vs transfer

Writes --output (JSON), the same path with .md (Markdown table), and prints the table and a
line for benchmarks/RESULTS.md. With --sweep_transfer: the curve as JSON, .md and .png.
"""

import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# pylint: disable=wrong-import-position
from absl import app
from absl import flags
from absl import logging

from benchmarks import harness
from xtremedistil import data as data_lib
from xtremedistil import options as options_lib

FLAGS = flags.FLAGS

DEFAULT_DATA_DIR = "../shared/data/classification/rt-snippets"
BERT_BASE_PARAMS = 110_000_000
MODES = tuple(next(f for f in options_lib.fields() if f.name == "distil_mode").metadata["choices"])
# The mode that runs first: its stored teacher outputs (hidden states and logits) serve the
# others (the logits alone); the other way round the teacher would read the transfer set again.
RUNS_FIRST = "stagewise"
# Options the benchmark sets itself, per run; they have no flag here.
SET_PER_RUN = ("task", "transfer_file", "train_file", "dev_file", "test_file", "model_dir",
               "do_NER", "do_pairwise", "distil_mode", "baseline", "data_format", "tag_scheme",
               "max_transfer")
# Options used to read --data_dir; the derived files are UTF-8 with a 'lang:' prefix.
READ_OPTIONS = ("encoding", "language", "skip_bad_lines")
# Every other option (--opt_policy, ...) goes to the pipeline as given; the run options
# (--strategy, --checkpoint_steps, ...) come from the harness.
PASS_THROUGH = tuple(f.name for f in options_lib.fields()
                     if f.name not in harness.RECIPE_OPTIONS + harness.RUN_OPTIONS + SET_PER_RUN
                     + READ_OPTIONS)
# Recipe defaults other than Options': the multilingual teacher, a student vocabulary that
# keeps the student far smaller than it (250k teacher pieces), pieces for ~99% of the
# rt-snippets sentences and tatoeba pairs whole, and epochs sized for < 60 minutes on 2 cores.
RECIPE_DEFAULTS = {"pt_teacher_checkpoint": "multilingual-e5-small", "student_vocab": "seen",
                   "student_vocab_size": 30000, "seq_len": 64, "ft_epochs": 3,
                   "distil_epochs": 3}

QUICK = {"labeled": 200, "transfer": 1000, "dev": 200, "test": 200, "ft_epochs": 2,
         "distil_epochs": 2, "model_dir": "benchmarks/out/classification_quick",
         "output": "benchmarks/out/classification_quick.json"}


def define_classification_flags():
    flags.DEFINE_string("data_dir", DEFAULT_DATA_DIR,
                        "Folder with train.tsv, dev.tsv, test.tsv and labels.tsv (relative to "
                        "the repo root): 'text<TAB>label' lines, labels optionally 'lang:label'.")
    flags.DEFINE_bool("pairwise", False, "Sentence pairs: 'text_a<TAB>text_b<TAB>label' lines "
                      "(e.g. ../shared/data/classification/tatoeba-en-es).")
    flags.DEFINE_integer("labeled", 500, "Labeled train examples: the first N lines of "
                         "train.tsv (the paper's low-resource setting).")
    flags.DEFINE_integer("transfer", -1, "Unlabeled transfer examples: the N train lines after "
                         "the labeled ones, labels dropped. -1: all the rest; 0: the labeled "
                         "train texts themselves, unlabeled (no extra text).")
    flags.DEFINE_integer("dev", 0, "Dev examples, the first N lines (0: all); model selection "
                         "only.")
    flags.DEFINE_integer("test", 0, "Test examples, the first N lines (0: all).")
    flags.DEFINE_list("modes", "hard,soft,stagewise",
                      f"Distillation modes, each its own pipeline run ({', '.join(MODES)}); "
                      "the first run (stagewise when asked for) fine-tunes the teacher and "
                      "trains the baseline.")
    flags.DEFINE_list("sweep_transfer", [],
                      "Instead of the benchmark: accuracy against the transfer set size, a run "
                      "of each --sweep_modes per size (e.g. 0,1000,4000,-1; 0 and -1 as for "
                      "--transfer), one teacher and one baseline for all. Writes the curve as "
                      "JSON, .md and .png; --model_dir and --output default to the benchmark's "
                      "with '_sweep' appended.")
    flags.DEFINE_list("sweep_modes", "hard,stagewise", "The modes of --sweep_transfer.")
    harness.define_flags("classification", QUICK, "; < 10 minutes on 2 cores", RECIPE_DEFAULTS)
    options_lib.define_flags(FLAGS, names=READ_OPTIONS + PASS_THROUGH)
    flags.adopt_module_key_flags(harness)
    for name in READ_OPTIONS + PASS_THROUGH:
        flags.declare_key_flag(name)


# === Data ===

def read_folder(folder, pairwise, encoding="utf-8", language=None, skip_bad_lines=False):
    """({"train", "dev", "test": [data.TextExample]}, labels) from a classification folder."""
    labels_path = os.path.join(folder, "labels.tsv")
    labels = data_lib.read_labels(labels_path, encoding) if os.path.exists(labels_path) else None
    splits = {}
    for split in harness.TASK_FILES:
        path = os.path.join(folder, f"{split}.tsv")
        if not os.path.exists(path):
            raise app.UsageError(f"{path} does not exist: --data_dir needs train.tsv, dev.tsv "
                                 "and test.tsv.")
        try:
            loaded = data_lib.read_text_file(path, pairwise=pairwise, labels=labels,
                                             skip_bad_lines=skip_bad_lines, encoding=encoding,
                                             language=language)
        except data_lib.DataError as error:
            hint = "" if pairwise else " (sentence pairs? give --pairwise)"
            raise app.UsageError(f"{error}{hint}") from error
        if loaded.skipped:
            logging.warning("%s: skipped %d bad lines", path, loaded.skipped)
        splits[split] = loaded.sentences
    return splits, labels or data_lib.derive_text_labels(splits["train"])


def split_train(train, labeled, transfer):
    """(labeled examples, transfer examples with their labels dropped): the first `labeled`
    examples, and the `transfer` after them (-1: all the rest; 0: the labeled ones)."""
    if not 1 <= labeled <= len(train):
        raise ValueError(f"--labeled={labeled}: train has {len(train)} examples; give 1 to "
                         f"{len(train)}.")
    if transfer < -1:
        raise ValueError(f"--transfer={transfer}: give -1 (all the rest), 0 or more.")
    head = train[:labeled]
    rest = train[labeled:] if transfer == -1 else train[labeled:labeled + transfer]
    unlabeled = [dataclasses.replace(e, label=None) for e in (rest if transfer else head)]
    if len(unlabeled) < 2:
        raise ValueError(f"--labeled={labeled} --transfer={transfer}: {len(unlabeled)} transfer "
                         "examples; the pipeline needs at least 2 (--transfer=0 uses the "
                         "labeled texts).")
    return head, unlabeled


def first(examples, n):
    return examples[:n] if n else examples


def example_line(example):
    """The derived file's line: 'text[<TAB>text_b][<TAB>lang:label]' (no prefix for the default
    language, no label for transfer examples)."""
    fields = [example.text] + ([example.text_b] if example.text_b is not None else [])
    for text in fields:
        if not text.strip() or any(c in text for c in "\t\r\n"):
            raise ValueError(f"{example.source}: text {text!r} cannot be written as a TSV field "
                             "(empty, or a tab or line break inside)")
    if example.label is not None:
        language = example.language
        fields.append(example.label if language == data_lib.DEFAULT_LANGUAGE
                      else f"{language}:{example.label}")
    return "\t".join(fields)


def write_task(folder, splits, transfer, labels):
    """Writes train/dev/test.tsv, transfer.txt and labels.tsv (UTF-8) into `folder`."""
    os.makedirs(folder, exist_ok=True)
    files = {f"{split}.tsv": splits[split] for split in harness.TASK_FILES}
    files["transfer.txt"] = transfer
    for name, examples in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8", newline="\n") as f:
            f.writelines(example_line(e) + "\n" for e in examples)
    with open(os.path.join(folder, "labels.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(labels) + "\n")


def languages_of(examples):
    counts = {}
    for example in examples:
        counts[example.language] = counts.get(example.language, 0) + 1
    return counts


def describe(task, counts, transfer):
    """The sizes sentence of the report."""
    source = ("the labeled train texts themselves, labels dropped (no extra text)"
              if transfer == 0 else "the train examples after the labeled ones, labels dropped")
    return (f"Task {task}: {counts['train']:,} labeled train examples, {counts['transfer']:,} "
            f"transfer examples ({source}), {counts['dev']:,} dev (model selection), "
            f"{counts['test']:,} test.")


# === Runs ===

def share_teacher(source_dir, target_dir):
    """Gives run folder `target_dir` the fine-tuned teacher of `source_dir` (hard links) unless
    it has a teacher folder already; True when it did."""
    from xtremedistil import teacher as teacher_lib  # pylint: disable=import-outside-toplevel
    source, target = (os.path.join(d, "teacher") for d in (source_dir, target_dir))
    if not teacher_lib.is_finetuned(source) or os.path.exists(target):
        return False
    os.makedirs(target_dir, exist_ok=True)
    harness.link_tree(source, target)
    return True


def share_outputs(source_dir, target_dir):
    """Gives run folder `target_dir` the stored teacher outputs of `source_dir`, a run on the
    same transfer file, unless it has its own. Their stamp.json makes the pipeline recompute
    outputs of another teacher, layer or length, or without an output the run needs."""
    source, target = (os.path.join(d, "teacher_outputs") for d in (source_dir, target_dir))
    if os.path.isdir(source) and not os.path.exists(target):
        harness.link_tree(source, target)


def run_options(task_dir, run_dir, mode, baseline, settings):
    """The pipeline's Options for one mode's run on the derived files; `settings`: every other
    option (the recipe's, the pass-through ones, do_pairwise)."""
    return options_lib.Options(
        task=task_dir, transfer_file=os.path.join(task_dir, "transfer.txt"), do_NER=False,
        distil_mode=mode, model_dir=run_dir, baseline=baseline, **settings)


def run_modes(model_dir, task_dir, modes, settings, baseline=True):
    """One pipeline run per mode in <model_dir>/<mode>/, all with the teacher of
    <model_dir>/teacher/ (fine-tuned by the first run when missing) and the first run's stored
    teacher outputs; the first with the baseline. RUNS_FIRST runs first. Returns ({mode:
    metrics}, {mode: best dev scores}) in the order of `modes`."""
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    import tf_keras  # pylint: disable=import-outside-toplevel
    metrics, dev = {}, {}
    for index, mode in enumerate(sorted(modes, key=lambda m: m != RUNS_FIRST)):
        run_dir = os.path.join(model_dir, mode)
        if share_teacher(model_dir, run_dir):
            logging.info("%s: the teacher of %s", mode, os.path.join(model_dir, "teacher"))
        if metrics:
            share_outputs(os.path.join(model_dir, next(iter(metrics))), run_dir)
        options = run_options(task_dir, run_dir, mode, baseline and index == 0, settings)
        logging.info("mode %s: pipeline run in %s", mode, run_dir)
        # recipe_options() applied the recipe's preset: every option is chosen.
        metrics[mode] = pipeline.run(options, given=options.to_dict())
        dev[mode] = harness.dev_scores(run_dir)
        # The first run's teacher, for the next runs and --reuse_teacher_from of later ones.
        share_teacher(run_dir, model_dir)
        tf_keras.backend.clear_session()
    return {m: metrics[m] for m in modes}, {m: dev[m] for m in modes}


def prepared(data_options, recipe):
    """Checks --model_dir against earlier runs (harness.prepare_model_dir) and copies a
    --reuse_teacher_from teacher; the model_dir."""
    model_dir = harness.resolve(FLAGS.model_dir)
    harness.prepare_model_dir(model_dir, {"data": data_options, "recipe": recipe},
                              FLAGS.reuse_teacher_from)
    return model_dir


# === Report ===

def scores(metrics_part):
    """{"accuracy", "macro_f1", "per_language"} of a task.score() result."""
    return {"accuracy": metrics_part["mean_accuracy"], "macro_f1": metrics_part["mean_macro_f1"],
            "per_language": {language: {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"],
                                        "examples": s["examples"]}
                             for language, s in metrics_part["per_language"].items()}}


def summarise(task, labeled, transfer, metrics, seconds):
    """The benchmark JSON from each mode's pipeline metrics ({mode: metrics}; the first mode's
    has the baseline)."""
    first_metrics = next(iter(metrics.values()))
    teacher = scores(first_metrics["teacher"])
    baseline_metrics = next((m["baseline"] for m in metrics.values() if m.get("baseline")), None)
    teacher_params = first_metrics["params"]["teacher"]

    def row(part, params, run_seconds=None):
        scored = scores(part)
        scored["retention"] = (scored["accuracy"] / teacher["accuracy"]
                               if teacher["accuracy"] else 0.0)
        scored.update(student_params=params, compression=teacher_params / params,
                      compression_bert_base=BERT_BASE_PARAMS / params)
        if run_seconds is not None:
            scored["seconds"] = run_seconds
        return scored

    student_params = first_metrics["params"]["student"]
    return {
        "task": task, "kind": first_metrics["task"], "labeled": labeled, "transfer": transfer,
        "teacher": teacher,
        "baseline": row(baseline_metrics, student_params) if baseline_metrics else None,
        "modes": {mode: row(m["student"], m["params"]["student"], m["seconds"])
                  for mode, m in metrics.items()},
        "params": {"teacher": teacher_params, "student": student_params},
        "seconds": round(seconds, 1),
    }


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}"


def _baseline_dev(dev):
    """The baseline's best dev score from {mode: dev_scores} (the first run trains it)."""
    return next((d["baseline"] for d in dev.values() if "baseline" in d), None)


def markdown(summary, metrics, dev, command, sizes):
    """Results table (teacher, baseline, each mode), per-language accuracy, dev, stage times."""
    teacher, params = summary["teacher"], summary["params"]
    lines = [f"Command: `{command}`", "", sizes, "",
             "| model | accuracy | macro F1 | retention | parameters | x smaller than teacher "
             "| x smaller than BERT-base | minutes |", "|---|---|---|---|---|---|---|---|",
             f"| teacher (fine-tuned) | {_pct(teacher['accuracy'])} | "
             f"{_pct(teacher['macro_f1'])} | 100.0% | {params['teacher']:,} | 1.0 | "
             f"{BERT_BASE_PARAMS / params['teacher']:.1f} | - |"]
    named = ([("baseline (labels only)", summary["baseline"])] if summary["baseline"] else []) + [
        (f"student, {mode}", row) for mode, row in summary["modes"].items()]
    for name, row in named:
        minutes = f"{row['seconds'] / 60:.1f}" if "seconds" in row else "-"
        lines.append(f"| {name} | {_pct(row['accuracy'])} | {_pct(row['macro_f1'])} | "
                     f"{_pct(row['retention'])}% | {row['student_params']:,} | "
                     f"{row['compression']:.1f} | {row['compression_bert_base']:.1f} | "
                     f"{minutes} |")
    lines += ["", "Test split; accuracy and macro F1 are means over languages. Retention: "
              "accuracy / teacher accuracy. BERT-base: 110M parameters. Minutes: each mode's "
              "pipeline run; the first also fine-tunes the teacher and trains the baseline."]
    languages = list(teacher["per_language"])
    if len(languages) > 1:
        header = ["teacher"] + (["baseline"] if summary["baseline"] else []) + list(
            summary["modes"])
        rows = [teacher] + ([summary["baseline"]] if summary["baseline"] else []) + list(
            summary["modes"].values())
        lines += ["", "| language | test examples | " + " | ".join(header) + " |",
                  "|---" * (len(header) + 2) + "|"]
        for language in languages:
            cells = [_pct(r["per_language"][language]["accuracy"]) for r in rows]
            n = teacher["per_language"][language]["examples"]
            lines.append(f"| {language} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "Dev accuracy (model selection): " + ", ".join(
        f"{mode} {_pct(d.get('student'))}" for mode, d in dev.items())
        + f"; baseline {_pct(_baseline_dev(dev))}."]
    lines += ["", "| mode | stage | seconds |", "|---|---|---|"]
    for mode, m in metrics.items():
        for stage in m["stages"]:
            lines.append(f"| {mode} | {stage['name']} | {stage['seconds']:.0f} |")
    lines.append(f"| | **total (benchmark)** | **{summary['seconds']:.0f}** |")
    return "\n".join(lines) + "\n"


def results_line(summary, dev, command):
    """A row of benchmarks/RESULTS.md: its F1 columns hold accuracy here ('#' and 'what
    changed' left for the author)."""
    modes = summary["modes"]
    cells = ["#", f"`{command}`",
             f"{summary['task']} ({','.join(summary['teacher']['per_language'])})",
             _pct(summary["teacher"]["accuracy"]),
             " / ".join(f"{mode} {_pct(row['accuracy'])}" for mode, row in modes.items()),
             _pct(summary["baseline"]["accuracy"]) if summary["baseline"] else "-",
             " / ".join(f"{mode} {_pct(row['retention'])}%" for mode, row in modes.items()),
             " / ".join(_pct(dev.get(m, {}).get("student")) for m in modes)
             + f" / {_pct(_baseline_dev(dev))}",
             f"{summary['seconds'] / 60:.1f}",
             f"accuracy, not F1 ({summary['labeled']} labeled, {summary['transfer']} transfer)"]
    return "| " + " | ".join(cells) + " |"


# === Transfer sweep ===

def sweep_summary(task, labeled, points, teacher, baseline, params, seconds):
    """The curve JSON. points: [{"transfer": asked, "examples": extra transfer examples used
    (0: the labeled texts were the transfer set), "mode", "accuracy", "macro_f1", "seconds"}];
    retention is added."""
    for point in points:
        point["retention"] = (point["accuracy"] / teacher["accuracy"]
                              if teacher["accuracy"] else 0.0)
    return {"task": task, "labeled": labeled,
            "teacher": {"accuracy": teacher["accuracy"], "macro_f1": teacher["macro_f1"]},
            "baseline": ({"accuracy": baseline["accuracy"], "macro_f1": baseline["macro_f1"]}
                         if baseline else None),
            "modes": sorted({p["mode"] for p in points}, key=[p["mode"] for p in points].index),
            "points": points, "params": params, "seconds": round(seconds, 1)}


def sweep_markdown(curve, command):
    """Table: a row per transfer size, accuracy / macro F1 per mode."""
    modes = curve["modes"]
    sizes = sorted({p["examples"] for p in curve["points"]})
    by = {(p["examples"], p["mode"]): p for p in curve["points"]}
    lines = [f"Command: `{command}`", "",
             f"Task {curve['task']}: {curve['labeled']:,} labeled train examples. Transfer 0: "
             "the labeled train texts themselves, unlabeled, as the transfer set (the pipeline "
             "needs one), i.e. no extra text. Test accuracy / macro F1 (%).", "",
             "| transfer examples | " + " | ".join(modes) + " |", "|---" * (len(modes) + 1) + "|"]
    for size in sizes:
        label = f"{size:,}" + (f" (the {curve['labeled']:,} labeled texts)" if not size else "")
        cells = [f"{_pct(by[size, m]['accuracy'])} / {_pct(by[size, m]['macro_f1'])}"
                 if (size, m) in by else "-" for m in modes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    teacher, baseline = curve["teacher"], curve["baseline"]
    lines += ["", f"Teacher {_pct(teacher['accuracy'])} / {_pct(teacher['macro_f1'])}; "
              + (f"baseline (labels only) {_pct(baseline['accuracy'])} / "
                 f"{_pct(baseline['macro_f1'])}." if baseline else "no baseline.")]
    return "\n".join(lines) + "\n"


def write_plot(curve, path):
    """PNG: test accuracy against transfer examples per mode; teacher and baseline as lines."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    figure, axes = pyplot.subplots(figsize=(6, 4))
    for mode in curve["modes"]:
        points = sorted((p["examples"], p["accuracy"]) for p in curve["points"]
                        if p["mode"] == mode)
        axes.plot([x for x, _ in points], [100 * y for _, y in points], marker="o", label=mode)
    axes.axhline(100 * curve["teacher"]["accuracy"], color="black", linestyle="--",
                 label="teacher")
    if curve["baseline"]:
        axes.axhline(100 * curve["baseline"]["accuracy"], color="grey", linestyle=":",
                     label="baseline (labels only)")
    axes.set_xlabel("transfer examples (0: the labeled texts)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(f"{curve['task']}: {curve['labeled']:,} labeled examples")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


def sweep_sizes(values, available):
    """[(asked, used)] for the --sweep_transfer values, in order, without two sizes that use
    the same number of examples (-1 and a size beyond the rest of train)."""
    sizes, used = [], set()
    for value in values:
        asked = int(value)
        if asked < -1:
            raise ValueError(f"--sweep_transfer: {asked}; give -1 (all the rest), 0 or more.")
        n = available if asked == -1 else min(asked, available)
        key = n if asked else "labeled"
        if key in used:
            logging.warning("--sweep_transfer=%d: %d transfer examples, as another size; "
                            "skipped", asked, n)
            continue
        used.add(key)
        sizes.append((asked, n))
    return sizes


# === Main ===

def data_folder():
    """--data_dir resolved; a one-line UsageError when it is missing."""
    folder = harness.resolve(FLAGS.data_dir)
    if not os.path.isdir(folder):
        raise app.UsageError(
            f"--data_dir={FLAGS.data_dir}: no folder {folder}. The real sets "
            f"(rt-snippets, tatoeba-en-es) live beside the repository in "
            f"{os.path.dirname(DEFAULT_DATA_DIR)} (../shared/README.md says where they come "
            "from); --data_dir=data/demo_classification (or --data_dir=data/demo_pairs "
            "--pairwise) works without them.")
    return folder


def check_flags():
    """UsageError for flag values no run can use, before anything is read or trained."""
    for name, modes in (("modes", FLAGS.modes), ("sweep_modes", FLAGS.sweep_modes)):
        unknown = [m for m in modes if m not in MODES]
        if unknown or not modes or len(set(modes)) < len(modes):
            raise app.UsageError(f"--{name}={','.join(modes)}: expected one or more of "
                                 f"{', '.join(MODES)}, each once.")
    if FLAGS.labeled < 1 or FLAGS.transfer < -1 or FLAGS.dev < 0 or FLAGS.test < 0:
        raise app.UsageError("--labeled must be >= 1, --transfer >= -1, --dev and --test >= 0.")
    if any(not v.lstrip("-").isdigit() or int(v) < -1 for v in FLAGS.sweep_transfer):
        raise app.UsageError(f"--sweep_transfer={','.join(FLAGS.sweep_transfer)}: integers, "
                             ">= -1.")


def main(argv):
    del argv
    harness.apply_quick(QUICK)
    check_flags()
    sweep = bool(FLAGS.sweep_transfer)
    if sweep and not FLAGS["model_dir"].present:
        FLAGS.model_dir += "_sweep"
    if sweep and not FLAGS["output"].present:
        stem, extension = os.path.splitext(FLAGS.output)
        FLAGS.output = f"{stem}_sweep{extension}"
    folder = data_folder()
    task = os.path.basename(os.path.normpath(folder))
    started = time.time()
    recipe = harness.recipe_options()
    settings = {**recipe, **harness.run_options(),
                **{name: FLAGS[name].value for name in PASS_THROUGH},
                "do_pairwise": FLAGS.pairwise}
    data_options = {"data_dir": folder, "pairwise": FLAGS.pairwise, "labeled": FLAGS.labeled,
                    "dev": FLAGS.dev, "test": FLAGS.test,
                    **({"transfer_sweep": FLAGS.sweep_transfer} if sweep
                       else {"transfer_examples": FLAGS.transfer})}
    model_dir = prepared(data_options, recipe)
    splits, labels = read_folder(folder, FLAGS.pairwise, FLAGS.encoding,
                                 FLAGS.language or None, FLAGS.skip_bad_lines)
    try:
        labeled, transfer = split_train(splits["train"], FLAGS.labeled,
                                        -1 if sweep else FLAGS.transfer)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    derived = {"train": labeled, "dev": first(splits["dev"], FLAGS.dev),
               "test": first(splits["test"], FLAGS.test)}
    logging.info("examples per language: %s",
                 {split: languages_of(e) for split, e in derived.items()})
    if sweep:
        run_sweep(model_dir, task, derived, transfer, labels, settings, started)
        return
    write_task(os.path.join(model_dir, "data"), derived, transfer, labels)
    counts = {**{split: len(e) for split, e in derived.items()}, "transfer": len(transfer)}
    metrics, dev = run_modes(model_dir, os.path.join(model_dir, "data"), FLAGS.modes, settings)
    summary = summarise(task, len(labeled), len(transfer), metrics, time.time() - started)
    command = harness.command_line()
    table = markdown(summary, metrics, dev, command, describe(task, counts, FLAGS.transfer))
    harness.write_outputs(summary, table, harness.resolve(FLAGS.output))
    print("RESULTS.md line (fill in # and what changed):")
    print(results_line(summary, dev, command))


def run_sweep(model_dir, task, derived, rest, labels, settings, started):
    """Each --sweep_transfer size in <model_dir>/transfer_<n>/ (its own derived files and a run
    per --sweep_modes), all with one teacher (<model_dir>/teacher/) and one baseline."""
    points, teacher, baseline, params = [], None, None, None
    for asked, n in sweep_sizes(FLAGS.sweep_transfer, len(rest)):
        unlabeled = rest[:n] if asked else [dataclasses.replace(e, label=None)
                                            for e in derived["train"]]
        size_dir = os.path.join(model_dir, f"transfer_{'labeled' if asked == 0 else n}")
        write_task(os.path.join(size_dir, "data"), derived, unlabeled, labels)
        share_teacher(model_dir, size_dir)
        metrics, _ = run_modes(size_dir, os.path.join(size_dir, "data"), FLAGS.sweep_modes,
                               settings, baseline=baseline is None)
        share_teacher(size_dir, model_dir)
        for mode, m in metrics.items():
            teacher = teacher or scores(m["teacher"])
            params = params or dict(m["params"])
            if m.get("baseline"):
                baseline = scores(m["baseline"])
            points.append({"transfer": asked, "examples": n if asked else 0, "mode": mode,
                           **{k: v for k, v in scores(m["student"]).items()
                              if k != "per_language"}, "seconds": m["seconds"]})
    curve = sweep_summary(task, len(derived["train"]), points, teacher, baseline, params,
                          time.time() - started)
    output = harness.resolve(FLAGS.output)
    harness.write_outputs(curve, sweep_markdown(curve, harness.command_line()), output)
    plot = os.path.splitext(output)[0] + ".png"
    write_plot(curve, plot)
    print(f"wrote {plot}")


if __name__ == "__main__":
    define_classification_flags()
    harness.start(main)
