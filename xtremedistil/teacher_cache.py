"""Teacher outputs on the transfer set, computed once per chunk and stored on disk, by name.

The transfer file is streamed: each chunk of `chunk_size` examples is encoded, run through the
teacher and written, so memory does not grow with the transfer set. Every distillation stage
reads the chunks back as a tf.data pipeline; the teacher never runs twice. One file per chunk:
  input_ids [n, T] int32 (the teacher pieces the student reads: Encoded.student_pieces),
  mask_<name> [n, ...] int8 (the task's masks), out_<name> [n, ...] float16 (the teacher
  outputs the recipe needs; 'attention' [n, L_a * maps, T, T] the maps of the distilled
  layers alone, heads averaged or grouped: --attention_heads), truncated.
An output too large to store (attention maps beyond --attention_cache_mb) is computed online
instead, from each batch's stored pieces (`dataset(online=...)`).
Every `val_every`-th example goes to the validation chunk instead, at most VAL_MAX of them:
`validation_every` spreads them over the whole stream (a transfer file ordered by language gives
validation examples of every language, not of the first few alone).
In a multi-worker run worker k of N computes and reads only the training chunks whose index is
k modulo N (its share) and every worker the validation chunk; chunk files keep their index in
the whole stream, so any number of workers finds what is already done. `stamp.json` records the
teacher's weights fingerprint and what was stored: chunks written by another teacher (or
without an output now needed) are recomputed, never reused.
"""

import dataclasses
import itertools
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from xtremedistil import augment as augment_lib
from xtremedistil import teacher as teacher_lib

STAMP = "stamp.json"
VAL_EVERY = 10  # at least this sparse; sparser for streams of over VAL_EVERY x VAL_MAX
VAL_MAX = 2000


