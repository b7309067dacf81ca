"""The benchmark harness: flags, the pipeline run, JSON and Markdown tables, a RESULTS.md line.

A benchmark script (panx.py, conll.py) is an adapter: it defines its data flags, reads its
corpus into sentences, and hands them to `run`, which

  1. checks --model_dir against the options of an earlier run there (benchmark.json), and with
     --reuse_teacher_from copies a fine-tuned teacher in,
  2. writes the derived task files (<model_dir>/data/: train/dev/test.tsv, transfer.txt,
     labels.tsv),
  3. runs xtremedistil.pipeline.run with baseline=True (a same-shape student trained on the
     labeled data alone),
  4. writes --output (JSON) and the same path with .md (Markdown table), and prints the table
     and a ready-to-paste RESULTS.md line.

The recipe flags are made from xtremedistil.options.Options (names, help, choices); a benchmark
only chooses other defaults where it sizes its runs differently (`define_flags(defaults=...)`).
"""

import glob
import json
import os
import shutil
import sys
import time

from absl import app
from absl import flags
from absl import logging

from xtremedistil import options as options_lib

FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Options the benchmarks pass through to the pipeline (and record in benchmark.json).
RECIPE_OPTIONS = (
    "seq_len", "pt_teacher_checkpoint", "teacher_layer", "ft_batch_size", "ft_epochs",
    "ft_learning_rate", "teacher_recipe", "student", "student_vocab", "student_vocab_size",
    "word_emb_dim", "bilstm_hidden_size", "dropout_rate", "student_dropout", "head_init",
    "pca_rescale", "recipe", "distil_batch_size", "distil_epochs", "distil_learning_rate",
    "lr_schedule", "label_stage_sizes", "label_stage_monitor", "logits_loss", "temperature",
    "transfer_mask", "patience", "seed", "augment_transfer") + (
    # The transformer student's shape and its layer-wise distillation (issue #12).
    "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
    "compress_word_embedding", "freeze_word_embedding", "distil_multi_hidden_states",
    "layer_map", "distil_attention", "attention_layers", "attention_heads", "attention_loss",
    "attention_cache_mb")
# Options that decide the fine-tuned teacher (with the data): --reuse_teacher_from checks them.
TEACHER_KEYS = ("seq_len", "pt_teacher_checkpoint", "ft_batch_size", "ft_epochs",
                "ft_learning_rate", "teacher_recipe", "patience", "seed")
# Options that decide how a run executes, not its recipe (not in benchmark.json): every
# benchmark has them, so that a long run can take one device and checkpoint often.
RUN_OPTIONS = ("strategy", "distil_chunk_size", "checkpoint_steps")
TASK_FILES = ("train", "dev", "test")


# === Flags ===

def define_flags(name, quick, quick_note="", defaults=None):
    """The flags every benchmark has: --model_dir, --output and --quick (default paths from
    `name`), --reuse_teacher_from, --overwrite, the run options (RUN_OPTIONS) and the recipe
    options with the benchmark's `defaults` (sized for its time budget) instead of Options'.

    The script shows them in its --help with flags.adopt_module_key_flags(harness)."""
    flags.DEFINE_string("model_dir", f"benchmarks/out/{name}", "Pipeline output folder.")
    flags.DEFINE_string("output", f"benchmarks/out/{name}.json",
                        "Result JSON; the Markdown table goes beside it (.md).")
    flags.DEFINE_bool("quick", False,
                      "Smoke benchmark: " + ", ".join(f"--{k}={v}" for k, v in quick.items())
                      + f" (flags given explicitly win){quick_note}.")
    flags.DEFINE_string("reuse_teacher_from", "",
                        "A finished benchmark model_dir with the same data and teacher options: "
                        "its fine-tuned teacher (and, with the same --teacher_layer, its stored "
                        "teacher outputs) is copied instead of trained again. For student-only "
                        "experiments.")
    flags.DEFINE_bool("overwrite", False,
                      "Delete --model_dir first when it holds a run with other options "
                      "(otherwise such a run is refused; the same options resume).")
    options_lib.define_flags(FLAGS, names=RECIPE_OPTIONS, defaults=defaults)
    options_lib.define_flags(FLAGS, names=RUN_OPTIONS)
    for name in RECIPE_OPTIONS + RUN_OPTIONS:
        flags.declare_key_flag(name)


