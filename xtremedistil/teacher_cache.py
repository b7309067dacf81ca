"""Teacher outputs on the transfer set, computed once per chunk and stored on disk.

Every distillation stage reads them back as a tf.data pipeline, so the teacher never runs twice
and memory does not grow with the transfer set. One file per chunk:
  student_ids [n, T] int32, mask [n, T] float32 (real tokens), hidden [n, T, H] float16,
  logits [n, T, C] float16.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from xtremedistil import teacher as teacher_lib


def chunk_paths(folder, prefix, count):
    return [os.path.join(folder, f"{prefix}_{i:05d}.npz") for i in range(count)]


def write_chunks(distiller, encoded, student_ids, folder, prefix, chunk_size, batch_size):
    """Runs the teacher over `encoded` chunk by chunk; chunks already on disk are kept."""
    os.makedirs(folder, exist_ok=True)
    count = max(1, -(-len(encoded) // chunk_size))
    paths = chunk_paths(folder, prefix, count)
    for index, path in enumerate(paths):
        if os.path.exists(path):
            continue
        rows = np.arange(index * chunk_size, min((index + 1) * chunk_size, len(encoded)))
        chunk = encoded.subset(rows)
        outputs = list(teacher_lib.predict_outputs(distiller, chunk, batch_size))
        tmp = path + ".tmp.npz"
        np.savez(tmp, student_ids=student_ids[rows],
                 mask=chunk.attention_mask.astype(np.float32),
                 hidden=np.concatenate([h for h, _ in outputs]),
                 logits=np.concatenate([l for _, l in outputs]))
        os.replace(tmp, path)
        logging.info("teacher outputs: %s chunk %d/%d (%d sentences)", prefix, index + 1,
                     count, len(rows))
    return paths


def dataset(paths, target, batch_size, shuffle_seed=None):
    """(student_ids, teacher `target` ('hidden' or 'logits'), mask) batches read chunk by chunk."""
    with np.load(paths[0]) as first:
        seq_len = first["student_ids"].shape[1]
        width = first[target].shape[-1]
    epoch = [0]

    def generate():
        rng = np.random.default_rng(None if shuffle_seed is None else shuffle_seed + epoch[0])
        epoch[0] += 1
        order = rng.permutation(len(paths)) if shuffle_seed is not None else range(len(paths))
        for index in order:
            with np.load(paths[index]) as chunk:
                ids, mask, values = chunk["student_ids"], chunk["mask"], chunk[target]
            rows = rng.permutation(len(ids)) if shuffle_seed is not None else range(len(ids))
            for row in rows:
                yield ids[row], values[row].astype(np.float32), mask[row]

    signature = (tf.TensorSpec((seq_len,), tf.int32),
                 tf.TensorSpec((seq_len, width), tf.float32),
                 tf.TensorSpec((seq_len,), tf.float32))
    return (tf.data.Dataset.from_generator(generate, output_signature=signature)
            .batch(batch_size).prefetch(2))
