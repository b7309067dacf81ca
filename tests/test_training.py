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
import tensorflow as tf
import tf_keras
import transformers

from tests.conftest import script_flags, tiny_config
from xtremedistil import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_model():
    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(1)])
    model.compile(tf_keras.optimizers.Adam(0.01), loss="mse")
    return model


def dataset(x, y, batch_size=32):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def fit(model, folder, epochs, x, y, patience=5, checkpoint_steps=0, callbacks=(), seed=None):
    """fit_resumable under the name 'fit' in `folder`, validating on the training data; with a
    seed, each epoch's order is a function of (seed, epoch)."""
    folder.mkdir(exist_ok=True)
    keep_best = training.KeepBest(patience, str(folder / "fit.best.h5"))
    examples = tf.data.Dataset.from_tensor_slices((x, y))

    def epoch_data(epoch):
        ordered = examples if seed is None else training.shuffled(examples, len(x), seed, epoch)
        return ordered.batch(32)

    training.fit_resumable(model, str(folder), "fit", keep_best, epochs, epoch_data,
                           dataset(x, y), checkpoint_steps, verbose=0, extra_callbacks=callbacks)


def state(folder):
    return json.loads((folder / "fit.state.json").read_text())


def regression_data(rows=64):
    x = np.random.default_rng(0).normal(size=(rows, 4)).astype(np.float32)
    return x, x.sum(axis=1, keepdims=True)


class StopAfter(tf_keras.callbacks.Callback):
    """Raises after `batches` training batches: a run killed mid-epoch."""

    def __init__(self, batches):
        super().__init__()
        self.batches, self.seen = batches, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.batches:
            raise KeyboardInterrupt("killed")


def test_non_finite_loss_stops_with_last_good_checkpoint(tmp_path):
    x = np.ones((32, 4), np.float32)
    y = np.ones((32, 1), np.float32)
    model = small_model()
    fit(model, tmp_path, 2, x, y, patience=3)
    assert state(tmp_path)["epoch"] == 2
    y_bad = np.full((32, 1), np.inf, np.float32)
    with pytest.raises(training.NonFiniteLossError, match="last good checkpoint"):
        fit(model, tmp_path, 4, x, y_bad, patience=3)
    # The checkpoint still describes the last good epoch, and it restores.
    assert state(tmp_path)["epoch"] == 2
    fit(small_model(), tmp_path, 2, x, y, patience=3)


def test_resume_continues_after_the_last_epoch_with_optimizer_moments(tmp_path):
    x, y = regression_data()
    model = small_model()
    fit(model, tmp_path, 2, x, y)
    resumed = small_model()
    training._create_slots(resumed.optimizer,  # pylint: disable=protected-access
                           resumed.trainable_variables)
    training._load_state(resumed, str(tmp_path), "fit",  # pylint: disable=protected-access
                         training.KeepBest(5, str(tmp_path / "unused.h5")))
    # Adam's moments and step come back, not only the weights.
    saved = [v.numpy() for v in model.optimizer.variables]
    assert len(saved) == 5  # iterations, m and v of kernel and bias
    assert np.abs(saved[1]).sum() > 0
    for variable, value in zip(resumed.optimizer.variables, saved, strict=True):
        np.testing.assert_allclose(variable.numpy(), value)
    fit(resumed, tmp_path, 4, x, y)  # a fresh model resumes from the checkpoint
    assert state(tmp_path)["epoch"] == 4
    assert state(tmp_path)["optimizer_step"] == 4 * 2  # 2 batches an epoch, across the resume


def test_train_function_is_traced_once_across_epochs(tmp_path):
    """The optimizer's slots exist before the first trace: a train function that creates
    variables is traced twice, and the tiny runs' time is mostly tracing."""
    x, y = regression_data()
    model = small_model()
    fit(model, tmp_path, 3, x, y)
    assert state(tmp_path)["epoch"] == 3
    assert model.train_function.experimental_get_tracing_count() == 1


