"""Resumable Keras training shared by teacher fine-tuning and the distillation stages.

`fit_resumable` writes, after every epoch, the model's weights and the early-stopping state
(`<name>.state.json`, written last, by rename), so a run killed at any moment resumes after the
last finished epoch. The optimizer's moments restart on resume; its step count does not.
"""

import json
import math
import os

import tf_keras
from absl import logging


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def save_weights_atomically(model, path):
    tmp = path[:-len(".h5")] + ".tmp.h5"
    model.save_weights(tmp)
    os.replace(tmp, path)


def write_json_atomically(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, ensure_ascii=False)
    os.replace(tmp, path)


class KeepBest(tf_keras.callbacks.Callback):
    """Early stopping that restores the best epoch's weights (kept on disk) at the end.

    Monitors `logs[monitor]` (lower is better), or `score_fn()` (higher is better) when given.
    A non-finite loss stops training at once.
    """

    def __init__(self, patience, best_path, monitor="val_loss", score_fn=None):
        super().__init__()
        self.patience, self.best_path = patience, best_path
        self.monitor, self.score_fn = monitor, score_fn
        self.best, self.wait, self.non_finite = None, 0, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        for key in ("loss", self.monitor):
            if key in logs and not math.isfinite(logs[key]):
                self.non_finite = f"{key} = {logs[key]} at epoch {epoch + 1}"
                self.model.stop_training = True
                return
        value = self.score_fn() if self.score_fn else logs[self.monitor]
        if self.score_fn:
            logs["dev_f1"] = value
            logging.info("epoch %d: dev F1 %.4f", epoch + 1, value)
        sign = 1 if self.score_fn else -1
        if self.best is None or sign * value > sign * self.best:
            self.best, self.wait = value, 0
            save_weights_atomically(self.model, self.best_path)
        else:
            self.wait += 1
            self.model.stop_training = self.wait >= self.patience

    def on_train_end(self, logs=None):
        if self.best is not None:
            self.model.load_weights(self.best_path)


class EpochCheckpoint(tf_keras.callbacks.Callback):
    """After each epoch: last weights, then the state that says which epoch they belong to."""

    def __init__(self, keep_best, last_path, state_path):
        super().__init__()
        self.keep_best, self.last_path, self.state_path = keep_best, last_path, state_path

    def on_epoch_end(self, epoch, logs=None):
        if self.keep_best.non_finite:
            return  # keep the last good checkpoint
        save_weights_atomically(self.model, self.last_path)
        write_json_atomically(self.state_path, {
            "epoch": epoch, "best": self.keep_best.best, "wait": self.keep_best.wait,
            "stopped": bool(self.model.stop_training),
            "optimizer_step": int(self.model.optimizer.iterations.numpy())})


def fit_resumable(model, folder, name, keep_best, epochs, **fit_kwargs):
    """model.fit with early stopping, resuming after the last epoch checkpointed under `name`."""
    state_path = os.path.join(folder, f"{name}.state.json")
    last_path = os.path.join(folder, f"{name}.last.h5")
    initial_epoch = 0
    if os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        model.load_weights(last_path)
        keep_best.best, keep_best.wait = state["best"], state["wait"]
        model.optimizer.iterations.assign(state["optimizer_step"])  # learning-rate schedules
        initial_epoch = epochs if state["stopped"] else state["epoch"] + 1
        logging.info("%s: resuming after epoch %d from %s", name, state["epoch"] + 1, last_path)
    if initial_epoch < epochs:
        model.fit(epochs=epochs, initial_epoch=initial_epoch,
                  callbacks=[keep_best, EpochCheckpoint(keep_best, last_path, state_path)],
                  **fit_kwargs)
    elif keep_best.best is not None:
        model.load_weights(keep_best.best_path)
    if keep_best.non_finite:
        raise NonFiniteLossError(
            f"{name}: {keep_best.non_finite}. Training stopped; the last good checkpoint "
            f"{last_path} is intact. Lower the learning rate (or check the data) and rerun "
            "with the same --model_dir to resume.")


def remove_checkpoints(folder, name):
    """Drops the per-epoch files of a finished fit."""
    for suffix in (".state.json", ".last.h5", ".best.h5"):
        path = os.path.join(folder, name + suffix)
        if os.path.exists(path):
            os.remove(path)


def best_path(folder, name):
    return os.path.join(folder, f"{name}.best.h5")
