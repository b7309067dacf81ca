"""End-to-end: the whole pipeline on the synthetic task, on one device and under
MirroredStrategy (2 CPUs)."""

import json
import os
import random
import subprocess
import sys

import pytest
from seqeval import metrics as seqeval_metrics

from tests.conftest import script_flags, tiny_config
from xtremedistil import data as data_lib
from xtremedistil import pipeline
from xtremedistil.synthetic import LANGUAGES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_tagger_f1(sentences, tags, seed=0):
    rng = random.Random(seed)
    gold = [list(s.tags) for s in sentences]
    predicted = [[rng.choice(tags) for _ in s.tags] for s in sentences]
    return seqeval_metrics.f1_score(gold, predicted)


def test_student_learns_and_metrics_hold_every_language(trained_run):
    config, metrics = trained_run
    with open(os.path.join(config.model_dir, "metrics.json"), encoding="utf-8") as f:
        written = json.load(f)
    assert written["student"]["mean_f1"] == pytest.approx(metrics["student"]["mean_f1"])
    for model in ("teacher", "student"):
        assert sorted(written[model]["per_language"]) == sorted(LANGUAGES)
        for scores in written[model]["per_language"].values():
            assert set(scores) == {"precision", "recall", "f1", "sentences"}
            assert 0.0 <= scores["f1"] <= 1.0 and scores["sentences"] == 30
    test = data_lib.read_labeled_file(os.path.join(config.task, "test.tsv")).sentences
    baseline = random_tagger_f1(test, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"])
    assert baseline < 0.15
    assert written["student"]["mean_f1"] > 0.6
    assert written["teacher"]["mean_f1"] > 0.6
    assert written["params"]["student"] < written["params"]["teacher"]
    assert written["compression"] == pytest.approx(
        written["params"]["teacher"] / written["params"]["student"])
    names = [stage["name"] for stage in written["stages"]]
    assert names == ["teacher_fine_tuning", "teacher_outputs", "representation", "logits_1",
                     "logits_2", "logits_3", "logits_4", "labels_1", "labels_2", "labels_3",
                     "labels_4", "baseline_labels"]
    assert written["replicas"] == 1
    assert sorted(written["baseline"]["per_language"]) == sorted(LANGUAGES)
    assert written["skipped_sentences"] == 0


def test_config_json_records_flags_tags_and_vocab(trained_run):
    config, _ = trained_run
    with open(os.path.join(config.model_dir, "config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["options"]["seq_len"] == config.seq_len
    assert saved["labels"][0] == "O" and len(saved["labels"]) == 7
    assert saved["student_vocab"][:2] == ["[PAD]", "[UNK]"]
    assert "paris" in saved["student_vocab"]
    assert len(saved["student_vocab"]) == saved["teacher_vocab_size"]  # --student_vocab=full


def test_script_resumes_without_retraining(trained_run, exported):
    """The absl script on a finished, exported model_dir skips every stage, rewrites the same
    metrics and keeps the export."""
    config, metrics = trained_run
    del exported  # the export of this student, which the rerun keeps
    result = subprocess.run([sys.executable, "run_xtreme_distil.py", *script_flags(config),
                             "--cpu_devices=2"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fine-tuned in an earlier run" in result.stderr
    assert "test scores of this teacher and test set from" in result.stderr  # not rescored
    assert result.stderr.count("done in an earlier run") == 10  # 9 stages and the baseline
    assert "| mean |" in result.stdout
    assert "is of this student already" in result.stderr
    with open(os.path.join(config.model_dir, "metrics.json"), encoding="utf-8") as f:
        rerun = json.load(f)
    assert rerun["student"]["mean_f1"] == pytest.approx(metrics["student"]["mean_f1"])


@pytest.mark.parametrize("option, value, message", [
    ("seq_len", 24, "--seq_len=16"),
    ("distil_learning_rate", 0.01, "--distil_learning_rate=0.003")])
def test_resume_with_other_options_names_the_flag(trained_run, option, value, message):
    config, _ = trained_run
    changed = tiny_config(os.path.dirname(config.model_dir), **{option: value})
    with pytest.raises(ValueError, match=message):
        pipeline.run(changed)


def test_unwritable_model_dir_fails_at_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="--model_dir"):
        pipeline.check_model_dir(tiny_config(tmp_path, model_dir=str(blocker / "model")))


def test_mixed_precision_stays_within_one_point_of_float32(trained_run, tmp_path):
    _, float32_metrics = trained_run
    mixed = pipeline.run(tiny_config(tmp_path, opt_policy="mixed_bfloat16", baseline=False))
    for model in ("teacher", "student"):
        assert mixed[model]["mean_f1"] == pytest.approx(float32_metrics[model]["mean_f1"],
                                                        abs=0.01)


def test_two_replicas_fine_tune_distil_and_learn(tmp_path):
    """MirroredStrategy over the 2 logical CPUs: the teacher, its outputs and the student's
    stages run with a batch on each replica."""
    config = tiny_config(tmp_path, strategy="mirrored", distil_mode="soft", baseline=False)
    metrics = pipeline.run(config)
    assert metrics["replicas"] == 2
    assert [s["name"] for s in metrics["stages"]] == [
        "teacher_fine_tuning", "teacher_outputs", "teacher_logits", "labels"]
    assert metrics["teacher"]["mean_f1"] > 0.6 and metrics["student"]["mean_f1"] > 0.6
