"""Resumable Keras training shared by teacher fine-tuning and the distillation stages.

`fit_resumable` writes, after every epoch and every `checkpoint_steps` batches, a checkpoint of
the model and its optimizer (`<name>.ckpt-<n>.*`) and then the state naming it with the epoch,
the batch and the early-stopping state (`<name>.state.json`, by rename), so a run killed at any
moment resumes from the last checkpoint with the optimizer's moments and step count.
"""

import dataclasses
import glob
import hashlib
import json
import math
import os
import shutil
import time

import numpy as np
import tensorflow as tf
import tf_keras
from absl import logging


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def _temp_path(path):
    """Where an atomic write of `path` goes first: `a.b.h5` -> `a.b.tmp.h5`."""
    root, extension = os.path.splitext(path)
    return root + ".tmp" + extension


def save_weights_atomically(model, path):
    tmp = _temp_path(path)
    model.save_weights(tmp)
    os.replace(tmp, path)


def shuffled(dataset, size, seed, epoch):
    """`dataset` shuffled in an order that depends on (seed, epoch) alone."""
    return dataset.shuffle(size, seed=seed * 100003 + epoch, reshuffle_each_iteration=False)


def length_grouped(arrays, lengths, batch_size, seed, epoch, group=64):
    """Batches of sentences of similar length, each cut after its longest (rounded up to 8).

    arrays: a structure of numpy arrays with the examples on axis 0; those with a position
    axis (axis 1 as long as the widest example) are cut. Order, a function of (seed, epoch)
    alone: a permutation, sorted by length within windows of `group` batches, the batches
    shuffled. A transformer's cost grows with the length it reads and most sentences are far
    shorter than seq_len (HF Trainer's group_by_length does the same).
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * group):
        window = order[start:start + batch_size * group]
        window = window[np.argsort(-lengths[window], kind="stable")]
        batches += [window[i:i + batch_size] for i in range(0, len(window), batch_size)]
    seq_len = max(a.shape[1] if a.ndim > 1 else 0 for a in tf.nest.flatten(arrays))

    def has_positions(array):
        return array.ndim > 1 and array.shape[1] == seq_len

    def cut(array, rows, width):
        return array[rows, :width] if has_positions(array) else array[rows]

    batch_order = rng.permutation(len(batches))

    def generate():
        for index in batch_order:
            rows = batches[index]
            width = cut_width(lengths[rows], seq_len)
            yield tf.nest.map_structure(lambda a, r=rows, w=width: cut(a, r, w), arrays)

    signature = tf.nest.map_structure(
        lambda a: tf.TensorSpec((None,) * a.ndim if has_positions(a) else (None,) + a.shape[1:],
                                tf.as_dtype(a.dtype)), arrays)
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def cut_width(lengths, seq_len):
    """Where a batch with these real lengths is cut: after its longest, rounded up to a multiple
    of 8 (a few traced shapes), at most seq_len."""
    return min(seq_len, -(-int(lengths.max()) // 8) * 8)


class ProgressLog:
    """A log line about every `every_seconds` of long work: `name: done of total unit (n%),
    ~m min left at most` (the estimate assumes the rest goes as fast as what is done)."""

    def __init__(self, name, unit, total, every_seconds=60):
        self.name, self.unit, self.total, self.every = name, unit, total, every_seconds
        self.started = self.last = time.monotonic()

    def update(self, done):
        now = time.monotonic()
        if now - self.last < self.every or done >= self.total:
            return
        self.last = now
        left = (now - self.started) / done * (self.total - done)
        logging.info("%s: %s of %s %s (%d%%), ~%d min left at most", self.name, f"{done:,}",
                     f"{self.total:,}", self.unit, 100 * done // self.total,
                     math.ceil(left / 60))

    def rate(self, done):
        """Units a second so far."""
        return done / max(time.monotonic() - self.started, 1e-9)


def weights_fingerprint(model):
    """A short hash of the model's weights: equal on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]


def write_json_atomically(path, value):
    tmp = _temp_path(path)
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, ensure_ascii=False)
    os.replace(tmp, path)


