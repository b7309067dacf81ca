"""Task transfer (issue #12, the XtremeDistilTransformers claim): a transformer student distilled
on PAN-X NER, then fine-tuned on rt-snippets sentiment with a few labeled sentences, against the
same shape fine-tuned from random initialisation and against the teacher.

  1. source    <model_dir>/source/: PAN-X (--source_languages, default en) prepared as panx.py
               does; the teacher fine-tuned on it and distilled stage-wise into a transformer
               student (--distil_multi_hidden_states and --distil_attention by default), whose
               encoder is exported to <model_dir>/source/export/checkpoint/ (a transformers
               BERT folder with the teacher's tokenizer).
  2. target    rt-snippets (--target_data_dir): the first --target_train train sentences
               labeled (500), all dev (model selection) and test; per --seeds seed, in
               <model_dir>/target/seed<k>/<row>/, a pipeline run per --rows row:
     transferred   --distil_mode=none from the exported checkpoint (fine-tuned on the labels)
     random        --distil_mode=none, the same shape from random weights (embeddings too)
     teacher       the teacher fine-tuned on the same labeled sentences (the pipeline's teacher
                   phase); the run's student, the transferred one distilled from that teacher
                   (--distil_mode=soft) on the labeled texts (--target_transfer=0) or on as
                   many further train sentences unlabeled, is reported too
     pca_init      (not run by default) --distil_mode=none, a random encoder over the teacher's
                   PCA-compressed word embeddings (the pipeline's default start)
     random_soft   (not run by default) the same shape from random weights, distilled from the
                   teacher row's teacher (its copy; soft) on the same transfer set: what the
                   teacher row's student owes to its transferred start

PAN-X rather than the tatoeba pairs as the source: a PAN-X sentence is one short text (median
12-15 pieces) that teacher and student each read once, while a pair is two texts, read together
by the teacher at twice the length and apart by the student (two encoder passes); the attention
stage is not available for pairs; and PAN-X en is English like rt-snippets.

  python benchmarks/task_transfer.py              # ~1-1.5 h on 2 cores (an estimate)
  python benchmarks/task_transfer.py --quick      # tiny sizes: a smoke run
  python benchmarks/task_transfer.py --seeds=1,2,3 --target_train=200
  python benchmarks/task_transfer.py --source_run=benchmarks/out/transformer_ablation/attention

--source_run takes a finished transformer run (for example transformer_ablation.py's attention
variant, or a classification.py run's <model_dir>/stagewise) as the source instead of distilling
one: its student's shape and settings (--seq_len
among them) are the target runs', its metrics.json the source row.
--source_stage=<stage> starts them from that run's student as the stage left it (for example
representation, before the source task's logits and labels).
--target_learning_rate, --target_patience and --target_monitor set the target runs' student
schedule (their own early stopping on 500 sentences) instead of the source's;
--target_augment_transfer=N adds N augmented copies of each target transfer text (masked
words, n-grams: xtremedistil/augment.py) for the rows distilled on the target;
--target_layer_wise starts those rows with the layer-wise stages (XtremeDistilTransformers'
task-specific distillation: every layer's states and the attention).

Writes --output (JSON), the same path with .md (the table) and prints both. A rerun with the
same options resumes every run; --overwrite deletes a --model_dir made with other options.
"""

import json
import math
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

from benchmarks import classification
from benchmarks import harness
from benchmarks import panx
from xtremedistil import options as options_lib

FLAGS = flags.FLAGS

ROWS = ("transferred", "random", "teacher", "pca_init", "random_soft")  # the order they run
DEFAULT_ROWS = "transferred,random,teacher"
ROW_NAMES = {"transferred": "student, distilled on the source task, fine-tuned",
             "random": "student, random initialisation, fine-tuned",
             "teacher_student": "student, distilled on the source task, then distilled from "
                                "the teacher on the target (soft)",
             "pca_init": "student, random encoder over the teacher's PCA embeddings, fine-tuned",
             "random_soft": "student, random initialisation, distilled from the teacher on the "
                            "target (soft)"}
