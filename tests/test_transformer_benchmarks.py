"""benchmarks/transformer_ablation.py and benchmarks/task_transfer.py without training: their plans
of runs and the options of each, the all-at-once recipe, the teacher sharing between the
ablation's runs, the reports from hand-made metrics, and the flag checks (a subprocess each).
End to end they take minutes even at the tiniest sizes (a dozen stages a run, several runs):
README "benchmarks/task_transfer.py" says how long a timed small run took."""

import json
import os
import subprocess
import sys
import types

import pytest
from absl import app

from benchmarks import harness
from benchmarks import task_transfer
from benchmarks import transformer_ablation as ablation
from xtremedistil import options as options_lib
from xtremedistil import recipes
from xtremedistil import students
from xtremedistil import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = {"student": "transformer", "num_hidden_layers": 2, "hidden_size": 32,
         "num_attention_heads": 4, "intermediate_size": 64, "word_emb_dim": 32, "seq_len": 16}


def settings(**overrides):
    """The options every run of a plan shares, as the scripts build them from their flags."""
    names = harness.RECIPE_OPTIONS + harness.RUN_OPTIONS
    defaults = options_lib.Options()
    values = {name: getattr(defaults, name) for name in names}
    return {**values, **SHAPE, **overrides}


# === transformer_ablation.py ===

def test_ablation_plan_one_run_per_variant_the_first_with_the_baseline(tmp_path):
    variants = ablation.DEFAULT_VARIANTS.split(",")
    runs = ablation.plan(variants, settings(), str(tmp_path / "data"), str(tmp_path))
    assert [name for name, _, _ in runs] == ["single_layer", "multi_layer", "attention",
                                             "all_at_once"]
    by_name = {name: options for name, _, options in runs}
    assert [o.baseline for o in by_name.values()] == [True, False, False, False]
    assert [(o.distil_multi_hidden_states, o.distil_attention) for o in by_name.values()] == [
        (False, False), (True, False), (True, True), (True, True)]
    assert [o.recipe for o in by_name.values()] == ["ours"] * 3 + ["all_at_once"]
    for name, run_dir, options in runs:
        assert run_dir == str(tmp_path / name) == options.model_dir
        assert options.student == "transformer" and options.num_hidden_layers == 2
        assert options.transfer_file == str(tmp_path / "data" / "transfer.txt")
        assert options.distil_mode == "stagewise" and options.data_format == "xtremedistil"
    # attention and all_at_once store the same teacher outputs; the others their own.
    keys = [ablation.teacher_outputs_key(o) for o in by_name.values()]
    assert keys[2] == keys[3] and len(set(keys)) == 3
    # Each variant sets both layer-wise options, whatever the shared settings say.
    (_, _, single), = ablation.plan(["single_layer"], settings(
        distil_attention=True, distil_multi_hidden_states=True), str(tmp_path), str(tmp_path))
    assert not single.distil_attention and not single.distil_multi_hidden_states


def test_all_at_once_keeps_the_stages_before_the_logits_and_trains_every_group_at_once():
    options = options_lib.Options(**SHAPE, distil_multi_hidden_states=True,
                                  distil_attention=True)
    task, student = tasks.get("tagging"), students.get(options)
    ours = recipes.get("ours")(task, student, options)
    folded = recipes.get(ablation.ALL_AT_ONCE)(task, student, options)
    assert [s.name for s in folded] == ["attention", "layers", "representation", "logits",
                                        "labels"]
    assert folded[:3] == ours[:3]
    groups = set(student.groups_top_down())
    assert len(groups) == 5  # logits, projection, layer_2, layer_1, embeddings
    for stage, unfolded in zip(folded[3:], ("logits_5", "labels_5")):
        assert set(stage.trainable) == groups and stage.score_on_dev
        assert stage.objective == next(s for s in ours if s.name == unfolded).objective
    # Without the two first stages: representation, logits, labels.
    plain = options.replace(distil_multi_hidden_states=False, distil_attention=False)
    assert [s.name for s in recipes.get(ablation.ALL_AT_ONCE)(task, student, plain)] == [
        "representation", "logits", "labels"]


def test_ablation_refuses_unknown_variants_and_another_recipe():
    with pytest.raises(ablation.app.UsageError, match="each once"):
        ablation.check_variants(["single_layer", "nope"], "ours")
    with pytest.raises(ablation.app.UsageError, match="each once"):
        ablation.check_variants(["attention", "attention"], "ours")
    with pytest.raises(ablation.app.UsageError, match="--recipe=paper"):
        ablation.check_variants(["attention"], "paper")
    ablation.check_variants(list(ablation.VARIANTS), "ours")


