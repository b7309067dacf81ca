"""The three distillation stages, each an explicit function over named sub-stages.

1. distil_representation: on the transfer set, the student's projection learns the teacher
   layer's hidden states (masked MSE).
2. distil_logits: on the transfer set, the student's logits learn the teacher's logits, first
   with all but the output layer frozen, then unfreezing one layer group at a time from the top.
3. train_on_labels: on the labeled train set, masked cross-entropy, with the same unfreezing.

Every sub-stage stops early on its validation loss, writes its weights and a progress record,
and is skipped when a rerun with the same model_dir finds that record (resume). After each
sub-stage of stages 2 and 3 the student is scored on dev; the best one is kept.
"""

import dataclasses
import json
import os
import time

import tensorflow as tf
import tf_keras
from absl import logging

from xtremedistil import losses
from xtremedistil import student as student_lib
from xtremedistil import training

BEST_WEIGHTS = "best.h5"  # legacy HDF5: layer weights only, no optimizer state


@dataclasses.dataclass
class StageSettings:
    folder: str  # where sub-stage weights and progress.json live
    strategy: tf.distribute.Strategy
    batch_size: int  # global batch: per-replica batch times replicas
    epochs: int
    patience: int
    learning_rate: float
    checkpoint_steps: int  # also checkpoint every this many batches (0: after epochs only)
    dev_f1: callable  # student -> dev F1, for choosing the best student


class Progress:
    """Finished sub-stages, persisted as JSON after each one (written atomically)."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "progress.json")
        self.records = []
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self.records = json.load(f)

    def get(self, name):
        return next((r for r in self.records if r["name"] == name), None)

    def add(self, record):
        self.records.append(record)
        training.write_json_atomically(self.path, self.records)

    def best(self):
        scored = [r for r in self.records if r.get("dev_f1") is not None]
        return max(scored, key=lambda r: r["dev_f1"]) if scored else None


def run_sub_stage(name, student, fit_model, trainable, loss, train_data, val_data, settings,
                  progress, score_on_dev):
    """Trains `trainable` layer groups of `fit_model` (which shares the student's layers)."""
    weights_path = os.path.join(settings.folder, f"{name}.h5")
    record = progress.get(name)
    if record is not None:
        logging.info("stage %s: done in an earlier run, loading its weights.", name)
        student.load_weights(weights_path)
        training.remove_checkpoints(settings.folder, name)  # if killed before it was
        return record
    logging.info("stage %s: training %s", name, ", ".join(trainable))
    started = time.time()
    with settings.strategy.scope():
        student_lib.set_trainable(student, trainable)
        fit_model.compile(tf_keras.optimizers.Adam(settings.learning_rate), loss=loss,
                          weighted_metrics=[])
    keep_best = training.KeepBest(settings.patience, training.best_path(settings.folder, name))
    # Datasets yield (ids, target, mask): Keras' (x, y, sample_weight).
    training.fit_resumable(fit_model, settings.folder, name, keep_best, settings.epochs,
                           train_data, val_data, settings.checkpoint_steps)
    student_lib.set_trainable(student, student_lib.LAYERS_TOP_DOWN)
    training.save_weights_atomically(student, weights_path)
    record = {"name": name, "seconds": round(time.time() - started, 2),
              "best_val_loss": float(keep_best.best) if keep_best.best is not None else None}
    if score_on_dev:
        record["dev_f1"] = float(settings.dev_f1(student))
        logging.info("stage %s: dev F1 %.4f", name, record["dev_f1"])
        best = progress.best()
        if best is None or record["dev_f1"] > best["dev_f1"]:
            training.save_weights_atomically(student, os.path.join(settings.folder, BEST_WEIGHTS))
    progress.add(record)
    training.remove_checkpoints(settings.folder, name)
    return record


def _gradual_unfreezing(stage, student, loss, train_data, val_data, settings, progress):
    records = []
    for depth in range(1, len(student_lib.LAYERS_TOP_DOWN) + 1):
        trainable = student_lib.LAYERS_TOP_DOWN[:depth]
        records.append(run_sub_stage(f"{stage}_{depth}", student, student, trainable, loss,
                                     train_data, val_data, settings, progress,
                                     score_on_dev=True))
    return records


def distil_representation(student, transfer_hidden, val_hidden, settings, progress):
    """Stage 1: projection [B, T, H] learns the teacher layer's hidden states on transfer data."""
    with settings.strategy.scope():
        fit_model = student_lib.representation_model(student)
    trainable = student_lib.LAYERS_TOP_DOWN[1:]  # everything below the output layer
    return [run_sub_stage("representation", student, fit_model, trainable, losses.hidden_mse,
                          transfer_hidden, val_hidden, settings, progress, score_on_dev=False)]


def distil_logits(student, transfer_logits, val_logits, settings, progress, loss):
    """Stage 2: the student's logits learn the teacher's, with gradual unfreezing."""
    return _gradual_unfreezing("logits", student, loss, transfer_logits, val_logits, settings,
                               progress)


def train_on_labels(student, train_labels, dev_labels, settings, progress):
    """Stage 3: hard-label cross-entropy on the labeled set, with gradual unfreezing."""
    return _gradual_unfreezing("labels", student, losses.label_cross_entropy, train_labels,
                               dev_labels, settings, progress)


def train_baseline(student, train_labels, dev_labels, settings, progress):
    """The no-distillation baseline: all layers at once on the labeled set (one sub-stage)."""
    return [run_sub_stage("baseline_labels", student, student, student_lib.LAYERS_TOP_DOWN,
                          losses.label_cross_entropy, train_labels, dev_labels, settings,
                          progress, score_on_dev=True)]


def load_best(student, settings, progress):
    """Loads the sub-stage weights with the best dev F1; returns its record."""
    best = progress.best()
    if best is not None:
        student.load_weights(os.path.join(settings.folder, BEST_WEIGHTS))
    return best