# The source run's recipe: panx.py's defaults, a transformer student whose word embeddings are
# as wide as its encoder (--pt_student_checkpoint needs it), and rt-snippets' length (the
# exported position table has --seq_len rows; PAN-X sentences are far shorter), with
# XtremeDistilTransformers' layer-wise stages: every layer's states and the attention.
RECIPE_DEFAULTS = {**panx.RECIPE_DEFAULTS, "student": "transformer", "word_emb_dim": 256,
                   "seq_len": 64, "distil_multi_hidden_states": True, "distil_attention": True}
QUICK = {"source_languages": "en", "source_train": 200, "source_dev": 50, "source_test": 100,
         "source_transfer": 400, "target_train": 100, "target_dev": 100, "target_test": 200,
         "ft_epochs": 1, "distil_epochs": 1, "target_epochs": 2, "target_ft_epochs": 1,
         "num_hidden_layers": 2, "hidden_size": 64, "word_emb_dim": 64, "intermediate_size": 128,
         "model_dir": "benchmarks/out/task_transfer_quick",
         "output": "benchmarks/out/task_transfer_quick.json"}


def define_transfer_flags():
    flags.DEFINE_string("source_data_dir", "../shared/data/panx",
                        "PAN-X folder ({train,dev,test}-<lang>.tsv), relative to the repo root.")
    flags.DEFINE_list("source_languages", "en", "PAN-X languages the student is distilled on.")
    flags.DEFINE_integer("source_train", 1000, "Labeled PAN-X train sentences per language "
                         "(the first N): the teacher's fine-tuning.")
    flags.DEFINE_integer("source_dev", 500, "PAN-X dev sentences per language (model "
                         "selection).")
    flags.DEFINE_integer("source_test", 1000, "PAN-X test sentences per language (0: all).")
    flags.DEFINE_integer("source_transfer", 10000, "Unlabeled PAN-X transfer sentences per "
                         "language: the train sentences after the labeled ones.")
    flags.DEFINE_string("source_run", "", "A finished transformer pipeline run (its model_dir) "
                        "to start the target runs from instead of the source run; its options "
                        "replace the shape and recipe flags.")
    flags.DEFINE_string("source_stage", "", "Start the target runs from the source student as "
                        "this stage left it (for example 'representation', before the stages "
                        "on NER logits and labels) instead of its best stage.")
    flags.DEFINE_string("target_data_dir", classification.DEFAULT_DATA_DIR,
                        "Sentence classification folder (train/dev/test.tsv, labels.tsv).")
    flags.DEFINE_integer("target_train", 500, "Labeled target train sentences (the first N).")
    flags.DEFINE_integer("target_dev", 0, "Target dev sentences (the first N; 0: all).")
    flags.DEFINE_integer("target_test", 0, "Target test sentences (the first N; 0: all).")
    flags.DEFINE_integer("target_transfer", 0, "The teacher row's transfer set: 0 the labeled "
                         "texts themselves (no extra text), N the next N train sentences "
                         "unlabeled, -1 all the rest.")
    flags.DEFINE_integer("target_epochs", 20, "Epochs (at most; --patience stops early) of "
                         "each target run's stages.")
    flags.DEFINE_float("target_learning_rate", 0.0, "The student's Adam learning rate in the "
                       "target runs (0: the source run's --distil_learning_rate).")
    flags.DEFINE_integer("target_patience", 5, "Early stopping's patience in the target runs "
                         "(0: the source run's --patience). 5 and 'accuracy' chosen on dev: "
                         "RESULTS #67.")
    flags.DEFINE_enum("target_monitor", "accuracy", ["", "loss", "accuracy"], "What early stopping "
                      "watches in the target runs' stages on labels: dev 'loss' or "
                      "'accuracy' (empty: the source run's --label_stage_monitor).")
    flags.DEFINE_integer("target_augment_transfer", 0, "Augmented copies of each target "
                         "transfer text in the rows distilled on the target (teacher, "
                         "random_soft): --augment_transfer of those runs. 0: none.")
    flags.DEFINE_bool("target_layer_wise", False, "The rows distilled on the target (teacher, "
                      "random_soft) start with the layer-wise stages: every layer's states "
                      "(--distil_multi_hidden_states) and the top layer's attention "
                      "(--distil_attention) learn the target's teacher's.")
    flags.DEFINE_integer("target_ft_epochs", 3, "The teacher's fine-tuning epochs on the "
                         "target.")
    flags.DEFINE_list("rows", DEFAULT_ROWS, f"Target runs: {', '.join(ROWS)}.")
    flags.DEFINE_list("seeds", "42", "A target run per row and seed (mean and spread "
                      "reported); the source run uses --seed.")
    harness.define_flags("task_transfer", QUICK, "; a smoke run of a few minutes",
                         RECIPE_DEFAULTS)
    flags.adopt_module_key_flags(harness)


