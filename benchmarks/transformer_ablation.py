"""Ablation of the transformer student's distillation on PAN-X (issue #12): one row per variant.

On the --quick data of panx.py (en,de,ru; per language 500 labeled, 1,000 transfer, 100 dev,
500 test sentences) ONE teacher is fine-tuned, then each variant distils a transformer student
(--student=transformer, the same shape) in its own pipeline run, <model_dir>/<variant>/:

  single_layer    the stage-wise recipe: representation (the student's last layer learns the
                  teacher's), logits and labels with gradual unfreezing
  multi_layer     + a 'layers' stage first: every student layer learns its mapped teacher
                  layer (--distil_multi_hidden_states)
  attention       + an 'attention' stage before that: the student's attention learns the
                  teacher's (--distil_attention; with multi_layer: XtremeDistilTransformers)
  all_at_once     the attention variant without gradual unfreezing: one logits stage and one
                  labels stage, each training every layer group at once (the recipe
                  'all_at_once', registered here)
  attention_only  (not run by default) --distil_attention without --distil_multi_hidden_states
  attention_matched  (not run by default) the attention variant, each student head learning
                  its own group of teacher heads (--attention_heads=match)

The first variant's run fine-tunes the teacher (or --reuse_teacher_from copies one) and trains
the baseline (the same shape on the labeled data alone); the others get a copy (hard links) of
that teacher, and the stored teacher outputs of an earlier variant with the same outputs.

  python benchmarks/transformer_ablation.py            # the four variants: ~30-45 min on 2 cores
                                                       # (estimate)
  python benchmarks/transformer_ablation.py --quick    # en alone, tiny sizes: a smoke run
  python benchmarks/transformer_ablation.py --variants=attention_only --reuse_teacher_from=...

Writes --output (JSON), the same path with .md (the table), prints the table and one
RESULTS.md line per variant. A rerun with the same options resumes every variant's run.
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

from benchmarks import classification
from benchmarks import harness
from benchmarks import panx
from xtremedistil import options as options_lib
from xtremedistil import recipes

FLAGS = flags.FLAGS

ALL_AT_ONCE = "all_at_once"


@dataclasses.dataclass(frozen=True)
class Variant:
    description: str
    options: dict  # option values over the benchmark's flags


LAYER_WISE = ("distil_multi_hidden_states", "distil_attention")


def _variant(description, multi_layer, attention, **options):
    return Variant(description, {"distil_multi_hidden_states": multi_layer,
                                 "distil_attention": attention, **options})


VARIANTS = {
    "single_layer": _variant("last layer's hidden states, then logits and labels; gradual "
                             "unfreezing", False, False),
    "multi_layer": _variant("+ every layer's hidden states (--distil_multi_hidden_states)",
                            True, False),
    "attention": _variant("+ attention distributions (--distil_attention), with every layer's "
                          "hidden states", True, True),
    ALL_AT_ONCE: _variant("the attention variant, every layer group trained at once (one "
                          "logits and one labels stage, no gradual unfreezing)", True, True,
                          recipe=ALL_AT_ONCE),
    "attention_only": _variant("attention distributions (--distil_attention) without every "
                               "layer's hidden states", False, True),
    "attention_matched": _variant("the attention variant, each student head learning its own "
                                  "group of teacher heads (--attention_heads=match)", True,
                                  True, attention_heads="match"),
}
DEFAULT_VARIANTS = "single_layer,multi_layer,attention,all_at_once"
# panx.py's --quick data, the "--quick data".
DATA_DEFAULTS = {key: panx.QUICK[key] for key in (
    "languages", "train_per_language", "dev_per_language", "test_per_language",
    "transfer_per_language")}
RECIPE_DEFAULTS = {**panx.RECIPE_DEFAULTS, "student": "transformer", "distil_epochs": 2}
QUICK = {"languages": "en", "train_per_language": 100, "dev_per_language": 50,
         "test_per_language": 100, "transfer_per_language": 200, "ft_epochs": 1,
         "distil_epochs": 1, "num_hidden_layers": 2, "hidden_size": 64,
         "intermediate_size": 128, "model_dir": "benchmarks/out/transformer_ablation_quick",
         "output": "benchmarks/out/transformer_ablation_quick.json"}


def define_ablation_flags():
    panx.define_data_flags(DATA_DEFAULTS)
    flags.DEFINE_list("variants", DEFAULT_VARIANTS,
                      f"Variants, each its own pipeline run, in order: {', '.join(VARIANTS)}.")
    harness.define_flags("transformer_ablation", QUICK, "; a smoke run of a few minutes",
                         RECIPE_DEFAULTS)
    flags.adopt_module_key_flags(harness)


# === The all-at-once recipe ===

def all_at_once_stages(task, student, options):
    """The stage-wise recipe ('ours') with its gradual unfreezing folded: the stages before the
    logits (attention, layers, representation) as they are, then ONE logits stage and ONE
    labels stage, each training every layer group (the last sub-stage of each, renamed)."""
    stages = recipes.get("ours")(task, student, options)
    kept = [s for s in stages if not s.name.startswith(("logits_", "labels_"))]
    for prefix in ("logits", "labels"):
        last = [s for s in stages if s.name.startswith(prefix + "_")][-1]
        assert set(last.trainable) == set(student.groups_top_down())
        kept.append(dataclasses.replace(last, name=prefix))
    return kept


recipes.RECIPES.register(ALL_AT_ONCE, all_at_once_stages)


# === Plan ===

def plan(variants, settings, task_dir, model_dir):
    """[(variant, run folder, Options)] in order: the first with the baseline. `settings`: the
    recipe, student and run options of every variant."""
    runs = []
    for index, name in enumerate(variants):
        run_dir = os.path.join(model_dir, name)
        options = options_lib.Options(
            task=task_dir, transfer_file=os.path.join(task_dir, "transfer.txt"),
            model_dir=run_dir, data_format="xtremedistil", tag_scheme="iob2",
            baseline=index == 0, **{**settings, **VARIANTS[name].options})
        runs.append((name, run_dir, options.validate()))
    return runs


def check_variants(variants, recipe):
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants or len(set(variants)) < len(variants):
        raise app.UsageError(f"--variants={','.join(variants)}: one or more of "
                             f"{', '.join(VARIANTS)}, each once.")
    if recipe not in ("ours", "xtremedistil"):
        raise app.UsageError(f"--recipe={recipe}: the ablation varies the stage-wise recipe "
                             "'ours' (all_at_once folds its unfreezing); give --recipe=ours.")


def teacher_outputs_key(options):
    """What decides a run's stored teacher outputs beyond the shared teacher and data."""
    return (options.distil_multi_hidden_states, options.distil_attention,
            options.distil_multi_hidden_states and options.layer_map,
            options.distil_attention and options.attention_layers,
            options.distil_attention and options.attention_heads)


