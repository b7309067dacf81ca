"""Word-piece encoding of sentences and the student vocabulary.

Legend: N sentences, T = seq_len word pieces.
The first piece of each word carries the word's tag; other pieces, special tokens and padding
are masked out of the loss and of evaluation (label_mask == 0).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Encoded:
    """Sentences encoded with the teacher's tokenizer."""
    input_ids: np.ndarray  # [N, T] int32, teacher word-piece ids
    attention_mask: np.ndarray  # [N, T] int32
    label_ids: np.ndarray  # [N, T] int32, tag id at first pieces, 0 elsewhere
    label_mask: np.ndarray  # [N, T] float32, 1 at the first piece of each kept word
    word_starts: list  # N arrays: position of each kept word's first piece
    truncated: int  # sentences with words cut off by seq_len

    def __len__(self):
        return len(self.input_ids)


def _word_starts(word_ids):
    """Positions of the first piece of each word, in word order."""
    starts, previous = [], None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            starts.append(position)
        previous = word
    return starts


def _replace_pieceless_words(tokens, word_ids, unk_token, filled):
    """Words the tokenizer drops entirely (e.g. lone control characters) become [UNK].

    When the encoding `filled` seq_len, words after the last one kept may be truncated rather
    than piece-less, so only the words before it are checked.
    """
    present = {w for w in word_ids if w is not None}
    last = (max(present) if present else -1) if filled else len(tokens) - 1
    missing = [i for i in range(last + 1) if i not in present]
    if not missing:
        return None
    return [unk_token if i in missing else token for i, token in enumerate(tokens)]


def encode(sentences, tokenizer, seq_len, tag_to_id=None):
    """Encodes sentences into teacher word pieces with first-piece tag alignment."""
    n = len(sentences)
    input_ids = np.zeros((n, seq_len), np.int32)
    attention_mask = np.zeros((n, seq_len), np.int32)
    label_ids = np.zeros((n, seq_len), np.int32)
    label_mask = np.zeros((n, seq_len), np.float32)
    word_starts, truncated = [], 0
    batch = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True,
                      truncation=True, max_length=seq_len, padding="max_length")
    for i, sentence in enumerate(sentences):
        ids, mask, word_ids = batch["input_ids"][i], batch["attention_mask"][i], batch.word_ids(i)
        fixed_tokens = _replace_pieceless_words(sentence.tokens, word_ids, tokenizer.unk_token,
                                                filled=sum(mask) == seq_len)
        if fixed_tokens is not None:
            single = tokenizer([fixed_tokens], is_split_into_words=True, truncation=True,
                               max_length=seq_len, padding="max_length")
            ids, mask, word_ids = single["input_ids"][0], single["attention_mask"][0], single.word_ids(0)
        starts = _word_starts(word_ids)
        truncated += len(starts) < len(sentence.tokens)
        input_ids[i] = ids
        attention_mask[i] = mask
        label_mask[i, starts] = 1.0
        if tag_to_id is not None and sentence.tags is not None:
            label_ids[i, starts] = [tag_to_id[t] for t in sentence.tags[:len(starts)]]
        word_starts.append(np.asarray(starts, np.int32))
    return Encoded(input_ids, attention_mask, label_ids, label_mask, word_starts, truncated)


@dataclasses.dataclass
class StudentVocab:
    """The word pieces the student knows: a subset of the teacher's vocabulary.

    Student id 0 is the teacher's padding piece and 1 its unknown piece; every other teacher
    piece seen in the training data follows. Unseen pieces map to 1.
    """
    teacher_ids: np.ndarray  # [V_s] teacher id of each student id

    @classmethod
    def full(cls, teacher_vocab_size, pad_id, unk_id):
        """Every teacher piece: words whose pieces the training data never showed keep their
        (factorised) teacher embeddings instead of becoming unknown."""
        return cls.from_ids([np.arange(teacher_vocab_size)], pad_id, unk_id)

    @classmethod
    def from_ids(cls, id_arrays, pad_id, unk_id):
        """From teacher piece ids seen in training data, given as arrays (streamed is fine)."""
        seen = set()
        for ids in id_arrays:
            seen.update(np.unique(ids).tolist())
        rest = sorted(seen - {pad_id, unk_id})
        return cls(np.asarray([pad_id, unk_id] + rest, np.int32))

    def __len__(self):
        return len(self.teacher_ids)

    def lookup_table(self, teacher_vocab_size):
        """[V_t] array: student id of each teacher id (1, the unknown piece, when unseen)."""
        table = np.ones(teacher_vocab_size, np.int32)
        table[self.teacher_ids] = np.arange(len(self.teacher_ids), dtype=np.int32)
        return table

    def to_student_ids(self, teacher_input_ids, teacher_vocab_size):
        return self.lookup_table(teacher_vocab_size)[teacher_input_ids]