# === Plan ===

def source_options(task_dir, model_dir, settings):
    """The source run: PAN-X distilled stage-wise into the transformer student (no baseline)."""
    return options_lib.Options(
        task=task_dir, transfer_file=os.path.join(task_dir, "transfer.txt"),
        model_dir=model_dir, data_format="xtremedistil", tag_scheme="iob2", baseline=False,
        **settings).validate()


def target_plan(rows, seeds, task_dir, model_dir, checkpoint, settings, epochs, ft_epochs,
                schedule=None, layer_wise=False):
    """[(seed, row, Options)]: every row's run on the target task for every seed. `settings`:
    the source run's options (shape, recipe); the target runs set their own data, mode, start
    and epochs, and `schedule` (target_schedule) replaces the source's student schedule.
    layer_wise: the rows distilled on the target start with the layer-wise stages (every
    layer's states and the top layer's attention learn the target's teacher's)."""
    shared = {k: v for k, v in settings.items()
              if k not in ("distil_multi_hidden_states", "distil_attention", "layer_map")}
    common = {**dict(task=task_dir, do_NER=False, transfer_file="", baseline=False,
                     distil_epochs=epochs, ft_epochs=ft_epochs, pt_student_checkpoint="",
                     compress_word_embedding=False, augment_transfer=0), **(schedule or {})}
    distilled = dict(distil_mode="soft", transfer_file=os.path.join(task_dir, "transfer.txt"),
                     distil_multi_hidden_states=layer_wise, distil_attention=layer_wise)
    per_row = {
        "transferred": dict(distil_mode="none", pt_student_checkpoint=checkpoint),
        "random": dict(distil_mode="none"),
        "teacher": dict(distilled, pt_student_checkpoint=checkpoint),
        "pca_init": dict(distil_mode="none", compress_word_embedding=True),
        "random_soft": distilled,
    }
    runs = []
    for seed in seeds:
        for row in sorted(rows, key=ROWS.index):  # the teacher row before random_soft
            options = options_lib.Options(**{
                **shared, **common, **per_row[row], "seed": seed,
                "model_dir": os.path.join(model_dir, "target", f"seed{seed}", row)})
            runs.append((seed, row, options.validate()))
    return runs


def target_schedule():
    """The student options of the target runs given by flags, replacing the source run's."""
    given = {"distil_learning_rate": FLAGS.target_learning_rate,
             "patience": FLAGS.target_patience, "label_stage_monitor": FLAGS.target_monitor,
             "augment_transfer": FLAGS.target_augment_transfer}
    return {name: value for name, value in given.items() if value}


def check_flags(rows, seeds):
    if not rows or any(r not in ROWS for r in rows) or len(set(rows)) < len(rows):
        raise app.UsageError(f"--rows={','.join(rows)}: one or more of {', '.join(ROWS)}, "
                             "each once.")
    if not seeds or any(not s.lstrip("-").isdigit() for s in seeds) or len(set(seeds)) < len(
            seeds):
        raise app.UsageError(f"--seeds={','.join(seeds)}: integers, each once.")
    if FLAGS.student != "transformer":
        raise app.UsageError("--student: task transfer starts a transformer student from a "
                             "checkpoint; give --student=transformer.")
    if FLAGS.word_emb_dim != FLAGS.hidden_size:
        raise app.UsageError(f"--word_emb_dim={FLAGS.word_emb_dim} must equal --hidden_size="
                             f"{FLAGS.hidden_size}: the exported checkpoint's word embeddings "
                             "are the encoder's width (--pt_student_checkpoint).")
    if FLAGS.source_train < 1 or FLAGS.source_transfer < 1 or FLAGS.target_train < 1:
        raise app.UsageError("--source_train, --source_transfer and --target_train must be "
                             ">= 1.")
    if FLAGS.target_epochs < 1 or FLAGS.target_ft_epochs < 1:
        raise app.UsageError("--target_epochs and --target_ft_epochs must be >= 1.")
    if FLAGS.target_augment_transfer < 0:
        raise app.UsageError("--target_augment_transfer must be >= 0.")
    if FLAGS.target_learning_rate < 0 or FLAGS.target_patience < 0:
        raise app.UsageError("--target_learning_rate and --target_patience must be >= 0 (0: "
                             "the source run's).")


