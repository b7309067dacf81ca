"""Raw sentences -> words with their offsets, and tagged words -> entity spans, in the graph.

The TensorFlow twin of `xtremedistil/words.py` (which the TFLite and ONNX reference code and
the tests use): the SavedModel splits raw text and merges tags into entities exactly as it does.

Legend: B sentences, N words in the batch, W most words in a sentence, K entities in the
batch, E most entities in a sentence, C labels.

Offsets count Unicode characters (code points, Python str indexes) of the input, so
sentence[start:end] is the word or entity. Input that is not valid UTF-8 is first made valid
(each bad byte sequence becomes U+FFFD), and offsets index that valid string.
"""

import tensorflow as tf
import tensorflow_text as tf_text

from xtremedistil import words as words_lib

# Python's str.isspace() characters (all below U+3001), each a split.
_SPACE = "[" + "".join(f"\\x{{{ord(c):X}}}" for c in map(chr, range(0x3001))
                       if c.isspace()) + "]"
# A word of its own: BERT punctuation (ASCII symbols and Unicode P*) or a CJK ideograph.
_ALONE = ("[!-/:-@\\[-`{-~]|\\p{P}|["
          + "".join(f"\\x{{{low:X}}}-\\x{{{high:X}}}" for low, high in words_lib.CJK_RANGES)
          + "]")

# Tag prefixes as seqeval reads them (the first character of a tag).
_PREFIX_CODES = {"O": 0, "B": 1, "I": 2, "E": 3, "S": 4}
_OTHER_PREFIX = 5


def split_words(sentences):
    """[B] valid UTF-8 strings (tensorflow_text.coerce_to_structurally_valid_utf8) -> (words
    [B, (W)], start [B, (W)] int32, end [B, (W)] int32): split as words.split_words splits,
    start/end in Unicode characters."""
    # regex_split would end a string at NUL: split a copy with NUL replaced (1 byte each),
    # then cut the words out of the input at the offsets found.
    _, byte_start, byte_end = tf_text.regex_split_with_offsets(
        tf.strings.regex_replace(sentences, "\\x00", "\x01"), f"{_SPACE}+|{_ALONE}", _ALONE)
    rows = byte_start.value_rowids()
    words = byte_start.with_flat_values(tf.strings.substr(
        tf.gather(sentences, rows), byte_start.flat_values,
        byte_end.flat_values - byte_start.flat_values))
    return (words, char_offsets(sentences, byte_start), char_offsets(sentences, byte_end))


def char_offsets(sentences, byte_offsets):
    """[B] valid UTF-8 strings, ragged [B, (W)] byte offsets into them -> the same offsets in
    Unicode characters (ragged [B, (W)] int32)."""
    _, char_bytes = tf.strings.unicode_decode_with_offsets(sentences, "UTF-8")  # [B, (chars)]
    # One sorted key per character, sentence-major, so one search finds every offset: the
    # characters of its sentence that start before it.
    row_base = tf.constant(2**32, tf.int64)
    keys = (tf.cast(char_bytes.value_rowids(), tf.int64) * row_base
            + tf.cast(char_bytes.flat_values, tf.int64))  # [all characters]
    rows = tf.cast(byte_offsets.value_rowids(), tf.int64)  # [N]
    queries = rows * row_base + tf.cast(byte_offsets.flat_values, tf.int64)  # [N]
    before = tf.searchsorted(keys[tf.newaxis], queries[tf.newaxis], side="left",
                             out_type=tf.int64)[0]  # [N]
    chars = before - tf.gather(char_bytes.row_starts(), rows)
    return byte_offsets.with_flat_values(tf.cast(chars, tf.int32))


def tag_tables(labels):
    """(prefix code [C], type id [C], type names [types]) of the tag labels, as seqeval's
    get_entities reads a tag: its first character, and what follows the first '-'."""
    types = [label[1:].split("-", maxsplit=1)[-1] or "_" for label in labels]
    names = sorted(set(types))
    prefixes = [_PREFIX_CODES.get(label[0], _OTHER_PREFIX) for label in labels]
    return prefixes, [names.index(t) for t in types], names