def test_resume_mid_epoch_trains_the_remaining_batches(tmp_path):
    x, y = regression_data(rows=32 * 5)  # 5 batches an epoch
    with pytest.raises(KeyboardInterrupt):
        fit(small_model(), tmp_path, 3, x, y, checkpoint_steps=2, callbacks=[StopAfter(8)])
    # Killed at epoch 2, batch 3: the last checkpoint is epoch 2 after 2 batches.
    assert (state(tmp_path)["epoch"], state(tmp_path)["batches_done"]) == (1, 2)
    assert state(tmp_path)["name"] == "fit"
    assert state(tmp_path)["optimizer_step"] == 7
    fit(small_model(), tmp_path, 3, x, y, checkpoint_steps=2)
    assert state(tmp_path)["epoch"] == 3
    assert state(tmp_path)["optimizer_step"] == 15  # 3 whole epochs, no batch repeated
    assert len(glob.glob(str(tmp_path / "fit.ckpt-*.index"))) == 1  # older ones removed


def test_resume_mid_epoch_restores_the_teachers_adamw(tmp_path):
    """The teacher's optimizer (transformers' AdamWeightDecay, a legacy Keras optimizer)
    resumes with its step and moments, as the students' Adam does."""
    def adamw_model():
        optimizer, _ = transformers.create_optimizer(0.01, num_train_steps=15,
                                                     num_warmup_steps=1, weight_decay_rate=0.01)
        model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(1)])
        model.compile(optimizer, loss="mse")
        return model

    x, y = regression_data(rows=32 * 5)
    killed = adamw_model()
    with pytest.raises(KeyboardInterrupt):
        fit(killed, tmp_path, 3, x, y, checkpoint_steps=2, callbacks=[StopAfter(8)])
    assert state(tmp_path)["optimizer_step"] == 7
    resumed = adamw_model()
    training._create_slots(resumed.optimizer,  # pylint: disable=protected-access
                           resumed.trainable_variables)
    training._load_state(resumed, str(tmp_path), "fit",  # pylint: disable=protected-access
                         training.KeepBest(5, str(tmp_path / "unused.h5")))
    moments = resumed.optimizer.variables()[1:]
    assert resumed.optimizer.iterations.numpy() == 7 and len(moments) == 4
    assert all(np.abs(m.numpy()).sum() > 0 for m in moments)
    fit(adamw_model(), tmp_path, 3, x, y, checkpoint_steps=2)
    assert state(tmp_path)["optimizer_step"] == 15