def validation_every(total, val_max=VAL_MAX):
    """Every how many examples of a `total`-long stream one goes to validation: every 10th,
    or sparser where that would stop at `val_max` before the stream's end."""
    return max(VAL_EVERY, -(-total // val_max))


def split_stream(examples, chunk_size, val_every=VAL_EVERY, val_max=VAL_MAX):
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
    # No distiller: no output is stored, only the pieces (an output computed online).
    outputs = ({} if distiller is None
               else teacher_lib.predict(distiller, encoded, batch_size, np.float16))
    arrays = {f"out_{name}": value for name, value in outputs.items()}
    arrays.update({f"mask_{name}": mask.astype(np.int8) for name, mask in encoded.masks.items()})
    tmp = _private_temp(path)
    np.savez(tmp, input_ids=encoded.student_pieces, truncated=encoded.truncated, **arrays)
    os.replace(tmp, path)


def _private_temp(path):
    """`a.npz` -> `a.tmp<pid>.npz`: workers sharing a folder write the same files (the
    validation chunk, the stamp) without clobbering each other's half-written copy."""
    root, extension = os.path.splitext(path)
    return f"{root}.tmp{os.getpid()}{extension}"


def _covers(previous, stamp):
    """True when outputs stored under stamp `previous` serve `stamp`: the same teacher and
    settings, and every output `stamp` needs among the stored ones (a stage-wise run's hidden
    states and logits serve a run that distils the logits alone). Settings `previous` alone
    has (a transformer run's layer map) belong to outputs `stamp` does not need. Stamps
    written before the split was recorded split every 10th example off to validation, and
    those written before augmentation have no augmented copies."""
    previous = {"val_every": VAL_EVERY, "augment": 0, **previous}
    same_settings = all(previous.get(k) == v for k, v in stamp.items() if k != "outputs")
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
    tmp = _private_temp(path)
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(stamp, f, indent=1)
    os.replace(tmp, path)


@dataclasses.dataclass
class Stored:
    train_paths: list  # this worker's share of the training chunks
    val_paths: list
    train_count: int  # training examples in every worker's share together
    share_count: int  # training examples in this worker's share
    computed: int  # examples this worker's teacher ran on in this call (0: all stored before)


def store_outputs(examples, task, tokenizer, seq_len, distiller, folder, chunk_size, batch_size,
                  stamp, progress=None, share=(0, 1), after_stamp_check=None,
                  val_every=VAL_EVERY, augment=None):
    """Writes the chunks of this worker's share not yet on disk; returns a Stored.

    stamp: what identifies the outputs (teacher fingerprint, layer, seq_len, output names).
    progress(split, index, count): called after each chunk written.
    share: (k, N), this worker's share of the training chunks (teacher_cache docstring).
    after_stamp_check(): called once stale chunks are gone (workers sharing `folder` wait for
        each other there, so none deletes what another has started writing).
    val_every: every how many examples one goes to validation (`validation_every`); the stamp
        should hold it, since chunks split otherwise hold other examples.
    augment: an augment.ChunkCopies, applied to each training chunk written; the stamp should
        say how the copies were made.
    """
    os.makedirs(folder, exist_ok=True)
    _check_stamp(folder, stamp)
    if after_stamp_check is not None:
        after_stamp_check()
    worker, workers = share
    copies = augment.copies if augment is not None else 0
    stored = Stored([], [], 0, 0, 0)
    for split, index, chunk in split_stream(examples, chunk_size, val_every):
        if split == "train":
            size = augment_lib.stored_examples(len(chunk), copies)
            stored.train_count += size
            if index % workers != worker:
                continue
            stored.share_count += size
        path = os.path.join(folder, f"{split}_{index:05d}.npz")
        (stored.train_paths if split == "train" else stored.val_paths).append(path)
        if not os.path.exists(path):
            if split == "train" and augment is not None:  # only what is written
                chunk = augment(index, chunk)
            _write_chunk(path, chunk, task, tokenizer, seq_len, distiller, batch_size)
            stored.computed += len(chunk)
            if progress is not None:
                progress(split, index, len(chunk))
    if not stored.train_count or not stored.val_paths:
        raise ValueError("The transfer set needs at least 2 sentences (--transfer_file).")
    if not stored.train_paths:
        raise ValueError(f"The transfer set makes fewer chunks of --distil_chunk_size="
                         f"{chunk_size} than there are workers ({workers}): worker {worker} "
                         "has none. Use a smaller --distil_chunk_size.")
    return stored


def attention_bytes(examples, maps, seq_len):
    """Bytes `maps` attention maps an example take, for `examples` stored examples (float16
    [maps, T, T] each)."""
    return examples * maps * seq_len * seq_len * 2


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


def dataset(paths, target, mask, batch_size, student_id_table, seed=None, epoch=0, rows=None,
            online=None):
    """(student_ids, teacher output `target`, mask `mask`) batches, read chunk by chunk.

    With a seed, chunks and rows are shuffled in an order that depends on (seed, epoch) alone.
    `student_id_table` maps teacher piece ids to student ids (students.vocab.StudentVocab).
    rows: exactly this many rows, going through the chunks again (in a new order) as often as
    needed: a worker's share in a multi-worker run, where every worker takes as many steps.
    online: a teacher_lib.OnlineTeacher computing `target` (not stored) from each batch's
    stored teacher pieces.
    """
    with np.load(paths[0]) as first:
        seq_len = first["input_ids"].shape[1]
        target_shape = (online.shape if online is not None
                        else first[f"out_{target}"].shape[1:])
        mask_shape = first[f"mask_{mask}"].shape[1:]

    def one_pass(rng):
        """Rows of (student ids [T], target (online: the teacher pieces [T]), weights)."""
        order = rng.permutation(len(paths)) if rng is not None else range(len(paths))
        for index in order:
            with np.load(paths[index]) as chunk:
                ids = student_id_table[chunk["input_ids"]]
                weights = chunk[f"mask_{mask}"].astype(np.float32)
                values = chunk["input_ids" if online is not None else f"out_{target}"]
            for row in rng.permutation(len(ids)) if rng is not None else range(len(ids)):
                yield ids[row], values[row], weights[row]

    def rng(repeat):
        return None if seed is None else np.random.default_rng(
            [seed, epoch] + ([repeat] if repeat else []))

    def all_rows():
        if rows is None:
            return one_pass(rng(0))
        passes = itertools.chain.from_iterable(one_pass(rng(r)) for r in itertools.count())
        return itertools.islice(passes, rows)

    def stored_rows():
        for ids, values, weights in all_rows():
            yield ids, values.astype(np.float32), weights

    def online_batches():
        rows_left = all_rows()
        while batch := list(itertools.islice(rows_left, batch_size)):
            ids, pieces, weights = (np.stack(column) for column in zip(*batch))
            yield ids, online(pieces), weights

    signature = (tf.TensorSpec((seq_len,), tf.int32),
                 tf.TensorSpec(target_shape, tf.float32),
                 tf.TensorSpec(mask_shape, tf.float32))
    if online is not None:
        batched = tuple(tf.TensorSpec((None,) + spec.shape, spec.dtype) for spec in signature)
        return tf.data.Dataset.from_generator(online_batches,
                                              output_signature=batched).prefetch(2)
    return (tf.data.Dataset.from_generator(stored_rows, output_signature=signature)
            .batch(batch_size).prefetch(2))