def run_variants(runs, model_dir):
    """Runs each planned variant; the teacher of <model_dir>/teacher/ (fine-tuned by the first
    run when missing) for all. Returns {variant: (metrics, dev scores)}."""
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    import tf_keras  # pylint: disable=import-outside-toplevel
    results, outputs_from = {}, {}
    for name, run_dir, options in runs:
        if classification.share_teacher(model_dir, run_dir):
            logging.info("%s: the teacher of %s", name, os.path.join(model_dir, "teacher"))
        key = teacher_outputs_key(options)
        if key in outputs_from:
            classification.share_outputs(outputs_from[key], run_dir)
        logging.info("variant %s: pipeline run in %s", name, run_dir)
        metrics = pipeline.run(options, given=options.to_dict())
        results[name] = (metrics, harness.dev_scores(run_dir))
        outputs_from.setdefault(key, run_dir)
        classification.share_teacher(run_dir, model_dir)
        tf_keras.backend.clear_session()
    return results


# === Report ===

def student_seconds(metrics):
    """Seconds of the student's own stages (not the teacher's, not the baseline's)."""
    return sum(s["seconds"] for s in metrics["stages"]
               if not s["name"].startswith(("teacher_", "baseline_")))


def summarise(results, seconds):
    """The JSON: teacher and baseline of the first run, a row per variant."""
    first = next(iter(results.values()))[0]
    teacher = first["teacher"]["mean_f1"]
    baseline = next((m["baseline"] for m, _ in results.values() if m.get("baseline")), None)
    variants = {}
    for name, (metrics, dev) in results.items():
        student = metrics["student"]["mean_f1"]
        variants[name] = {
            "description": VARIANTS[name].description,
            "student_f1": student, "retention": student / teacher if teacher else 0.0,
            "dev_f1": dev.get("student"), "best_stage": metrics["best_stage"],
            "per_language": {l: s["f1"] for l, s in metrics["student"]["per_language"].items()},
            "stages": [s["name"] for s in metrics["stages"]],
            "student_seconds": round(student_seconds(metrics), 1),
            "seconds": round(metrics["seconds"], 1),
            "params": metrics["params"]["student"]}
    return {"languages": list(first["teacher"]["per_language"]),
            "teacher_f1": teacher,
            "baseline_f1": baseline["mean_f1"] if baseline else None,
            "baseline_dev_f1": next((d["baseline"] for _, d in results.values()
                                     if "baseline" in d), None),
            "params": {"teacher": first["params"]["teacher"]},
            "variants": variants, "seconds": round(seconds, 1)}


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}"


