"""Small training utilities shared by teacher fine-tuning and the distillation stages."""

import math

import tf_keras
from absl import logging


class KeepBest(tf_keras.callbacks.Callback):
    """Early stopping on a monitored value that restores the best epoch's weights at the end.

    Monitors `logs[monitor]` (lower is better), or `score_fn()` (higher is better) when given.
    A non-finite value stops training at once, keeping the best weights so far.
    """

    def __init__(self, patience, monitor="val_loss", score_fn=None):
        super().__init__()
        self.patience, self.monitor, self.score_fn = patience, monitor, score_fn
        self.best, self.best_weights, self.wait = None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        value = self.score_fn() if self.score_fn else logs[self.monitor]
        if self.score_fn:
            logs["dev_f1"] = value
            logging.info("epoch %d: dev F1 %.4f", epoch + 1, value)
        if not math.isfinite(value):
            logging.error("epoch %d: %s is %s; stopping with the best weights so far.",
                          epoch + 1, self.monitor, value)
            self.model.stop_training = True
            return
        sign = 1 if self.score_fn else -1
        if self.best is None or sign * value > sign * self.best:
            self.best, self.best_weights, self.wait = value, self.model.get_weights(), 0
        else:
            self.wait += 1
            self.model.stop_training = self.wait >= self.patience

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
