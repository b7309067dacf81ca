"""Learning-rate schedules: the student stages' (--lr_schedule) and the teacher's with
--teacher_recipe=paper.

Every schedule is a function of the optimizer's step count, which checkpoints hold, so a fit
resumed mid-stage continues its schedule where the killed one was. The original code changed
its learning rates once per epoch (a Keras callback); `PerEpoch` does the same from the step:
epoch = step // steps_per_epoch (every epoch has exactly steps_per_epoch batches).
"""

import math

import tensorflow as tf
import tf_keras

LOWEST = 1e-8  # where the original code's cosine ends


class PerEpoch(tf_keras.optimizers.schedules.LearningRateSchedule):
    """rates[epoch] during each epoch (the last rate after the last epoch)."""

    def __init__(self, rates, steps_per_epoch):
        super().__init__()
        self.rates = [float(r) for r in rates]
        self.steps_per_epoch = max(1, int(steps_per_epoch))

    def __call__(self, step):
        epoch = tf.minimum(tf.cast(step, tf.int64) // self.steps_per_epoch, len(self.rates) - 1)
        return tf.gather(tf.constant(self.rates, tf.float32), epoch)

    def get_config(self):
        return {"rates": self.rates, "steps_per_epoch": self.steps_per_epoch}


def sgdr_rate(epoch, high, low=LOWEST, period=50, period_growth=2, high_decay=0.97):
    """The original code's rate at `epoch` (0-based): cosine annealing with warm restarts
    (SGDR). A cycle of period P runs P + 1 epochs from `high` down to `low`; the next one has
    period 2P and starts at 0.97 x the previous peak."""
    position = epoch
    while position > period:
        position -= period + 1
        period *= period_growth
        high *= high_decay
    return low + 0.5 * (high - low) * (1 + math.cos(math.pi * position / period))


def warmup_exponential_rate(epoch, peak, epochs, warmup=10, end_ratio=0.01):
    """The original code's teacher rate at `epoch` (0-based): linear warm-up to `peak` over
    `warmup` epochs, then exponential decay reaching peak x end_ratio one epoch after
    `epochs` (1e-5 -> 1e-7 in the original)."""
    if epoch < warmup:
        return peak * (epoch + 1) / warmup
    return peak * math.exp(math.log(end_ratio) * (epoch - warmup + 1) / (epochs - warmup + 1))


def student(name, learning_rate, epochs, steps_per_epoch):
    """The learning rate (a float or a schedule) of one student stage (--lr_schedule)."""
    if name == "constant":
        return learning_rate
    if name == "cosine":
        return tf_keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(1, epochs * steps_per_epoch),
            alpha=LOWEST / learning_rate)
    if name == "sgdr":
        return PerEpoch([sgdr_rate(e, learning_rate) for e in range(epochs)], steps_per_epoch)
    raise ValueError(f"--lr_schedule={name}: expected constant, cosine or sgdr.")


def paper_teacher(peak, epochs, steps_per_epoch):
    """The teacher's schedule with --teacher_recipe=paper."""
    return PerEpoch([warmup_exponential_rate(e, peak, epochs) for e in range(epochs)],
                    steps_per_epoch)