# === Runs ===

def run_source(source_dir, source_manifest, source_data, languages, sizes, settings):
    """PAN-X, distilled into the transformer student: the source run's metrics."""
    harness.prepare_model_dir(source_dir, source_manifest, FLAGS.reuse_teacher_from)
    splits, transfer, counts = panx.load_panx(source_data, languages, **sizes)
    harness.write_task(os.path.join(source_dir, "data"), splits, transfer, panx.PANX_TAGS)
    logging.info("source sentences per language: %s", counts)
    return run_pipeline(source_options(os.path.join(source_dir, "data"), source_dir, settings))


def given_source(run_dir):
    """(its metrics, the target runs' shape and recipe from its options, the manifest entry) of
    --source_run: a finished transformer run."""
    from xtremedistil.manifest import Manifest  # pylint: disable=import-outside-toplevel
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(path):
        raise app.UsageError(f"--source_run={run_dir}: no finished run there (no {path}).")
    options = Manifest.read(run_dir).options
    if options.student != "transformer" or options.word_emb_dim != options.hidden_size:
        raise app.UsageError(f"--source_run={run_dir}: a transformer student with "
                             "--word_emb_dim equal to --hidden_size is needed (its checkpoint "
                             f"is a BERT folder); it has --student={options.student}, "
                             f"--word_emb_dim={options.word_emb_dim}, --hidden_size="
                             f"{options.hidden_size}.")
    with open(path, encoding="utf-8") as f:
        metrics = json.load(f)
    given = options.to_dict()
    settings = {name: given[name] for name in harness.RECIPE_OPTIONS}
    return metrics, settings, {"source_run": run_dir, "source_options": given}


def run_pipeline(options):
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    import tf_keras  # pylint: disable=import-outside-toplevel
    metrics = pipeline.run(options, given=options.to_dict())
    tf_keras.backend.clear_session()
    return metrics


def vocabulary_coverage(source_dir, target_dir):
    """The share of the target student's pieces the source student has (the others start from
    the teacher's rows mapped to the student's: transformer.checkpoint_table)."""
    from xtremedistil.manifest import Manifest  # pylint: disable=import-outside-toplevel
    source = set(Manifest.read(source_dir).student_vocab)
    target = Manifest.read(target_dir).student_vocab
    return sum(piece in source for piece in target) / len(target) if target else 0.0


# === Report ===

def _mean_std(values):
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(
        values) > 1 else 0.0
    return mean, std


def aggregate(per_seed):
    """{"accuracy", "accuracy_std", "macro_f1", "macro_f1_std", "seeds", "per_seed"} of
    [{"seed", "accuracy", "macro_f1", ...}]."""
    accuracy, accuracy_std = _mean_std([r["accuracy"] for r in per_seed])
    macro, macro_std = _mean_std([r["macro_f1"] for r in per_seed])
    return {"accuracy": accuracy, "accuracy_std": accuracy_std, "macro_f1": macro,
            "macro_f1_std": macro_std, "seeds": len(per_seed), "per_seed": per_seed}


