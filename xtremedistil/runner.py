"""Runs a recipe's stages on a student, resumably.

Every stage trains its layer groups on its objective as its `Plan` says (data, epochs,
learning rate, what early stopping watches: the validation loss or accuracy), writes its
weights and a progress record, and is skipped when a rerun with the same model_dir finds that
record (resume). After each stage marked score_on_dev the student is scored on dev; the best
one is kept as best.h5.
"""

import dataclasses
import json
import os
import time

import tensorflow as tf
import tf_keras
from absl import logging

from xtremedistil import students
from xtremedistil import training

BEST_WEIGHTS = "best.h5"  # legacy HDF5: layer weights only, no optimizer state


@dataclasses.dataclass
class Plan:
    """How one stage trains."""
    train: callable  # epoch -> dataset of (student ids, target, weights): Keras' x, y, weights
    validation: object  # dataset of the same
    epochs: int
    learning_rate: object  # a float, or a tf_keras LearningRateSchedule of the optimizer's step
    monitor: str = "loss"  # early stopping on the validation 'loss' or (labels) 'accuracy'
    steps_per_epoch: int = 0  # batches an epoch of `train` has (0: unknown)


@dataclasses.dataclass
class Settings:
    folder: str  # where stage weights and progress.json live
    strategy: tf.distribute.Strategy
    plan: callable  # stage -> Plan
    patience: int
    checkpoint_steps: int  # also checkpoint every this many batches (0: after epochs only)
    dev_score: callable  # student model -> dev score (higher is better), picks the best
    announce: callable = logging.info  # (message) -> None: one line per stage
    callbacks: callable = lambda stage, plan: []  # -> extra Keras callbacks (progress output)


class Progress:
    """Finished stages, persisted as JSON after each one (written atomically)."""

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
        scored = [r for r in self.records if r.get("dev_score") is not None]
        return max(scored, key=lambda r: r["dev_score"]) if scored else None


def run_stage(stage, student, model, settings, progress):
    """Trains stage.trainable of `model` on stage.objective as settings.plan(stage) says;
    returns the stage's record."""
    weights_path = os.path.join(settings.folder, f"{stage.name}.h5")
    record = progress.get(stage.name)
    if record is not None:
        settings.announce(f"stage {stage.name}: done in an earlier run")
        model.load_weights(weights_path)
        training.remove_checkpoints(settings.folder, stage.name)  # if killed before it was
        return record
    settings.announce(f"stage {stage.name}: training {', '.join(stage.trainable)} on "
                      f"{stage.description or stage.objective.target}")
    started = time.time()
    plan = settings.plan(stage)
    if plan.monitor not in ("loss", "accuracy"):
        raise ValueError(f"stage {stage.name}: monitor {plan.monitor!r}, expected loss or "
                         "accuracy.")
    accuracy = plan.monitor == "accuracy"
    with settings.strategy.scope():
        student.set_trainable(model, stage.trainable)
        fit_model = students.output_model(model, stage.objective.student_output)
        # Accuracy of the labels where the weights count (tagging: first pieces of words).
        metrics = [tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")] if accuracy else []
        fit_model.compile(tf_keras.optimizers.Adam(plan.learning_rate),
                          loss=stage.objective.loss, weighted_metrics=metrics)
    keep_best = training.KeepBest(settings.patience,
                                  training.best_path(settings.folder, stage.name),
                                  monitor=f"val_{plan.monitor}", higher_is_better=accuracy)
    training.fit_resumable(fit_model, settings.folder, stage.name, keep_best, plan.epochs,
                           plan.train, plan.validation, settings.checkpoint_steps,
                           extra_callbacks=settings.callbacks(stage, plan))
    student.set_trainable(model, student.groups_top_down())
    training.save_weights_atomically(model, weights_path)
    best = float(keep_best.best) if keep_best.best is not None else None
    record = {"name": stage.name, "seconds": round(time.time() - started, 2),
              "best_val_loss": None if accuracy else best}
    if accuracy:
        record["best_val_accuracy"] = best
    if stage.score_on_dev:
        record["dev_score"] = float(settings.dev_score(model))
        logging.info("stage %s: dev score %.4f", stage.name, record["dev_score"])
        best = progress.best()
        if best is None or record["dev_score"] > best["dev_score"]:
            training.save_weights_atomically(model, os.path.join(settings.folder, BEST_WEIGHTS))
    progress.add(record)
    training.remove_checkpoints(settings.folder, stage.name)
    return record


def run_stages(stages, student, model, settings):
    """Runs every stage in order; loads the best-on-dev weights; returns (records, best)."""
    os.makedirs(settings.folder, exist_ok=True)
    progress = Progress(settings.folder)
    records = [run_stage(stage, student, model, settings, progress) for stage in stages]
    best = progress.best()
    if best is not None:
        model.load_weights(os.path.join(settings.folder, BEST_WEIGHTS))
    return records, best
