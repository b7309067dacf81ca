"""The student's word pieces (a subset of the teacher's) and their factorised embeddings.

Legend: V_t teacher vocabulary, V_s student vocabulary, E word_emb_dim.
"""

import dataclasses
import itertools

import numpy as np


@dataclasses.dataclass
class StudentVocab:
    """The word pieces the student knows: a subset of the teacher's vocabulary.

    Student id 0 is the teacher's padding piece and 1 its unknown piece; every other teacher
    piece kept follows. Pieces not kept map to 1.
    """
    teacher_ids: np.ndarray  # [V_s] teacher id of each student id

    @classmethod
    def full(cls, teacher_vocab_size, pad_id, unk_id):
        """Every teacher piece: words whose pieces the training data never showed keep their
        (factorised) teacher embeddings instead of becoming unknown."""
        return cls.from_ids([np.arange(teacher_vocab_size)], pad_id, unk_id)

    @classmethod
    def from_ids(cls, id_arrays, pad_id, unk_id, max_size=0):
        """From teacher piece ids seen in training data, given as arrays (streamed is fine):
        the pieces seen most often first, at most `max_size` pieces in all (0: every piece)."""
        return cls.from_counts(count_ids(id_arrays), pad_id, unk_id, max_size)

    @classmethod
    def from_counts(cls, counts, pad_id, unk_id, max_size=0):
        """From counts[piece]: the pieces counted most often first (ties: lower id first)."""
        seen = np.flatnonzero(counts)
        kept = seen[np.lexsort((seen, -counts[seen]))]
        kept = kept[(kept != pad_id) & (kept != unk_id)]
        if max_size:
            kept = kept[:max(0, max_size - 2)]
        return cls(np.concatenate([[pad_id, unk_id], kept]).astype(np.int32))

    def __len__(self):
        return len(self.teacher_ids)

    def lookup_table(self, teacher_vocab_size):
        """[V_t] array: student id of each teacher id (1, the unknown piece, when not kept)."""
        table = np.ones(teacher_vocab_size, np.int32)
        table[self.teacher_ids] = np.arange(len(self.teacher_ids), dtype=np.int32)
        return table

    def to_student_ids(self, teacher_input_ids, teacher_vocab_size):
        return self.lookup_table(teacher_vocab_size)[teacher_input_ids]


def count_ids(id_arrays, size=0):
    """counts[piece] of the teacher piece ids in `id_arrays` (streamed is fine), at least
    `size` long."""
    counts = np.zeros(size, np.int64)
    for ids in id_arrays:
        found = np.bincount(np.asarray(ids).ravel())
        if len(found) > len(counts):
            counts = np.pad(counts, (0, len(found) - len(counts)))
        counts[:len(found)] += found
    return counts


def factorise_embeddings(teacher_embeddings, teacher_ids, word_emb_dim, rescale=True):
    """[V_s, E] PCA of the teacher's embeddings of the student's pieces (rows in student order).

    rescale: divide by the overall standard deviation (unit variance); False keeps the PCA
    projection as is (the original code, --pca_rescale=false).
    """
    rows = teacher_embeddings[teacher_ids].astype(np.float64)  # [V_s, H_emb]
    centred = rows - rows.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    dims = min(word_emb_dim, s.shape[0])
    factorised = np.zeros((rows.shape[0], word_emb_dim))
    factorised[:, :dims] = u[:, :dims] * s[:dims]
    if rescale:
        # Unit variance, so the LSTM sees inputs of a familiar size.
        factorised /= factorised.std() + 1e-8
    return factorised.astype(np.float32)


def teacher_ids_of(pieces, piece_ids):
    """[V] int32 teacher ids of a run's student pieces (config.json's student_vocab; piece_ids:
    piece -> teacher id). None stands for a teacher id without a piece (embedding rows past
    the tokenizer's vocabulary: multilingual-e5-small has 250,037 rows for 250,002 pieces); no
    text gives those, so each gets an unused id past the others."""
    unused = itertools.count(max(piece_ids.values()) + 1)
    return np.asarray([piece_ids[piece] if piece is not None else next(unused)
                       for piece in pieces], np.int32)