def test_resumed_run_sees_the_batches_of_an_uninterrupted_one(tmp_path):
    """Each epoch's order is a function of (seed, epoch): a run killed mid-epoch and resumed
    ends with the weights of a run that was never interrupted."""
    x, y = regression_data(rows=32 * 5)
    tf_keras.utils.set_random_seed(0)
    straight = small_model()
    initial = straight.get_weights()
    fit(straight, tmp_path / "straight", 3, x, y, checkpoint_steps=2, seed=7)
    killed = small_model()
    killed.set_weights(initial)
    with pytest.raises(KeyboardInterrupt):
        fit(killed, tmp_path / "killed", 3, x, y, checkpoint_steps=2, seed=7,
            callbacks=[StopAfter(8)])
    resumed = small_model()
    fit(resumed, tmp_path / "killed", 3, x, y, checkpoint_steps=2, seed=7)
    for got, want in zip(resumed.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # Another seed orders the batches differently, so the weights differ.
    other = small_model()
    other.set_weights(initial)
    fit(other, tmp_path / "other", 3, x, y, checkpoint_steps=2, seed=8)
    assert not np.allclose(other.get_weights()[0], straight.get_weights()[0], atol=1e-7)


def test_resume_after_a_kill_while_a_checkpoint_was_written(tmp_path):
    x, y = regression_data()
    fit(small_model(), tmp_path, 1, x, y)
    # What SIGKILL during tf.train.Checkpoint.write leaves: the next prefix's temp directory
    # with a half-written file under a name the next write does not reuse, so TF keeps the
    # directory after that write.
    serial = state(tmp_path)["serial"]
    partial = tmp_path / f"fit.ckpt-{serial + 1}_temp"
    partial.mkdir()
    (partial / "part-00000-of-00001.data-00000-of-00001.tempstate123").write_bytes(b"cut off")
    fit(small_model(), tmp_path, 3, x, y)
    assert state(tmp_path)["epoch"] == 3
    assert sorted(p.name for p in tmp_path.glob("fit.ckpt-*")) == [
        f"fit.ckpt-{serial + 2}.data-00000-of-00001", f"fit.ckpt-{serial + 2}.index"]


def test_sigkill_mid_stage_then_resume_completes(tmp_path):
    # Short training: this test checks resuming, not quality; soft distillation has two
    # student stages (teacher_logits, labels), so the kill lands in the second.
    # Checkpoints every 3 batches: the kill lands mid-epoch.
    config = tiny_config(tmp_path, baseline=False, ft_epochs=2, distil_epochs=2, patience=2,
                         checkpoint_steps=3, strategy="default", distil_mode="soft")
    command = [sys.executable, "run_xtreme_distil.py", *script_flags(config), "--noexport"]
    log = open(tmp_path / "first.log", "w", encoding="utf-8")  # pylint: disable=consider-using-with
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    student = os.path.join(config.model_dir, "student")
    deadline = time.time() + 600
    # Kill once the labels stage has written a checkpoint: mid-stage, not between.
    while not os.path.exists(os.path.join(student, "labels.state.json")):
        assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    log.close()
    assert not os.path.exists(os.path.join(config.model_dir, "metrics.json"))
    for path in glob.glob(os.path.join(student, "*.state.json")):  # committed state is whole
        with open(path, encoding="utf-8") as f:
            assert json.load(f)["checkpoint"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "labels: resuming at epoch" in result.stderr
    assert "stage teacher_logits: done in an earlier run" in result.stderr
    with open(os.path.join(config.model_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    assert [s["name"] for s in metrics["stages"]] == [
        "teacher_fine_tuning", "teacher_outputs", "teacher_logits", "labels"]
    assert sorted(metrics["student"]["per_language"]) == ["xx", "yy", "zz"]
    assert not glob.glob(os.path.join(student, "*.state.json*"))
    assert not glob.glob(os.path.join(student, "*.tmp*"))  # nor temp files the kill left
    assert not os.path.exists(os.path.join(config.model_dir, "export"))  # --noexport


def test_length_grouped_batches_cover_every_example_once_cut_to_their_longest():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 33, size=300)
    mask = (np.arange(32)[None, :] < lengths[:, None]).astype(np.int32)
    ids = np.arange(300)[:, None] * mask  # each row holds its index at real positions
    arrays = ((ids, mask), mask.astype(np.float32), np.arange(300))

    def batches(epoch):
        return list(training.length_grouped(arrays, lengths, 8, seed=3, epoch=epoch, group=4)
                    .as_numpy_iterator())

    first = batches(0)
    seen = np.concatenate([index for _, _, index in first])
    assert sorted(seen.tolist()) == list(range(300))
    for (batch_ids, batch_mask), weights, index in first:
        width = batch_ids.shape[1]
        assert width % 8 == 0 or width == 32
        assert width - 8 < lengths[index].max() <= width  # cut after the longest, rounded up
        np.testing.assert_array_equal(batch_mask, mask[index, :width])
        assert weights.shape == batch_mask.shape and (batch_ids[:, 0] == index).all()
    repeated = batches(0)
    assert all((a[2] == b[2]).all() for a, b in zip(first, repeated))  # a function of the epoch
    assert any((a[2] != b[2]).any() for a, b in zip(first, batches(1)))