class EntityMerger(tf.Module):
    """Tagged words -> entity spans, as seqeval's get_entities merges tags (IOB1, IOB2, IOBES:
    an I- after O or after another type starts an entity)."""

    def __init__(self, labels):
        super().__init__(name="entity_merger")
        prefixes, types, names = tag_tables(labels)
        self._prefix_of_label = tf.constant(prefixes, tf.int32)  # [C]
        self._type_of_label = tf.constant(types, tf.int32)  # [C]
        self._type_names = tf.constant(names)

    def starts(self, label_ids, outside):
        """Flat [N] label ids of ragged words, outside [N] bool (word forced to O) -> (begins
        an entity [N] bool, inside one [N] bool); the first word of a sentence follows an O."""
        prefix = tf.where(outside, _PREFIX_CODES["O"], tf.gather(self._prefix_of_label,
                                                                 label_ids.flat_values))
        kind = tf.where(outside, -2, tf.gather(self._type_of_label, label_ids.flat_values))
        word = tf.range(tf.size(prefix, out_type=tf.int64))  # [N]
        first = word == tf.gather(label_ids.row_starts(), label_ids.value_rowids())  # [N]
        previous_prefix = tf.where(first, _PREFIX_CODES["O"], tf.roll(prefix, 1, 0))
        previous_kind = tf.where(first, -1, tf.roll(kind, 1, 0))
        return _seqeval_start(previous_prefix, prefix, previous_kind, kind), (
            prefix != _PREFIX_CODES["O"])

    def __call__(self, sentences, start, end, label_ids, outside, probability):
        """Entities of tagged sentences.

        sentences [B] strings; start, end ragged [B, (W)] character offsets of the words;
        label_ids ragged [B, (W)] int32; outside [N] bool (words cut off: tag O);
        probability [N] float32 of each word's tag. Returns a dict of [B, E] tensors
        entity_text, entity_type (padded ''), entity_start, entity_end (characters;
        padded 0), entity_score (the mean probability of its words; padded 0) and
        num_entities [B].
        """
        begins, inside = self.starts(label_ids, outside)
        entity = tf.cumsum(tf.cast(begins, tf.int32)) - 1  # [N], the entity of inside words
        inside_entity = tf.boolean_mask(entity, inside)
        count = tf.reduce_sum(tf.cast(begins, tf.int32))

        def per_entity(reduce, values):  # [N] -> [K]
            return reduce(tf.boolean_mask(values, inside), inside_entity, num_segments=count)

        char_start = per_entity(tf.math.unsorted_segment_min, start.flat_values)  # [K]
        char_end = per_entity(tf.math.unsorted_segment_max, end.flat_values)  # [K]
        score = per_entity(tf.math.unsorted_segment_mean, probability)  # [K]
        first_word = tf.boolean_mask(tf.range(tf.size(begins)), begins)  # [K]
        row = tf.gather(label_ids.value_rowids(), first_word)  # [K]
        kind = tf.gather(self._type_of_label, tf.gather(label_ids.flat_values, first_word))
        text = tf.strings.substr(tf.gather(sentences, row), char_start, char_end - char_start,
                                 unit="UTF8_CHAR")  # [K]

        def padded(values, default):  # [K] -> [B, E]
            return tf.RaggedTensor.from_value_rowids(
                values, row, nrows=label_ids.nrows()).to_tensor(default_value=default)

        return {"entity_text": padded(text, ""),
                "entity_type": padded(tf.gather(self._type_names, kind), ""),
                "entity_start": padded(char_start, 0), "entity_end": padded(char_end, 0),
                "entity_score": padded(score, 0.0),
                "num_entities": tf.cast(tf.RaggedTensor.from_value_rowids(
                    row, row, nrows=label_ids.nrows()).row_lengths(), tf.int32)}


def _seqeval_start(previous_prefix, prefix, previous_kind, kind):
    """seqeval's start_of_chunk on [N] prefix codes and type ids of a word and the one before."""
    o, b, i, e, s = (_PREFIX_CODES[p] for p in "OBIES")
    return ((prefix == b) | (prefix == s)
            | (((previous_prefix == e) | (previous_prefix == s) | (previous_prefix == o))
               & ((prefix == e) | (prefix == i)))
            | ((prefix != o) & (previous_kind != kind)))