def markdown(summary, command, sizes):
    lines = [f"Command: `{command}`", "", sizes, "",
             "| variant | what the student distils | student F1 | retention | dev F1 | "
             "student seconds | run seconds | parameters |", "|---|---|---|---|---|---|---|---|"]
    for name, row in summary["variants"].items():
        lines.append(f"| {name} | {row['description']} | {_pct(row['student_f1'])} | "
                     f"{_pct(row['retention'])}% | {_pct(row['dev_f1'])} | "
                     f"{row['student_seconds']:.0f} | {row['seconds']:.0f} | "
                     f"{row['params']:,} |")
    lines += ["", f"Teacher F1 {_pct(summary['teacher_f1'])} "
              f"({summary['params']['teacher']:,} parameters); baseline (the first variant's "
              f"shape on the labels alone) F1 {_pct(summary['baseline_f1'])}, dev "
              f"{_pct(summary['baseline_dev_f1'])}. F1: entity-level (seqeval), test split, "
              "mean over languages; retention: student F1 / teacher F1; dev F1: the best "
              "sub-stage's (model selection). Student seconds: the variant's stages; run "
              "seconds: its whole pipeline run (the first also fine-tunes the teacher and "
              "trains the baseline; each computes the teacher outputs it needs unless an "
              "earlier variant stored the same)."]
    return "\n".join(lines) + "\n"


def results_lines(summary, command):
    """One benchmarks/RESULTS.md row per variant ('#' left for the author)."""
    lines = []
    for name, row in summary["variants"].items():
        cells = ["#", f"`{command}` ({name})", ",".join(summary["languages"]),
                 _pct(summary["teacher_f1"]), _pct(row["student_f1"]),
                 _pct(summary["baseline_f1"]), f"{_pct(row['retention'])}%",
                 f"{_pct(row['dev_f1'])} / {_pct(summary['baseline_dev_f1'])}",
                 f"{row['seconds'] / 60:.1f}",
                 f"transformer ablation, {name}: {row['description']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# === Main ===

def main(argv):
    del argv
    harness.apply_quick(QUICK)
    variants = [v.strip() for v in FLAGS.variants if v.strip()]
    check_variants(variants, FLAGS.recipe)
    if FLAGS.student != "transformer":
        raise app.UsageError("--student: the ablation is of the transformer student.")
    given = [name for name in LAYER_WISE if FLAGS[name].present]
    if given:
        raise app.UsageError(f"--{given[0]}: each variant sets it (--variants chooses them).")
    data_dir = harness.data_folder("PAN-X")
    languages = [l.strip() for l in FLAGS.languages if l.strip()]
    if languages == ["all"]:
        languages = panx.all_languages(data_dir)
    sizes = {name: FLAGS[name].value for name in (
        "train_per_language", "dev_per_language", "test_per_language", "transfer_per_language")}
    if sizes["train_per_language"] < 1 or sizes["transfer_per_language"] < 1:
        raise app.UsageError("--train_per_language and --transfer_per_language must be >= 1.")
    started = time.time()
    model_dir = harness.resolve(FLAGS.model_dir)
    recipe = harness.recipe_options()
    harness.prepare_model_dir(
        model_dir, {"data": {"data_dir": data_dir, "languages": languages, **sizes},
                    "recipe": recipe}, FLAGS.reuse_teacher_from)
    task_dir = os.path.join(model_dir, "data")
    runs = plan(variants, {**recipe,
                           **harness.run_options()},
                task_dir, model_dir)
    splits, transfer, counts = panx.load_panx(data_dir, languages, **sizes)
    harness.write_task(task_dir, splits, transfer, panx.PANX_TAGS)
    logging.info("sentences per language: %s", counts)
    results = run_variants(runs, model_dir)
    summary = summarise(results, time.time() - started)
    command = harness.command_line()
    description = (
        f"Per language ({', '.join(languages)}): {sizes['train_per_language']} labeled train "
        f"sentences, {sizes['transfer_per_language']} transfer, "
        f"{sizes['dev_per_language'] or 'all'} dev, {sizes['test_per_language'] or 'all'} test."
        f" Student: {FLAGS.num_hidden_layers} layers, hidden {FLAGS.hidden_size}, "
        f"{FLAGS.num_attention_heads} heads, feed-forward {FLAGS.intermediate_size}; "
        f"{FLAGS.distil_epochs} epochs a stage at most." + panx.shortfalls(counts, sizes))
    harness.write_outputs(summary, markdown(summary, command, description),
                          harness.resolve(FLAGS.output))
    print("RESULTS.md lines (fill in # and what changed):")
    print("\n".join(results_lines(summary, command)))


if __name__ == "__main__":
    define_ablation_flags()
    harness.start(main)
