"""Teacher outputs on the transfer set, computed once per chunk and stored on disk, by name.

The transfer file is streamed: each chunk of `chunk_size` examples is encoded, run through the
teacher and written, so memory does not grow with the transfer set. Every distillation stage
reads the chunks back as a tf.data pipeline; the teacher never runs twice. One file per chunk:
  input_ids [n, T] int32 (the teacher pieces the student reads: Encoded.student_pieces),
  mask_<name> [n, ...] int8 (the task's masks), out_<name> [n, ...] float16 (the teacher
  outputs the recipe needs), truncated.
Every `val_every`-th example (at most `val_max`) goes to the validation chunk instead.
`stamp.json` records the teacher's weights fingerprint and what was stored: chunks written by
another teacher (or without an output now needed) are recomputed, never reused.
"""

import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from xtremedistil import teacher as teacher_lib
from xtremedistil import training

STAMP = "stamp.json"


def split_stream(examples, chunk_size, val_every=10, val_max=2000):
    """Yields ('train', index, chunk) as chunks fill, then ('val', 0, chunk)."""
    train, val, index = [], [], 0
    for position, example in enumerate(examples):
        if position % val_every == 0 and len(val) < val_max:
            val.append(example)
            continue
        train.append(example)
        if len(train) == chunk_size:
            yield "train", index, train
            train, index = [], index + 1
    if train:
        yield "train", index, train
    if val:
        yield "val", 0, val


def _write_chunk(path, examples, task, tokenizer, seq_len, distiller, batch_size):
    encoded = task.encode(examples, tokenizer, seq_len)
    outputs = teacher_lib.predict(distiller, encoded, batch_size, np.float16)
    arrays = {f"out_{name}": value for name, value in outputs.items()}
    arrays.update({f"mask_{name}": mask.astype(np.int8) for name, mask in encoded.masks.items()})
    tmp = path + ".tmp.npz"
    np.savez(tmp, input_ids=encoded.student_pieces, truncated=encoded.truncated, **arrays)
    os.replace(tmp, path)


def _covers(previous, stamp):
    """True when outputs stored under stamp `previous` serve `stamp`: the same teacher and
    settings, and every output `stamp` needs among the stored ones (a stage-wise run's hidden
    states and logits serve a run that distils the logits alone)."""
    same_settings = ({k: v for k, v in previous.items() if k != "outputs"}
                     == {k: v for k, v in stamp.items() if k != "outputs"})
    return same_settings and set(stamp.get("outputs", ())) <= set(previous.get("outputs", ()))


def _check_stamp(folder, stamp):
    """Removes stored chunks that another teacher (or other settings) wrote; writes the stamp."""
    path = os.path.join(folder, STAMP)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        if _covers(previous, stamp):
            return
        logging.warning("teacher outputs in %s were written by another teacher or with other "
                        "settings (%s, now %s): recomputing them.", folder, previous, stamp)
    for name in os.listdir(folder):
        if name.endswith(".npz"):
            os.remove(os.path.join(folder, name))
    training.write_json_atomically(path, stamp)


def store_outputs(examples, task, tokenizer, seq_len, distiller, folder, chunk_size, batch_size,
                  stamp, progress=None):
    """Writes the chunks not yet on disk; returns (train paths, val paths).

    stamp: what identifies the outputs (teacher fingerprint, layer, seq_len, output names).
    progress(split, index, count): called after each chunk written.
    """
    os.makedirs(folder, exist_ok=True)
    _check_stamp(folder, stamp)
    paths = {"train": [], "val": []}
    for split, index, chunk in split_stream(examples, chunk_size):
        path = os.path.join(folder, f"{split}_{index:05d}.npz")
        paths[split].append(path)
        if not os.path.exists(path):
            _write_chunk(path, chunk, task, tokenizer, seq_len, distiller, batch_size)
            if progress is not None:
                progress(split, index, len(chunk))
    if not paths["train"] or not paths["val"]:
        raise ValueError("The transfer set needs at least 2 sentences (--transfer_file).")
    return paths["train"], paths["val"]


def read_field(paths, field):
    """Yields one stored field chunk by chunk (e.g. 'input_ids' for the student vocabulary)."""
    for path in paths:
        with np.load(path) as chunk:
            yield chunk[field]


def count(paths):
    """The number of examples stored in the chunks."""
    return int(sum(len(ids) for ids in read_field(paths, "input_ids")))


def truncated_count(paths):
    return int(sum(read_field(paths, "truncated")))


def dataset(paths, target, mask, batch_size, student_id_table, seed=None, epoch=0):
    """(student_ids, teacher output `target`, mask `mask`) batches, read chunk by chunk.

    With a seed, chunks and rows are shuffled in an order that depends on (seed, epoch) alone.
    `student_id_table` maps teacher piece ids to student ids (students.vocab.StudentVocab).
    """
    with np.load(paths[0]) as first:
        seq_len = first["input_ids"].shape[1]
        target_shape = first[f"out_{target}"].shape[1:]
        mask_shape = first[f"mask_{mask}"].shape[1:]

    def generate():
        rng = None if seed is None else np.random.default_rng([seed, epoch])
        order = rng.permutation(len(paths)) if rng is not None else range(len(paths))
        for index in order:
            with np.load(paths[index]) as chunk:
                ids = student_id_table[chunk["input_ids"]]
                weights = chunk[f"mask_{mask}"].astype(np.float32)
                values = chunk[f"out_{target}"]
            rows = rng.permutation(len(ids)) if rng is not None else range(len(ids))
            for row in rows:
                yield ids[row], values[row].astype(np.float32), weights[row]

    signature = (tf.TensorSpec((seq_len,), tf.int32),
                 tf.TensorSpec(target_shape, tf.float32),
                 tf.TensorSpec(mask_shape, tf.float32))
    return (tf.data.Dataset.from_generator(generate, output_signature=signature)
            .batch(batch_size).prefetch(2))