def fake_pipeline(monkeypatch, runs):
    """xtremedistil.pipeline replaced by one that records what each run found in its model_dir
    and 'fine-tunes' a teacher (writes tf_model.h5) where there is none."""
    import xtremedistil  # pylint: disable=import-outside-toplevel

    def run(options, given=None):
        assert given == options.to_dict()
        teacher = os.path.join(options.model_dir, "teacher")
        fine_tunes = not os.path.exists(os.path.join(teacher, "tf_model.h5"))
        os.makedirs(teacher, exist_ok=True)
        open(os.path.join(teacher, "tf_model.h5"), "a", encoding="utf-8").close()
        outputs = os.path.join(options.model_dir, "teacher_outputs")
        found = sorted(os.listdir(outputs)) if os.path.isdir(outputs) else []
        os.makedirs(outputs, exist_ok=True)
        open(os.path.join(outputs, os.path.basename(options.model_dir)), "a",
             encoding="utf-8").close()
        runs.append((os.path.basename(options.model_dir), options.baseline, fine_tunes, found))
        return fake_tagging_metrics(0.5 + 0.1 * len(runs), options.baseline)

    fake = types.SimpleNamespace(run=run)
    monkeypatch.setitem(sys.modules, "xtremedistil.pipeline", fake)
    monkeypatch.setattr(xtremedistil, "pipeline", fake, raising=False)
    monkeypatch.setitem(sys.modules, "xtremedistil.teacher", types.SimpleNamespace(
        is_finetuned=lambda folder: os.path.exists(os.path.join(folder, "tf_model.h5"))))
    monkeypatch.setattr(xtremedistil, "teacher", sys.modules["xtremedistil.teacher"],
                        raising=False)


def fake_tagging_metrics(student_f1, baseline=False):
    scores = lambda f1: {"per_language": {"en": {"f1": f1}, "de": {"f1": f1}},  # noqa: E731
                         "mean_f1": f1}
    metrics = {"teacher": scores(0.8), "student": scores(student_f1),
               "params": {"teacher": 1000, "student": 100}, "best_stage": "labels_5",
               "stages": [{"name": "teacher_fine_tuning", "seconds": 30.0},
                          {"name": "teacher_outputs", "seconds": 10.0},
                          {"name": "representation", "seconds": 5.0},
                          {"name": "labels_1", "seconds": 3.0}]
               + ([{"name": "baseline_labels", "seconds": 2.0}] if baseline else []),
               "seconds": 60.0}
    if baseline:
        metrics["baseline"] = scores(0.4)
    return metrics


def test_ablation_fine_tunes_one_teacher_and_shares_equal_outputs(tmp_path, monkeypatch):
    runs = []
    fake_pipeline(monkeypatch, runs)
    planned = ablation.plan(["attention", "single_layer", "all_at_once"], settings(),
                            str(tmp_path / "data"), str(tmp_path))
    results = ablation.run_variants(planned, str(tmp_path))
    # The first fine-tunes (and trains the baseline); all_at_once finds attention's outputs.
    assert runs == [("attention", True, True, []), ("single_layer", False, False, []),
                    ("all_at_once", False, False, ["attention"])]
    assert os.path.samefile(tmp_path / "teacher" / "tf_model.h5",
                            tmp_path / "single_layer" / "teacher" / "tf_model.h5")

    summary = ablation.summarise(results, 200.0)
    assert list(summary["variants"]) == ["attention", "single_layer", "all_at_once"]
    assert summary["teacher_f1"] == 0.8 and summary["baseline_f1"] == 0.4
    row = summary["variants"]["single_layer"]
    assert row["student_f1"] == pytest.approx(0.7)
    assert row["retention"] == pytest.approx(0.7 / 0.8)
    assert row["student_seconds"] == 8.0  # its own stages: not the teacher's, not the baseline's
    json.dumps(summary)
    table = ablation.markdown(summary, "python x.py", "Sizes.")
    assert "| single_layer | last layer's hidden states" in table
    assert "| 70.0 | 87.5% | - | 8 | 60 | 100 |" in table
    lines = ablation.results_lines(summary, "python x.py")
    with open(os.path.join(ROOT, "benchmarks", "RESULTS.md"), encoding="utf-8") as f:
        header = next(l for l in f if l.startswith("| # |"))
    assert len(lines) == 3
    for line in lines:  # the RESULTS.md columns
        assert line.count(" | ") == header.count(" | ")
    assert "`python x.py` (all_at_once) | en,de | 80.0 | 80.0 | 40.0 | 100.0% |" in lines[2]


# === task_transfer.py ===