def start(main):
    """Runs the benchmark's main as run_xtreme_distil.py runs its own: absl INFO lines, and
    TensorFlow's start-up and library chatter silenced."""
    def quiet_main(argv):
        from xtremedistil import console  # pylint: disable=import-outside-toplevel
        console.quiet_tensorflow()
        main(argv)

    logging.set_verbosity(logging.INFO)
    app.run(quiet_main)


def apply_quick(quick_values):
    """With --quick: sets the --quick values of flags the user did not give explicitly."""
    if not FLAGS.quick:
        return
    for name, value in quick_values.items():
        flag = FLAGS[name]
        if not flag.present:
            flag.value = flag.parser.parse(value) if isinstance(value, str) else value


def resolve(path):
    """A path relative to the repository root (absolute paths unchanged)."""
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(REPO, path))


def data_folder(corpus):
    """--data_dir resolved; a UsageError when it is not a folder."""
    folder = resolve(FLAGS.data_dir)
    if not os.path.isdir(folder):
        default = FLAGS["data_dir"].default
        raise app.UsageError(f"--data_dir={FLAGS.data_dir}: no folder {folder}. The {corpus} "
                             f"files live in {default} (relative to the repository root).")
    return folder


def recipe_options(flag_values=FLAGS):
    """The recipe options of the run: the flags' values, and for the options neither the
    command line nor the benchmark chose (a value other than Options' default) the recipe's
    preset (--recipe=paper: xtremedistil/recipes/paper.py) and the student's."""
    from xtremedistil import recipes  # pylint: disable=import-outside-toplevel
    values = {name: flag_values[name].value for name in RECIPE_OPTIONS}
    defaults = options_lib.Options()
    given = {name for name, value in values.items()
             if flag_values[name].present or value != getattr(defaults, name)}
    preset = recipes.preset(values["recipe"], values["student"])
    return {name: preset[name] if name in preset and name not in given else value
            for name, value in values.items()}


def run_options(flag_values=FLAGS):
    """The run options' flag values (RUN_OPTIONS)."""
    return {name: flag_values[name].value for name in RUN_OPTIONS}


def command_line():
    return "python " + " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


# === The run ===

def run(data_options, load, labels, describe, more_recipe=None):
    """The whole benchmark; returns the summary (the JSON written to --output).

    data_options: the data flags' values (recorded in benchmark.json with the recipe); those
          named transfer_* size the transfer set only, so --reuse_teacher_from may differ in
          them (the teacher is reused, its stored outputs are not).
    load: () -> (splits {"train", "dev", "test": [data.Sentence]}, transfer sentences,
          {language: {"train", "dev", "test", "transfer": count}}).
    labels: the tag set ("O" first), written to labels.tsv.
    describe: counts -> the sizes sentence of the Markdown report.
    more_recipe: options of this benchmark's own beyond RECIPE_OPTIONS (panx.py's
          --distil_mode, say), recorded with the recipe; give only those not at their default,
          so that runs made before the benchmark had them still compare equal.
    """
    started = time.time()
    model_dir = resolve(FLAGS.model_dir)
    recipe = {**recipe_options(), **(more_recipe or {})}
    prepare_model_dir(model_dir, {"data": data_options, "recipe": recipe},
                      FLAGS.reuse_teacher_from)
    splits, transfer, counts = load()
    task_dir = os.path.join(model_dir, "data")
    write_task(task_dir, splits, transfer, labels)
    logging.info("sentences per language: %s", counts)

    metrics, dev = run_pipeline(model_dir, task_dir, recipe)
    summary = summarise(metrics, time.time() - started)
    table = markdown(summary, metrics, dev, command_line(), describe(counts))
    write_outputs(summary, table, resolve(FLAGS.output))
    print("RESULTS.md line (fill in # and what changed):")
    print(results_line(summary, dev, command_line()))
    return summary


