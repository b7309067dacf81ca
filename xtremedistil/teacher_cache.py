"""Teacher outputs on the transfer set, computed once per chunk and stored on disk.

The transfer file is streamed: each chunk of `chunk_size` sentences is encoded, run through the
teacher and written, so memory does not grow with the transfer set. Every distillation stage
reads the chunks back as a tf.data pipeline; the teacher never runs twice. One file per chunk:
  input_ids [n, T] int32 (teacher pieces), mask [n, T] int8 (real tokens),
  hidden [n, T, H] float16, logits [n, T, C] float16, truncated: sentences cut by seq_len.
Every `val_every`-th sentence (at most `val_max`) goes to the validation chunk instead.
"""

import itertools
import os

import numpy as np
import tensorflow as tf
from absl import logging

from xtremedistil import features
from xtremedistil import teacher as teacher_lib


def split_stream(sentences, chunk_size, val_every=10, val_max=2000):
    """Yields ('train', index, chunk) as chunks fill, then ('val', 0, chunk)."""
    train, val, index = [], [], 0
    for position, sentence in enumerate(sentences):
        if position % val_every == 0 and len(val) < val_max:
            val.append(sentence)
            continue
        train.append(sentence)
        if len(train) == chunk_size:
            yield "train", index, train
            train, index = [], index + 1
    if train:
        yield "train", index, train
    if val:
        yield "val", 0, val


def _write_chunk(path, sentences, tokenizer, seq_len, distiller, batch_size):
    encoded = features.encode(sentences, tokenizer, seq_len)
    outputs = list(teacher_lib.predict_outputs(distiller, encoded, batch_size))
    tmp = path + ".tmp.npz"
    np.savez(tmp, input_ids=encoded.input_ids, mask=encoded.attention_mask.astype(np.int8),
             hidden=np.concatenate([h for h, _ in outputs]),
             logits=np.concatenate([l for _, l in outputs]), truncated=encoded.truncated)
    os.replace(tmp, path)


def store_outputs(sentences, tokenizer, seq_len, distiller, folder, chunk_size, batch_size):
    """Writes the chunks not yet on disk; returns (train paths, val paths)."""
    os.makedirs(folder, exist_ok=True)
    paths = {"train": [], "val": []}
    for split, index, chunk in split_stream(sentences, chunk_size):
        path = os.path.join(folder, f"{split}_{index:05d}.npz")
        paths[split].append(path)
        if not os.path.exists(path):
            _write_chunk(path, chunk, tokenizer, seq_len, distiller, batch_size)
            logging.info("teacher outputs: %s chunk %d (%d sentences) written", split,
                         index + 1, len(chunk))
    if not paths["train"] or not paths["val"]:
        raise ValueError("The transfer set needs at least 2 sentences (--transfer_file).")
    return paths["train"], paths["val"]


def read_field(paths, field):
    """Yields one stored field chunk by chunk (e.g. 'input_ids' for the student vocabulary)."""
    for path in paths:
        with np.load(path) as chunk:
            yield chunk[field]


def truncated_count(paths):
    return int(sum(read_field(paths, "truncated")))


def dataset(paths, target, batch_size, student_id_table, shuffle_seed=None):
    """(student_ids, teacher `target` ('hidden' or 'logits'), mask) batches read chunk by chunk.

    `student_id_table` maps teacher piece ids to student ids (features.StudentVocab).
    """
    with np.load(paths[0]) as first:
        seq_len = first["input_ids"].shape[1]
        width = first[target].shape[-1]
    epoch = itertools.count()

    def generate():
        seed = None if shuffle_seed is None else shuffle_seed + next(epoch)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(paths)) if seed is not None else range(len(paths))
        for index in order:
            with np.load(paths[index]) as chunk:
                ids = student_id_table[chunk["input_ids"]]
                mask, values = chunk["mask"].astype(np.float32), chunk[target]
            rows = rng.permutation(len(ids)) if seed is not None else range(len(ids))
            for row in rows:
                yield ids[row], values[row].astype(np.float32), mask[row]

    signature = (tf.TensorSpec((seq_len,), tf.int32),
                 tf.TensorSpec((seq_len, width), tf.float32),
                 tf.TensorSpec((seq_len,), tf.float32))
    return (tf.data.Dataset.from_generator(generate, output_signature=signature)
            .batch(batch_size).prefetch(2))