def test_task_transfer_plan_every_row_per_seed(tmp_path):
    task_dir, checkpoint = str(tmp_path / "target" / "data"), str(tmp_path / "ckpt")
    shared = settings(distil_multi_hidden_states=True, distil_attention=True)
    runs = task_transfer.target_plan(["random_soft", "transferred", "random", "teacher",
                                      "pca_init"], [1, 2],
                                     task_dir, str(tmp_path), checkpoint, shared, 7, 2)
    assert [(seed, row) for seed, row, _ in runs] == [
        (s, r) for s in (1, 2)
        for r in ("transferred", "random", "teacher", "pca_init", "random_soft")]
    for seed, row, options in runs:
        assert options.model_dir == str(tmp_path / "target" / f"seed{seed}" / row)
        assert options.seed == seed and options.task == task_dir and not options.do_NER
        assert (options.distil_epochs, options.ft_epochs) == (7, 2)
        # The source run's shape; no stage that needs the source's teacher.
        assert (options.student, options.num_hidden_layers, options.hidden_size) == (
            "transformer", 2, 32)
        assert not (options.distil_multi_hidden_states or options.distil_attention
                    or options.baseline)
    rows = {row: options for seed, row, options in runs if seed == 1}
    assert (rows["transferred"].distil_mode, rows["transferred"].pt_student_checkpoint) == (
        "none", checkpoint)
    assert not rows["transferred"].transfer_file
    assert (rows["random"].distil_mode, rows["random"].pt_student_checkpoint,
            rows["random"].compress_word_embedding) == ("none", "", False)
    assert (rows["teacher"].distil_mode, rows["teacher"].pt_student_checkpoint) == (
        "soft", checkpoint)
    assert rows["teacher"].transfer_file == os.path.join(task_dir, "transfer.txt")
    assert (rows["pca_init"].compress_word_embedding, rows["pca_init"].pt_student_checkpoint) == (
        True, "")
    assert (rows["random_soft"].distil_mode, rows["random_soft"].pt_student_checkpoint,
            rows["random_soft"].transfer_file) == ("soft", "", rows["teacher"].transfer_file)

    assert all(o.distil_learning_rate == shared["distil_learning_rate"] for _, _, o in runs)
    slower = task_transfer.target_plan(["transferred"], [1], task_dir, str(tmp_path), checkpoint,
                                       shared, 7, 2, {"distil_learning_rate": 1e-4, "patience": 6,
                                                      "label_stage_monitor": "accuracy"})
    assert (slower[0][2].distil_learning_rate, slower[0][2].patience,
            slower[0][2].label_stage_monitor) == (1e-4, 6, "accuracy")
    # The source's augmentation stays with the source; the target's is given for the target.
    augmented_source = {**shared, "augment_transfer": 3}
    assert task_transfer.target_plan(["teacher"], [1], task_dir, str(tmp_path), checkpoint,
                                     augmented_source, 7, 2)[0][2].augment_transfer == 0
    assert task_transfer.target_plan(["teacher"], [1], task_dir, str(tmp_path), checkpoint,
                                     shared, 7, 2, {"augment_transfer": 4}
                                     )[0][2].augment_transfer == 4
    # Layer-wise on the target: only the rows distilled there.
    layer_wise = {row: options for _, row, options in task_transfer.target_plan(
        ["transferred", "teacher", "random_soft"], [1], task_dir, str(tmp_path), checkpoint,
        shared, 7, 2, layer_wise=True)}
    for row, expected in (("transferred", False), ("teacher", True), ("random_soft", True)):
        assert (layer_wise[row].distil_multi_hidden_states,
                layer_wise[row].distil_attention) == (expected, expected)

    source = task_transfer.source_options(str(tmp_path / "source" / "data"),
                                          str(tmp_path / "source"), shared)
    assert source.do_NER and source.distil_mode == "stagewise" and not source.baseline
    assert source.distil_multi_hidden_states and source.distil_attention


def fake_classification_metrics(student, teacher=None, seconds=30.0):
    scores = lambda accuracy: {"mean_accuracy": accuracy,  # noqa: E731
                               "mean_macro_f1": accuracy - 0.05}
    return {"teacher": scores(teacher) if teacher is not None else {"trained": False},
            "student": scores(student), "params": {"teacher": 1000, "student": 100},
            "best_stage": "labels", "seconds": seconds}