def summarise(source_metrics, target_metrics, coverage, seconds):
    """The JSON. target_metrics: {(seed, row): metrics}."""
    rows = {}
    for (seed, row), metrics in target_metrics.items():
        parts = ([("teacher", metrics["teacher"], metrics["params"]["teacher"]),
                  ("teacher_student", metrics["student"], metrics["params"]["student"])]
                 if row == "teacher" else [(row, metrics["student"],
                                            metrics["params"]["student"])])
        for name, scores, params in parts:
            rows.setdefault(name, {"params": params, "per_seed": []})["per_seed"].append(
                {"seed": seed, "accuracy": scores["mean_accuracy"],
                 "macro_f1": scores["mean_macro_f1"], "seconds": round(metrics["seconds"], 1),
                 "best_stage": metrics["best_stage"]})
    summary_rows = {name: {**aggregate(r["per_seed"]), "params": r["params"]}
                    for name, r in rows.items()}
    teacher = summary_rows.get("teacher")
    # The source task's headline score: F1 for PAN-X, accuracy for a classification source.
    from xtremedistil import tasks  # pylint: disable=import-outside-toplevel
    source_task = source_metrics.get("task", "tagging")
    metric = tasks.get(source_task).metric
    for name, row in summary_rows.items():
        row["gap_to_teacher"] = (teacher["accuracy"] - row["accuracy"]) if teacher else None
    return {
        "source": {"task": source_task, "metric": metric[len("mean_"):],
                   "languages": list(source_metrics["teacher"]["per_language"]),
                   "teacher_score": source_metrics["teacher"][metric],
                   "student_score": source_metrics["student"][metric],
                   "params": source_metrics["params"],
                   "best_stage": source_metrics["best_stage"],
                   "seconds": round(source_metrics["seconds"], 1)},
        "rows": summary_rows, "vocabulary_coverage": coverage, "seconds": round(seconds, 1)}


def _pct(value, std=None):
    if value is None:
        return "-"
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std else "")


def markdown(summary, command, sizes):
    source = summary["source"]
    lines = [f"Command: `{command}`", "", sizes, "",
             "| model | accuracy | macro F1 | below the teacher (accuracy points) | parameters "
             "| seeds | minutes a run |", "|---|---|---|---|---|---|---|"]
    order = ["teacher", "transferred", "random", "teacher_student", "random_soft", "pca_init"]
    for name in [n for n in order if n in summary["rows"]]:
        row = summary["rows"][name]
        label = "teacher, fine-tuned on the labeled sentences" if name == "teacher" else (
            ROW_NAMES[name])
        gap = "-" if name == "teacher" or row["gap_to_teacher"] is None else (
            f"{100 * row['gap_to_teacher']:.1f}")
        minutes = sum(r["seconds"] for r in row["per_seed"]) / len(row["per_seed"]) / 60
        lines.append(f"| {label} | {_pct(row['accuracy'], row['accuracy_std'])} | "
                     f"{_pct(row['macro_f1'], row['macro_f1_std'])} | {gap} | "
                     f"{row['params']:,} | {row['seeds']} | {minutes:.1f} |")
    coverage = summary["vocabulary_coverage"]
    lines += ["", "Test split. ± the standard deviation over seeds. The teacher row's run "
              "also trains its student (the soft row), so its minutes are both's.",
              f"Source ({source['task']}, {','.join(source['languages'])}): teacher "
              f"{source['metric']} {_pct(source['teacher_score'])}, distilled student "
              f"{source['metric']} {_pct(source['student_score'])} "
              f"({source['params']['student']:,} parameters, best stage {source['best_stage']}),"
              f" {source['seconds'] / 60:.1f} minutes.",
              "Target pieces the source student has: "
              + ("-" if coverage is None else f"{100 * coverage:.1f}%")
              + " (the others start from the teacher's rows mapped to the student's).",
              f"Total: {summary['seconds'] / 60:.1f} minutes."]
    return "\n".join(lines) + "\n"


# === Main ===