def prepare_model_dir(model_dir, manifest, reuse_from):
    """Refuses (or with --overwrite deletes) a model_dir made with other options; reuses a teacher.

    The pipeline's own resume check compares the pipeline's options only; benchmark.json also
    covers the data sizes, which change the derived task files but not their paths.
    """
    path = os.path.join(model_dir, "benchmark.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        if "recipe" in previous:  # task_transfer.py --source_run writes none
            previous["recipe"] = _with_defaults(previous["recipe"])
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
    path = os.path.join(source, "benchmark.json")
    if not os.path.exists(path):
        raise app.UsageError(f"--reuse_teacher_from={source}: not a benchmark's --model_dir "
                             f"(no {path}).")
    with open(path, encoding="utf-8") as f:
        other = json.load(f)
    # The teacher is fine-tuned on the labeled data: the transfer set (the data options named
    # transfer_*) does not change it, but it does change the stored teacher outputs.
    keys = [k for k in manifest["data"] if not k.startswith("transfer_")] + list(TEACHER_KEYS)
    mine = {**manifest["data"], **_with_defaults(manifest["recipe"])}
    theirs = {**other["data"], **_with_defaults(other["recipe"])}
    changed = [k for k in keys if mine.get(k) != theirs.get(k)]
    if changed:
        raise app.UsageError(f"--reuse_teacher_from={source}: other data or teacher options "
                             f"({', '.join(changed)}); cannot reuse its teacher.")
    source = _teacher_run(source)
    if not os.path.exists(os.path.join(model_dir, "teacher")):
        link_tree(os.path.join(source, "teacher"), os.path.join(model_dir, "teacher"))
        logging.info("teacher: linked from %s", source)
    transfer_keys = ["teacher_layer"] + [k for k in manifest["data"] if k.startswith("transfer_")]
    outputs = os.path.join(source, "teacher_outputs")
    if (all(mine.get(k) == theirs.get(k) for k in transfer_keys) and os.path.isdir(outputs)
            and not os.path.exists(os.path.join(model_dir, "teacher_outputs"))):
        link_tree(outputs, os.path.join(model_dir, "teacher_outputs"))
        logging.info("teacher outputs: linked from %s", source)


def link_tree(source, target):
    """Copies folder `source` to `target` as hard links (a plain copy where linking fails):
    a teacher's weights and its stored outputs (21 GB for PAN-X at 19,000 transfer sentences a
    language) once on disk, however many runs use them. The pipeline never rewrites a file of
    a fine-tuned teacher or of stored outputs in place (it writes a new file and renames it)."""
    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    shutil.copytree(source, target, copy_function=link)


def export_checkpoint(model_dir, stage=""):
    """<model_dir>/export/checkpoint/ of a finished transformer run (its best student), or
    checkpoint_<stage>/ of the student as that stage left it: a transformers folder for
    --pt_student_checkpoint. Written once, then renamed into place, so a killed export leaves
    no half folder."""
    folder = os.path.join(model_dir, "export", f"checkpoint_{stage}" if stage else "checkpoint")
    if os.path.exists(os.path.join(folder, "config.json")):
        return folder
    from xtremedistil import export  # pylint: disable=import-outside-toplevel
    from xtremedistil import students  # pylint: disable=import-outside-toplevel
    from xtremedistil.manifest import Manifest  # pylint: disable=import-outside-toplevel
    manifest = Manifest.read(model_dir)
    weights = manifest.stage_weights(stage) if stage else None
    if weights and not os.path.exists(weights):
        raise app.UsageError(f"{model_dir}: no stage {stage} there (no {weights}).")
    partial = folder + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    students.get(manifest.options).export_checkpoint(
        export.load_student(manifest, weights=weights), manifest, partial)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return folder


def _teacher_run(source):
    """The folder of benchmark run `source` with its fine-tuned teacher: `source`, or the run
    of one mode inside it, where classification.py stopped in its first mode left it (it
    links the teacher up to `source` only once that run ends)."""
    from xtremedistil import teacher as teacher_lib  # pylint: disable=import-outside-toplevel
    inner = sorted(os.path.dirname(os.path.dirname(p))
                   for p in glob.glob(os.path.join(source, "*", "teacher", "")))
    for folder in [source] + inner:
        if teacher_lib.is_finetuned(os.path.join(folder, "teacher")):
            return folder
    raise app.UsageError(f"--reuse_teacher_from={source}: no fine-tuned teacher there.")


def _with_defaults(recipe):
    """Recipe options as recorded, with what earlier benchmark.json files lack: options added
    since (at their defaults, the behaviour of those runs), and the default teacher (MiniLM),
    which they wrote as ''. A benchmark's own options (run's more_recipe) stay as recorded."""
    defaults = options_lib.Options()
    names = RECIPE_OPTIONS + tuple(name for name in recipe if name not in RECIPE_OPTIONS)
    completed = {name: recipe.get(name, getattr(defaults, name)) for name in names}
    completed["pt_teacher_checkpoint"] = (completed["pt_teacher_checkpoint"]
                                          or defaults.pt_teacher_checkpoint)
    return completed


def write_task(folder, splits, transfer, labels):
    """Writes train/dev/test.tsv (XtremeDistil format, 'lang:TAG'), transfer.txt and labels.tsv."""
    os.makedirs(folder, exist_ok=True)
    for split in TASK_FILES:
        with open(os.path.join(folder, f"{split}.tsv"), "w", encoding="utf-8") as f:
            for s in splits[split]:
                _check_tokens(s)
                tags = " ".join(f"{s.language}:{t}" for t in s.tags)
                f.write(f"{' '.join(s.tokens)}\t{tags}\n")
    with open(os.path.join(folder, "transfer.txt"), "w", encoding="utf-8") as f:
        for s in transfer:
            _check_tokens(s)
            f.write(" ".join(s.tokens) + "\n")
    with open(os.path.join(folder, "labels.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(labels) + "\n")


def _check_tokens(sentence):
    for token in sentence.tokens:
        if not token or any(c in token for c in " \t\r\n"):
            raise ValueError(f"{sentence.source}: token {token!r} cannot be written to the "
                             "XtremeDistil TSV format (empty or contains whitespace)")


def run_pipeline(model_dir, task_dir, recipe):
    """pipeline.run on the derived files; returns (metrics, best dev scores of student and
    baseline)."""
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    options = options_lib.Options(
        task=task_dir, transfer_file=os.path.join(task_dir, "transfer.txt"),
        model_dir=model_dir, data_format="xtremedistil", tag_scheme="iob2", baseline=True,
        **recipe, **run_options())
    # recipe_options() applied the recipe's preset: every option is chosen.
    metrics = pipeline.run(options, given=options.to_dict())
    return metrics, dev_scores(model_dir)


def dev_scores(model_dir):
    """{"student": best dev score, "baseline": ...} from progress.json (those that exist)."""
    scores = {}
    for name, folder in (("student", "student"), ("baseline", "student_baseline")):
        path = os.path.join(model_dir, folder, "progress.json")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            scored = [r["dev_score"] for r in json.load(f) if r.get("dev_score") is not None]
        if scored:
            scores[name] = max(scored)
    return scores


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


def markdown(summary, metrics, dev, command, sizes):
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
              f"Dev mean F1 (model selection): student {_percent(dev, 'student')}, "
              f"baseline {_percent(dev, 'baseline')}.",
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


def results_line(summary, dev, command):
    """A row of benchmarks/RESULTS.md ('#' and 'what changed' left for the author)."""
    cells = ["#", f"`{command}`", ",".join(summary["languages"]),
             f"{100 * summary['mean_teacher_f1']:.1f}",
             f"{100 * summary['mean_student_f1']:.1f}",
             f"{100 * summary['mean_baseline_f1']:.1f}",
             f"{100 * summary['mean_retention']:.1f}%",
             f"{_percent(dev, 'student')} / {_percent(dev, 'baseline')}",
             f"{summary['seconds'] / 60:.1f}", ""]
    return "| " + " | ".join(cells) + " |"


def _percent(scores, name):
    return f"{100 * scores[name]:.1f}" if name in scores else "-"


def write_outputs(summary, table, output):
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    table_path = os.path.splitext(output)[0] + ".md"
    with open(table_path, "w", encoding="utf-8") as f:
        f.write(table)
    print(table)
    print(f"wrote {output} and {table_path}")