class KeepBest(tf_keras.callbacks.Callback):
    """Early stopping that keeps the best epoch's weights on disk (fit_resumable loads them).

    Monitors `logs[monitor]` (lower is better, or higher with higher_is_better), or
    `score_fn()` (higher is better) when given. A non-finite loss stops training at once.
    """

    def __init__(self, patience, best_path, monitor="val_loss", score_fn=None,
                 higher_is_better=False):
        super().__init__()
        self.patience, self.best_path = patience, best_path
        self.monitor, self.score_fn = monitor, score_fn
        self.higher_is_better = higher_is_better or score_fn is not None
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
            logs["dev_score"] = value  # callbacks after this one (progress lines) show it
        sign = 1 if self.higher_is_better else -1
        if self.best is None or sign * value > sign * self.best:
            self.best, self.wait = value, 0
            save_weights_atomically(self.model, self.best_path)
        else:
            self.wait += 1
            self.model.stop_training = self.wait >= self.patience


class Checkpointer(tf_keras.callbacks.Callback):
    """Every `every_steps` batches and after each epoch: the model and its optimizer (moments and
    step count) under a new checkpoint prefix, then the state JSON naming it, written by rename.

    The state is the commit: a run killed while a checkpoint is written finds the previous one.
    """

    def __init__(self, keep_best, folder, name, every_steps, state=None):
        super().__init__()
        self.keep_best, self.folder, self.name = keep_best, folder, name
        self.every_steps = every_steps
        self.serial = state["serial"] if state else 0
        self.batches_done = state["batches_done"] if state else 0  # in the epoch being resumed
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        done = self.batches_done + batch + 1
        if not self.every_steps or done % self.every_steps:
            return
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.keep_best.non_finite = f"loss = {loss} at epoch {self.epoch + 1}, batch {done}"
            self.model.stop_training = True
            return
        self._save(epoch=self.epoch, batches_done=done, stopped=False)
        logging.info("%s: epoch %d, batch %d, loss %.4f: checkpoint written", self.name,
                     self.epoch + 1, done, loss if loss is not None else float("nan"))

    def on_epoch_end(self, epoch, logs=None):
        self.batches_done = 0
        if self.keep_best.non_finite:
            return  # keep the last good checkpoint
        self._save(epoch=epoch + 1, batches_done=0, stopped=bool(self.model.stop_training))

    def _save(self, epoch, batches_done, stopped):
        self.serial += 1
        prefix = tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer).write(
            os.path.join(self.folder, f"{self.name}.ckpt-{self.serial}"))
        write_json_atomically(_state_path(self.folder, self.name), {
            "name": self.name, "checkpoint": os.path.basename(prefix), "serial": self.serial,
            "epoch": epoch, "batches_done": batches_done, "best": self.keep_best.best,
            "wait": self.keep_best.wait, "stopped": stopped,
            "optimizer_step": int(self.model.optimizer.iterations.numpy())})
        _remove_checkpoint_files(self.folder, self.name, keep=os.path.basename(prefix))


@dataclasses.dataclass
class WorkerShard:
    """One epoch of a multi-worker run in which each worker reads only its own share of the
    data: `dataset` has `steps` elements, as many on every worker (so none waits for another in
    a collective), each this worker's part of a step (per_replica_batch rows per local replica).
    Keras gets it per replica as it is: no auto-sharding, no re-batching."""
    dataset: tf.data.Dataset
    steps: int
    per_replica_batch: int
    strategy: tf.distribute.Strategy

    def fit_input(self, steps_done):
        """(what model.fit reads, steps) for the rest of the epoch after `steps_done` steps."""
        rest = self.dataset.skip(steps_done).unbatch().batch(self.per_replica_batch)
        return (self.strategy.distribute_datasets_from_function(lambda _: rest),
                self.steps - steps_done)


