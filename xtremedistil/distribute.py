"""tf.distribute strategies by name, and what each worker of a multi-worker run may write."""

import contextlib
import functools
import json
import os
import shutil
import socket

import numpy as np
import tensorflow as tf
from absl import logging

STRATEGIES = ("mirrored", "multi_worker", "default")


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices; must run before TensorFlow starts."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if num_devices > 1:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)


@functools.lru_cache(maxsize=None)
def make_strategy(name):
    """'mirrored': all GPUs, else all logical CPUs, of this machine; 'multi_worker': the same on
    every worker of the cluster in the TF_CONFIG environment variable; 'default': none.

    One strategy per name and process: two strategies over the same devices would reuse the
    same collective instance keys, and TensorFlow caches a key's shape (a second run in one
    process then fails with "Shape mismatch in the collective instance").
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = (tf.config.list_logical_devices("GPU")
                   or tf.config.list_logical_devices("CPU"))
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                             "(the cluster and this worker's task); see README.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--strategy={name}: expected one of {', '.join(STRATEGIES)}.")


def _tf_config():
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def task():
    """(task type, index) of this process in TF_CONFIG; ('chief', 0) without a cluster."""
    config = _tf_config()
    if not config.get("task"):
        return "chief", 0
    return config["task"]["type"], int(config["task"].get("index", 0))


def is_chief():
    """The chief writes the outputs: task 'chief', else worker 0 of a cluster without one."""
    task_type, index = task()
    if task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and "chief" not in _tf_config().get("cluster", {})


def worker_share(strategy):
    """(k, N): this process is worker k of the N that run `strategy` (the chief first, then the
    workers in TF_CONFIG order); (0, 1) on one machine."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 0, 1
    cluster = _tf_config().get("cluster", {})
    task_type, index = task()
    chiefs = len(cluster.get("chief", ()))
    return (0 if task_type == "chief" else chiefs + index,
            chiefs + len(cluster.get("worker", ())))


def sum_over_workers(strategy, array):
    """The sum of `array` (float64) over the workers of a multi-worker run; `array` itself on
    one machine. Every worker must call it (a collective), with an array of the same shape."""
    array = np.asarray(array, np.float64)
    if worker_share(strategy)[1] == 1:
        return array
    local_replicas = len(strategy.extended.worker_devices)
    total = tf.function(lambda: strategy.reduce(
        tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(array)), axis=None))()
    return total.numpy() / local_replicas  # every local replica added this worker's array


def free_ports(count):
    """`count` TCP ports free on 127.0.0.1 now: a cluster of workers on this machine (tests,
    benchmarks/multi_worker.py)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def barrier(strategy):
    """Blocks until every worker gets here (a collective all-reduce of one number)."""
    tf.function(lambda: strategy.reduce(
        tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None))()


@contextlib.contextmanager
def worker_model_dir(model_dir, strategy):
    """The folder this worker writes to: model_dir for the chief; for the other workers a
    private snapshot (hard links) of the chief's model_dir, deleted at the end.

    Every worker computes the same things in lock-step, so each needs the same files to read
    (earlier stages, checkpoints to resume from), but only the chief may write the outputs.
    The snapshot is taken before the chief writes anything in this run (the barrier), so all
    workers resume from the same point. It leaves out teacher_outputs/: each worker writes
    its own share of those to model_dir itself (worker_share), so they survive a restart.
    Resuming therefore needs model_dir on a file system every worker sees; a fresh run does not.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield model_dir
        return
    if is_chief():
        barrier(strategy)
        yield model_dir
        return
    scratch = "%s.%s%d" % (os.path.normpath(model_dir), *task())
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    if os.path.isdir(model_dir):
        shutil.copytree(model_dir, scratch, copy_function=_link_or_copy,
                        ignore=shutil.ignore_patterns("*.tmp*", "teacher_outputs"))
    os.makedirs(scratch, exist_ok=True)
    logging.info("worker %s %d: writing to the private folder %s", *task(), scratch)
    barrier(strategy)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _link_or_copy(source, target):
    # Weights and teacher outputs (large, always written as a temp file + rename, so the link
    # keeps the snapshot's content when the chief replaces the file) are hard-linked; small
    # files, which tokenizers and configs may rewrite in place, are copied.
    if os.path.getsize(source) >= 2**20:
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another file system: copy
    shutil.copy2(source, target)
