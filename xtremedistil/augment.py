"""Transfer-set augmentation (--augment_transfer; Tang et al. 2019, "Distilling Task-Specific
Knowledge from BERT into Simple Neural Networks"): more text for the teacher to label where the
unlabeled transfer set is small.

Each copy of an example masks every word with probability MASK_RATE (the teacher's mask token),
then, with probability NGRAM_RATE, keeps only a random n-gram of 1..MAX_NGRAM of its words
(single texts and sentences; a pair keeps both texts whole). The paper's third rule,
part-of-speech-guided word replacement, is not done: it needs a tagger.

Copies are made of the training part of the transfer set only (teacher_cache.store_outputs),
so that no copy of a validation example trains, and from (seed, chunk index) alone, so that a
resumed run, or another worker, makes the same ones.
"""

import dataclasses

import numpy as np

from xtremedistil import data as data_lib

MASK_RATE = 0.1
NGRAM_RATE = 0.25
MAX_NGRAM = 5


class ChunkCopies:
    """(chunk index, examples) -> the examples, then `copies` augmented copies of each."""

    def __init__(self, copies, seed, mask_token):
        self.copies, self.seed, self.mask_token = copies, seed, mask_token

    def __call__(self, index, examples):
        rng = np.random.default_rng([self.seed, index])
        return list(examples) + [augmented(e, rng, self.mask_token)
                                 for _ in range(self.copies) for e in examples]


def augmented(example, rng, mask_token):
    """One augmented copy of a data.Sentence or data.TextExample."""
    if isinstance(example, data_lib.Sentence):
        changed = {"tokens": tuple(_words(example.tokens, rng, mask_token))}
    elif example.text_b is None:
        changed = {"text": " ".join(_words(example.text.split(), rng, mask_token))}
    else:
        changed = {"text": " ".join(_masked(example.text.split(), rng, mask_token)),
                   "text_b": " ".join(_masked(example.text_b.split(), rng, mask_token))}
    return dataclasses.replace(example, source=f"{example.source} (augmented)", **changed)


def _masked(words, rng, mask_token):
    return [mask_token if rng.random() < MASK_RATE else word for word in words]


def _words(words, rng, mask_token):
    """Masked words, then with probability NGRAM_RATE a random n-gram of them."""
    words = _masked(words, rng, mask_token)
    if len(words) > 1 and rng.random() < NGRAM_RATE:
        size = int(rng.integers(1, min(MAX_NGRAM, len(words)) + 1))
        start = int(rng.integers(0, len(words) - size + 1))
        words = words[start:start + size]
    return words


def stored_examples(transfer_count, count):
    """At most how many examples the stored transfer set holds with `count` copies each."""
    return transfer_count * (1 + count)
