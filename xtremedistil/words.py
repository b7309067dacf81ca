"""Raw text -> words with their offsets, and tagged words -> entity spans.

Training data comes split into words (CoNLL files); raw text at prediction time is split here
as BERT's basic tokenizer splits before word pieces: at whitespace, and every punctuation
character and CJK ideograph is a word of its own ("Paris." -> "Paris", "."). Offsets count
Unicode characters (Python str indexes) of the input, so text[start:end] == word.
"""

import dataclasses
import unicodedata

from seqeval.metrics.sequence_labeling import get_entities


@dataclasses.dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int


def _is_punctuation(char):
    # BERT's rule: ASCII symbols count as punctuation although Unicode calls some of them
    # symbols ($, +, <, ^, `, |, ~); every Unicode P* category.
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_cjk(char):
    code = ord(char)
    return any(low <= code <= high for low, high in CJK_RANGES)


def split_words(text):
    """[Word] of `text`: whitespace-separated, punctuation and CJK ideographs split off."""
    words, start = [], None
    for index, char in enumerate(text):
        alone = _is_punctuation(char) or _is_cjk(char)
        if char.isspace() or alone:
            if start is not None:
                words.append(Word(text[start:index], start, index))
                start = None
            if alone:
                words.append(Word(char, index, index + 1))
        elif start is None:
            start = index
    if start is not None:
        words.append(Word(text[start:], start, len(text)))
    return words


def entity_spans(text, words, tags, scores):
    """Entities of a tagged line: [{"text", "type", "start", "end", "score"}], where
    text[start:end] is the entity's text (its words and what lies between them) and score the
    mean of its words' tag probabilities. Tags as seqeval reads them (IOB2; an I- after O or
    another type starts an entity)."""
    spans = []
    for entity_type, first, last in get_entities(list(tags)):
        start, end = words[first].start, words[last].end
        spans.append({"text": text[start:end], "type": entity_type, "start": start, "end": end,
                      "score": round(sum(scores[first:last + 1]) / (last - first + 1), 6)})
    return spans