def main(argv):
    del argv
    harness.apply_quick(QUICK)
    rows = [r.strip() for r in FLAGS.rows if r.strip()]
    seeds = [s.strip() for s in FLAGS.seeds if s.strip()]
    check_flags(rows, seeds)
    seeds = [int(s) for s in seeds]
    started = time.time()
    model_dir = harness.resolve(FLAGS.model_dir)
    recipe = harness.recipe_options()
    settings = {**recipe, **harness.run_options()}
    source_data = harness.resolve(FLAGS.source_data_dir)
    target_data = harness.resolve(FLAGS.target_data_dir)
    for flag, folder in (("source_data_dir", source_data), ("target_data_dir", target_data)):
        if not os.path.isdir(folder):
            raise app.UsageError(f"--{flag}={FLAGS[flag].value}: no folder {folder} (the data "
                                 "lives beside the repository, ../shared/README.md).")
    languages = [l.strip() for l in FLAGS.source_languages if l.strip()]
    if languages == ["all"]:
        languages = panx.all_languages(source_data)
    sizes = {"train_per_language": FLAGS.source_train, "dev_per_language": FLAGS.source_dev,
             "test_per_language": FLAGS.source_test,
             "transfer_per_language": FLAGS.source_transfer}
    target = {name: FLAGS[name].value for name in (
        "target_data_dir", "target_train", "target_dev", "target_test", "target_transfer",
        "target_epochs", "target_ft_epochs", "target_learning_rate", "target_patience",
        "target_monitor", "source_stage")}
    # Recorded when given: older runs still compare equal.
    for name in ("target_augment_transfer", "target_layer_wise"):
        if FLAGS[name].value:
            target[name] = FLAGS[name].value
    if FLAGS.source_run:
        source_dir = harness.resolve(FLAGS.source_run)
        source_metrics, shape, source_manifest = given_source(source_dir)
        settings = {**shape, **harness.run_options()}
        harness.prepare_model_dir(model_dir, {**source_manifest, "target": target}, "")
    else:
        source_manifest = {"data": {"data_dir": source_data, "languages": languages, **sizes},
                           "recipe": recipe}
        harness.prepare_model_dir(model_dir, {**source_manifest, "target": target}, "")
        source_dir = os.path.join(model_dir, "source")
        source_metrics = run_source(source_dir, source_manifest, source_data, languages, sizes,
                                    settings)
    checkpoint = harness.export_checkpoint(source_dir, FLAGS.source_stage)
    logging.info("source student exported to %s", checkpoint)

    # Target: rt-snippets, a run per row and seed.
    target_splits, labels = classification.read_folder(target_data, pairwise=False)
    try:
        labeled, unlabeled = classification.split_train(target_splits["train"],
                                                        FLAGS.target_train, FLAGS.target_transfer)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    derived = {"train": labeled, "dev": classification.first(target_splits["dev"],
                                                             FLAGS.target_dev),
               "test": classification.first(target_splits["test"], FLAGS.target_test)}
    task_dir = os.path.join(model_dir, "target", "data")
    classification.write_task(task_dir, derived, unlabeled, labels)
    runs = target_plan(rows, seeds, task_dir, model_dir, checkpoint, settings,
                       FLAGS.target_epochs, FLAGS.target_ft_epochs, target_schedule(),
                       FLAGS.target_layer_wise)
    target_metrics = {}
    for seed, row, options in runs:
        if row == "random_soft":  # the teacher row's teacher and outputs, not made again
            teacher_run = os.path.join(os.path.dirname(options.model_dir), "teacher")
            classification.share_teacher(teacher_run, options.model_dir)
            classification.share_outputs(teacher_run, options.model_dir)
        logging.info("target run %s, seed %d: %s", row, seed, options.model_dir)
        target_metrics[seed, row] = run_pipeline(options)
    coverage = vocabulary_coverage(source_dir, runs[0][2].model_dir)

    summary = summarise(source_metrics, target_metrics, coverage, time.time() - started)
    stage_text = (f" Its student as stage {FLAGS.source_stage} left it." if FLAGS.source_stage
                  else "")
    source_text = (f"Source: {FLAGS.source_run}." if FLAGS.source_run else
                   f"Source: PAN-X {','.join(languages)}, per language {FLAGS.source_train} "
                   f"labeled, {FLAGS.source_transfer} transfer, {FLAGS.source_dev} dev, "
                   f"{FLAGS.source_test or 'all'} test sentences.")
    sizes_text = (
        f"{source_text}{stage_text} Target "
        f"{os.path.basename(os.path.normpath(target_data))}: {len(labeled):,} labeled train "
        f"sentences, {len(derived['dev']):,} dev (model selection), {len(derived['test']):,} "
        f"test; teacher row's transfer set: "
        + ("the labeled texts" if FLAGS.target_transfer == 0 else
           f"{len(unlabeled):,} further train sentences, unlabeled")
        + f". Student: {settings['num_hidden_layers']} layers, hidden "
        f"{settings['hidden_size']}, {settings['num_attention_heads']} heads, feed-forward "
        f"{settings['intermediate_size']}; --seq_len={settings['seq_len']}.")
    harness.write_outputs(summary, markdown(summary, harness.command_line(), sizes_text),
                          harness.resolve(FLAGS.output))


if __name__ == "__main__":
    define_transfer_flags()
    harness.start(main)