def test_task_transfer_summary_means_over_seeds_and_the_table():
    source = {"teacher": {"per_language": {"en": {}}, "mean_f1": 0.8},
              "student": {"mean_f1": 0.7}, "params": {"teacher": 1000, "student": 100},
              "best_stage": "labels_5", "seconds": 600.0}
    target = {(1, "transferred"): fake_classification_metrics(0.78),
              (1, "random"): fake_classification_metrics(0.60),
              (1, "teacher"): fake_classification_metrics(0.80, teacher=0.82, seconds=90.0),
              (2, "transferred"): fake_classification_metrics(0.74),
              (2, "random"): fake_classification_metrics(0.62),
              (2, "teacher"): fake_classification_metrics(0.78, teacher=0.84, seconds=90.0)}
    summary = task_transfer.summarise(source, target, 0.9, 1200.0)
    rows = summary["rows"]
    assert list(rows) == ["transferred", "random", "teacher", "teacher_student"]
    assert rows["transferred"]["accuracy"] == pytest.approx(0.76)
    assert rows["transferred"]["accuracy_std"] == pytest.approx(0.0283, abs=1e-4)
    assert rows["teacher"]["accuracy"] == pytest.approx(0.83)
    assert rows["teacher"]["params"] == 1000 and rows["random"]["params"] == 100
    assert rows["transferred"]["gap_to_teacher"] == pytest.approx(0.07)
    assert [r["seed"] for r in rows["random"]["per_seed"]] == [1, 2]
    assert summary["source"]["student_score"] == 0.7 and summary["vocabulary_coverage"] == 0.9
    assert summary["source"]["metric"] == "f1"
    json.dumps(summary)
    table = task_transfer.markdown(summary, "python x.py", "Sizes.")
    assert "| teacher, fine-tuned on the labeled sentences | 83.0 ± 1.4 |" in table
    assert ("| student, distilled on the source task, fine-tuned | 76.0 ± 2.8 | 71.0 ± 2.8 "
            "| 7.0 | 100 | 2 |" in table)
    assert "| student, random initialisation, fine-tuned | 61.0 ± 1.4 |" in table
    assert table.index("| teacher,") < table.index("| student, distilled on the source task, f")
    assert "Source (tagging, en): teacher f1 80.0, distilled student f1 70.0" in table
    assert "Target pieces the source student has: 90.0%" in table


# === The scripts' flag checks (no training) ===

def run_script(script, *flags_given):
    return subprocess.run([sys.executable, f"benchmarks/{script}"] + list(flags_given),
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_task_transfer_refuses_embeddings_narrower_than_the_encoder(tmp_path):
    process = run_script("task_transfer.py", "--word_emb_dim=32", "--hidden_size=64",
                         f"--model_dir={tmp_path / 'm'}")
    assert process.returncode != 0
    assert "--word_emb_dim=32 must equal --hidden_size=64" in process.stderr
    assert not (tmp_path / "m").exists()  # refused before anything is written


def test_ablation_refuses_an_unknown_variant(tmp_path):
    process = run_script("transformer_ablation.py", "--variants=single_layer,bogus",
                         f"--model_dir={tmp_path / 'm'}")
    assert process.returncode != 0
    assert "--variants=single_layer,bogus" in process.stderr
    assert not (tmp_path / "m").exists()


def _finished_run(folder, **options):
    """A run folder as a finished pipeline run leaves it, as far as --source_run reads it."""
    from xtremedistil.manifest import Manifest  # pylint: disable=import-outside-toplevel
    Manifest(options=options_lib.Options(model_dir=str(folder), **options), task="tagging",
             labels=["O"], student_vocab=["[UNK]"]).write()
    (folder / "student").mkdir()
    (folder / "student" / "best.h5").write_bytes(b"")
    (folder / "metrics.json").write_text(json.dumps({"student": {"mean_f1": 0.5}}))


def test_task_transfer_source_run_gives_its_shape_and_refuses_a_bilstm(tmp_path):
    run = tmp_path / "transformer"
    run.mkdir()
    _finished_run(run, **{**SHAPE, "seq_len": 48})
    metrics, shape, entry = task_transfer.given_source(str(run))
    assert metrics == {"student": {"mean_f1": 0.5}}
    assert {k: shape[k] for k in SHAPE} == {**SHAPE, "seq_len": 48}
    assert set(shape) == set(harness.RECIPE_OPTIONS)
    assert entry["source_run"] == str(run) and entry["source_options"]["seq_len"] == 48
    bilstm = tmp_path / "bilstm"
    bilstm.mkdir()
    _finished_run(bilstm)
    with pytest.raises(task_transfer.app.UsageError, match="--student=bilstm"):
        task_transfer.given_source(str(bilstm))
    with pytest.raises(task_transfer.app.UsageError, match="no finished run"):
        task_transfer.given_source(str(tmp_path))


def test_a_model_dir_without_a_recipe_resumes_with_the_same_options(tmp_path, monkeypatch):
    """benchmark.json of task_transfer.py --source_run has no recipe: a rerun with the same
    options resumes (it was refused as a changed recipe), other options are refused."""
    monkeypatch.setattr(harness, "FLAGS", types.SimpleNamespace(overwrite=False))
    manifest = {"source_run": "src", "source_options": {"seed": 1},
                "target": {"target_train": 500}}
    harness.prepare_model_dir(str(tmp_path), manifest, "")
    harness.prepare_model_dir(str(tmp_path), manifest, "")
    with pytest.raises(app.UsageError, match="target"):
        harness.prepare_model_dir(str(tmp_path), {**manifest, "target": {"target_train": 200}},
                                  "")
