"""Crash safety: epoch checkpoints, resume after SIGKILL, non-finite losses."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tf_keras

from tests.conftest import script_flags, tiny_config
from xtremedistil import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_model():
    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(1)])
    model.compile(tf_keras.optimizers.SGD(0.01), loss="mse")
    return model


def fit(model, folder, epochs, x, y, patience=5):
    """fit_resumable under the name 'fit' in `folder`, validating on the training data."""
    keep_best = training.KeepBest(patience, str(folder / "fit.best.h5"))
    training.fit_resumable(model, str(folder), "fit", keep_best, epochs, x=x, y=y,
                           validation_data=(x, y), verbose=0)


def test_non_finite_loss_stops_with_last_good_checkpoint(tmp_path):
    x = np.ones((32, 4), np.float32)
    y = np.ones((32, 1), np.float32)
    model = small_model()
    fit(model, tmp_path, 2, x, y, patience=3)
    good = json.loads((tmp_path / "fit.state.json").read_text())
    assert good["epoch"] == 1
    y_bad = np.full((32, 1), np.inf, np.float32)
    with pytest.raises(training.NonFiniteLossError, match="last good checkpoint"):
        fit(model, tmp_path, 4, x, y_bad, patience=3)
    # The checkpoint still describes the last good epoch, and its weights load.
    assert json.loads((tmp_path / "fit.state.json").read_text())["epoch"] == 1
    small_model().load_weights(str(tmp_path / "fit.last.h5"))


def test_resume_continues_after_the_last_epoch(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    fit(small_model(), tmp_path, 2, x, y)
    fit(small_model(), tmp_path, 4, x, y)  # a fresh model resumes from the checkpoint
    state = json.loads((tmp_path / "fit.state.json").read_text())
    assert state["epoch"] == 3
    assert state["optimizer_step"] == 4 * 2  # 2 batches an epoch, counted across the resume


def test_sigkill_mid_stage_then_resume_completes(tmp_path):
    # Short training: this test checks resuming, not quality.
    config = tiny_config(tmp_path, baseline=False, ft_epochs=2, distil_epochs=2, patience=2)
    command = [sys.executable, "run_xtreme_distil.py", *script_flags(config), "--cpu_devices=2"]
    log = open(tmp_path / "first.log", "w", encoding="utf-8")  # pylint: disable=consider-using-with
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    student = os.path.join(config.model_dir, "student")
    deadline = time.time() + 600
    # Kill once the second logit sub-stage has finished an epoch: mid-stage, not between.
    while not os.path.exists(os.path.join(student, "logits_2.state.json")):
        assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    log.close()
    assert not os.path.exists(os.path.join(config.model_dir, "metrics.json"))
    assert not glob.glob(os.path.join(student, "*.tmp*"))
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "logits_2: resuming after epoch" in result.stderr
    for name in ("representation", "logits_1"):
        assert f"stage {name}: done in an earlier run" in result.stderr
    with open(os.path.join(config.model_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    assert len(metrics["stages"]) == 11
    assert sorted(metrics["student"]["per_language"]) == ["xx", "yy", "zz"]
    assert not glob.glob(os.path.join(student, "*.state.json"))