def fit_resumable(model, folder, name, keep_best, epochs, train_data, validation_data,
                  checkpoint_steps=0, verbose=0, extra_callbacks=()):
    """model.fit with early stopping and checkpoints (every epoch, and every `checkpoint_steps`
    batches when > 0), resuming from the last one under `name`.

    train_data(epoch) gives the dataset of one epoch (or a WorkerShard), its order a function of
    the seed and the epoch alone, so a run resumed mid-epoch trains on exactly the batches the
    killed run had left, and later epochs see what an uninterrupted run would.
    """
    with model.distribute_strategy.scope():
        # Before the first trace: a train function that creates variables is traced twice.
        _create_slots(model.optimizer, model.trainable_variables)
    state = _load_state(model, folder, name, keep_best)
    checkpointer = Checkpointer(keep_best, folder, name, checkpoint_steps, state)
    callbacks = [keep_best, checkpointer, *extra_callbacks]
    epoch = state["epoch"] if state else 0
    batches_done = state["batches_done"] if state else 0
    if state and state["stopped"]:
        epoch = epochs
    while epoch < epochs and not keep_best.non_finite:
        data, steps = train_data(epoch), None
        if isinstance(data, WorkerShard):
            data, steps = data.fit_input(batches_done)
        elif batches_done:
            data = data.skip(batches_done)  # finish the interrupted epoch
        for callback in extra_callbacks:
            if hasattr(callback, "resume_at"):  # console.EpochProgress
                callback.resume_at(batches_done)
        batches_done = 0
        # One fit call per epoch: each epoch gets its own dataset.
        model.fit(data, epochs=epoch + 1, initial_epoch=epoch, steps_per_epoch=steps,
                  validation_data=validation_data, callbacks=callbacks, verbose=verbose)
        epoch += 1
        if model.stop_training:
            break
    if keep_best.best is not None:
        model.load_weights(keep_best.best_path)
    if keep_best.non_finite:
        raise NonFiniteLossError(
            f"{name}: {keep_best.non_finite}. Training stopped; the last good checkpoint "
            f"({_state_path(folder, name)}) is intact. Lower the learning rate (or check the "
            "data) and rerun with the same --model_dir to resume.")


def _state_path(folder, name):
    return os.path.join(folder, f"{name}.state.json")


def _load_state(model, folder, name, keep_best):
    """Restores model, optimizer and early-stopping state from the last checkpoint, if any.
    The optimizer's slots must exist (fit_resumable creates them) for the moments to load."""
    path = _state_path(folder, name)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    tf.train.Checkpoint(model=model, optimizer=model.optimizer).read(
        os.path.join(folder, state["checkpoint"])).assert_existing_objects_matched()
    keep_best.best, keep_best.wait = state["best"], state["wait"]
    logging.info("%s: resuming at epoch %d, batch %d, from %s", name, state["epoch"] + 1,
                 state["batches_done"], state["checkpoint"])
    return state


def _create_slots(optimizer, variables):
    """Creates the optimizer's slots (Adam's moments), so that a checkpoint restores them and
    the first fit traces its train function once. The teacher's AdamW
    (transformers.create_optimizer) is a legacy Keras optimizer, which has no build()."""
    if isinstance(optimizer, tf_keras.optimizers.legacy.Optimizer):
        optimizer._create_all_weights(variables)  # pylint: disable=protected-access
    else:
        optimizer.build(variables)


def _remove_checkpoint_files(folder, name, keep=None):
    """Removes the checkpoints under `name` but `keep`, with the `<prefix>_temp` directories a
    run killed while writing one leaves behind."""
    for path in glob.glob(os.path.join(folder, f"{name}.ckpt-*")):
        if keep is not None and os.path.basename(path).startswith(keep + "."):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)


def remove_checkpoints(folder, name):
    """Drops the per-epoch files of a finished fit, with temp files a killed run left."""
    for path in (_state_path(folder, name), best_path(folder, name)):
        for leftover in (path, _temp_path(path)):
            if os.path.exists(leftover):
                os.remove(leftover)
    _remove_checkpoint_files(folder, name)


def best_path(folder, name):
    return os.path.join(folder, f"{name}.best.h5")
