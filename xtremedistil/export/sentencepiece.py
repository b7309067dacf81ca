"""The teacher's SentencePiece Unigram tokenizer (XLM-R family), reproduced in the TensorFlow
graph.

Legend: B sentences, N words in the batch, M word parts (words or texts cut at the teacher's
added tokens), K characters, G grapheme clusters, S pre-tokens (a part cut before each '▁'),
P pieces, W most words in a sentence, T seq_len, V_t teacher vocabulary.

`read_sentencepiece_settings` reads the teacher's HF fast tokenizer (tokenizer.json: a Unigram
model, a Precompiled normaliser optionally followed by Replace(' {2,}', ' '), a Metaspace
pre-tokeniser); `SentencePieceGraphTokenizer` does the same with TensorFlow and tensorflow_text
ops, so a SavedModel tokenises raw text exactly as training did. The Unigram pieces become a
SentencePiece ModelProto (`SentencePieceSettings.model_proto`) whose ids are the HF ids
(tokenizer.json's vocabulary order, '<s>' 0, '<pad>' 1, '</s>' 2, '<unk>' 3 for XLM-R: no
fairseq offset to undo), read by tensorflow_text.SentencepieceTokenizer.

Why the normaliser is not SentencePiece's own: HF applies `precompiled_charsmap` per grapheme
cluster (a cluster under 6 bytes that starts with a rule's key becomes that shortest rule's
output whole; any other cluster is mapped character by character), SentencePiece by longest
match anywhere. They differ on decomposed text ('Ａ' + U+0301: HF 'A', SentencePiece 'Á';
Hangul jamo, half-width kana with sound marks, Indic two-part vowels: HF leaves them, the
charsmap composes them). So the graph applies the charsmap HF's way (`normalise`) and gives
SentencePiece an identity normaliser.

Residual differences from the HF tokenizer, by construction:
  * Grapheme clusters are found with the rules that matter for clusters under 6 bytes (a
    character joins the one before it when it is a combining mark (\\p{M}), ZWJ, ZWNJ, an
    emoji modifier, a tag or a half-width sound mark, after a prepended concatenation mark, and
    CR LF; never after or before a control character). Unicode's Hangul, emoji-ZWJ and
    regional-indicator rules only join clusters of 6 bytes or more, which are mapped character
    by character either way. Combining marks newer than RE2's Unicode tables (Unicode 16's
    Garay, Gurung Khema, Tulu-Tigalari, e.g. U+113CD, U+16126, U+10D6A) do not join here.
  * Segmentations of equal score may be chosen differently (U+2034 '‴' -> '′′′': SentencePiece
    '′′' '′', HF '′' '′′').
  * Text that normalises into '<unk>' (e.g. full-width '＜unk＞') gives '<unk>' as HF does,
    but is not merged with unknown characters next to it as HF's fuse_unk would.
"""

import base64
import dataclasses
import json
import os
import string

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from xtremedistil.export.piece_tokenizer import PieceTokenizer
from xtremedistil.export.wordpiece import UnsupportedTokenizerError, student_id_table

__all__ = ["SentencePieceGraphTokenizer", "SentencePieceSettings", "UnsupportedTokenizerError",
           "read_sentencepiece_settings", "student_id_table"]

# HF's Precompiled normaliser maps a grapheme cluster whole only below this many bytes.
_WHOLE_CLUSTER_BYTES = 6
# Characters that join the one before them in a grapheme cluster (Extend, ZWJ, SpacingMark).
_EXTEND = ("[\\p{M}\\x{200C}\\x{200D}\\x{0E33}\\x{0EB3}\\x{FF9E}\\x{FF9F}\\x{1F3FB}-\\x{1F3FF}"
           "\\x{E0020}-\\x{E007F}]")
# Spacing marks (Mc) that Unicode does not join to the character before them.
_NOT_EXTEND = ("[\\x{102B}\\x{102C}\\x{1038}\\x{1062}-\\x{1064}\\x{1067}-\\x{106D}\\x{1083}"
               "\\x{1087}-\\x{108C}\\x{108F}\\x{109A}-\\x{109C}\\x{1A61}\\x{1A63}\\x{1A64}"
               "\\x{AA7B}\\x{AA7D}\\x{11720}\\x{11721}]")
# Prepended concatenation marks: the character after one joins it.
_PREPEND = ("[\\x{0600}-\\x{0605}\\x{06DD}\\x{070F}\\x{0890}\\x{0891}\\x{08E2}\\x{0D4E}"
            "\\x{110BD}\\x{110CD}\\x{111C2}\\x{111C3}\\x{1193F}\\x{11941}\\x{11A3A}"
            "\\x{11A84}-\\x{11A89}\\x{11D46}]")
# Grapheme Control: nothing joins it, it joins nothing (but ZWJ, ZWNJ and _PREPEND).
_CONTROL = "[\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}]"
# Rust's char::is_whitespace, which HF's lstrip/rstrip of added tokens strips.
_WHITESPACE = ("[\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
               "\\x{205F}\\x{3000}]")
_NOT_FOUND = "\x00"  # charsmap outputs end at NUL, so none is this
_MAX_RULE_CHARS = _WHOLE_CLUSTER_BYTES - 1


# === The teacher's Unigram tokenizer, as settings ===

@dataclasses.dataclass
class SentencePieceSettings:
    """What the teacher's HF fast tokenizer does, read from its tokenizer.json."""
    pieces: list  # (piece, score) of the Unigram model; index = teacher id
    unk_id: int  # the model's unknown piece
    rules: dict  # charsmap rules HF applies: key (a character, or under 6 bytes) -> output
    collapse_spaces: bool  # Replace(' {2,}', ' ') after the charsmap
    replacement: str  # Metaspace's '▁'
    split: bool  # Metaspace cuts before each '▁'
    added_tokens: dict  # token -> id, matched in the raw text
    lstrip: tuple  # added tokens that take the whitespace before them
    rstrip: tuple  # added tokens that take the whitespace after them
    cls_token: str
    sep_token: str
    pad_token: str
    unk_token: str

    def all_ids(self):
        """piece or added token -> teacher id."""
        return {**{piece: i for i, (piece, _) in enumerate(self.pieces)}, **self.added_tokens}

    def model_proto(self):
        """The serialized SentencePiece ModelProto: every Unigram piece NORMAL with its score
        (HF's lattice holds '<s>', '<pad>' etc. too), identity normaliser, no dummy prefix
        (the graph does normalisation and Metaspace), and one more piece, UNKNOWN, whose id
        the graph maps to unk_id (SentencePiece never matches an UNKNOWN piece's text, HF does).
        """
        from transformers.convert_slow_tokenizer import (  # pylint: disable=import-outside-toplevel
            import_protobuf)
        model_pb2 = import_protobuf()
        piece_type = model_pb2.ModelProto.SentencePiece
        proto = model_pb2.ModelProto()
        for piece, score in self.pieces:
            proto.pieces.add(piece=piece, score=score, type=piece_type.NORMAL)
        proto.pieces.add(piece=self.proto_unk_piece(), score=0.0, type=piece_type.UNKNOWN)
        spec = proto.trainer_spec
        spec.model_type = model_pb2.TrainerSpec.UNIGRAM
        spec.vocab_size = len(proto.pieces)
        spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = len(self.pieces), -1, -1, -1
        spec.unk_piece = self.proto_unk_piece()
        normalizer = proto.normalizer_spec
        normalizer.name = "identity"
        normalizer.add_dummy_prefix = False
        normalizer.remove_extra_whitespaces = False
        normalizer.escape_whitespaces = False
        return proto.SerializeToString()

    def proto_unk_piece(self):
        """A piece string the Unigram vocabulary lacks, for the proto's UNKNOWN piece."""
        taken = {piece for piece, _ in self.pieces}
        return next(f"<unk{'_' * n}>" for n in range(1, len(taken) + 2)
                    if f"<unk{'_' * n}>" not in taken)


def read_sentencepiece_settings(teacher_dir):
    """The teacher tokenizer's settings; UnsupportedTokenizerError unless tokenizer.json is a
    Unigram model with a Precompiled normaliser (optionally then Replace(' {2,}', ' ')) and a
    Metaspace pre-tokeniser that prepends '▁' to every part."""
    path = os.path.join(teacher_dir, "tokenizer.json")
    if not os.path.exists(path):
        raise UnsupportedTokenizerError(f"{teacher_dir} has no tokenizer.json: a SentencePiece "
                                        "teacher needs its HF fast tokenizer file.")
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    model = spec.get("model") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        raise UnsupportedTokenizerError(
            f"{path}: the model is {model.get('type')}"
            f"{' with byte_fallback' if model.get('byte_fallback') else ''}; only Unigram "
            "without byte fallback (XLM-R style SentencePiece) is read here.")
    rules, collapse_spaces = _read_normalizer(path, spec.get("normalizer"))
    replacement, split = _read_metaspace(path, spec.get("pre_tokenizer"))
    pieces = [(piece, float(score)) for piece, score in model["vocab"]]
    added_tokens, lstrip, rstrip = _read_added_tokens(path, spec.get("added_tokens") or [])
    cls_token, sep_token = _read_post_processor(path, spec.get("post_processor"))
    config = _read_tokenizer_config(teacher_dir)
    settings = SentencePieceSettings(
        pieces=pieces, unk_id=int(model.get("unk_id") or 0), rules=rules,
        collapse_spaces=collapse_spaces, replacement=replacement, split=split,
        added_tokens=added_tokens, lstrip=lstrip, rstrip=rstrip, cls_token=cls_token,
        sep_token=sep_token, pad_token=config.get("pad_token", "<pad>"),
        unk_token=config.get("unk_token", pieces[int(model.get("unk_id") or 0)][0]))
    _check_pieces(path, settings)
    return settings


def _unsupported(path, what, found):
    return UnsupportedTokenizerError(
        f"{path}: {what} is {json.dumps(found)[:300]}; the in-graph SentencePiece tokenizer "
        "reads a Precompiled normaliser (optionally then Replace(' {2,}', ' ')) and a Metaspace "
        "pre-tokeniser with prepend_scheme 'always'. Use the 'student_ids' signature or the "
        "TFLite files with your own tokenizer instead.")


def _read_normalizer(path, normalizer):
    """(charsmap rules HF applies, whether runs of spaces collapse) of tokenizer.json's
    normaliser."""
    steps = (normalizer or {}).get("normalizers") if (normalizer or {}).get(
        "type") == "Sequence" else [normalizer]
    steps = [s for s in steps or [] if s]
    collapse = {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}
    if not steps or steps[0].get("type") != "Precompiled" or steps[1:] not in ([], [collapse]):
        raise _unsupported(path, "the normaliser", normalizer)
    charsmap = base64.b64decode(steps[0].get("precompiled_charsmap") or "")
    return read_charsmap(charsmap, _MAX_RULE_CHARS), len(steps) == 2


def _read_metaspace(path, pre_tokenizer):
    """(replacement, split) of a Metaspace pre-tokeniser that prepends to every part."""
    pre_tokenizer = pre_tokenizer or {}
    prepends = pre_tokenizer.get("prepend_scheme", "always" if pre_tokenizer.get(
        "add_prefix_space", True) else "never") == "always"
    if pre_tokenizer.get("type") != "Metaspace" or not prepends:
        raise _unsupported(path, "the pre-tokeniser", pre_tokenizer)
    return pre_tokenizer.get("replacement", "\u2581"), bool(pre_tokenizer.get("split", True))


def _read_added_tokens(path, added):
    """(token -> id, lstrip tokens, rstrip tokens) of the added tokens, all matched in the raw
    text."""
    odd = [t["content"] for t in added if t.get("normalized") or t.get("single_word")]
    if odd:
        raise UnsupportedTokenizerError(
            f"{path}: the added tokens {odd[:5]} are 'normalized' or 'single_word', which the "
            "in-graph SentencePiece tokenizer does not match.")
    return ({t["content"]: int(t["id"]) for t in added},
            tuple(t["content"] for t in added if t.get("lstrip")),
            tuple(t["content"] for t in added if t.get("rstrip")))


def _read_post_processor(path, post):
    """(cls, sep): the special tokens around a single sequence."""
    post = post or {}
    if post.get("type") == "RobertaProcessing":
        return post["cls"][0], post["sep"][0]
    single = post.get("single") or []
    kinds = [next(iter(item)) for item in single]
    if post.get("type") != "TemplateProcessing" or kinds != ["SpecialToken", "Sequence",
                                                            "SpecialToken"]:
        raise _unsupported(path, "the post-processor", post)
    return single[0]["SpecialToken"]["id"], single[2]["SpecialToken"]["id"]


def _read_tokenizer_config(teacher_dir):
    """tokenizer_config.json's special tokens as strings ({} without the file)."""
    path = os.path.join(teacher_dir, "tokenizer_config.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    return {name: value["content"] if isinstance(value, dict) else value
            for name, value in config.items() if name in ("pad_token", "unk_token")}


def _check_pieces(path, settings):
    seen, duplicates = set(), []
    for piece, _ in settings.pieces:
        if piece in seen:
            duplicates.append(piece)
        seen.add(piece)
    if duplicates:
        raise UnsupportedTokenizerError(f"{path}: the Unigram vocabulary repeats the pieces "
                                        f"{duplicates[:5]}, which SentencePiece cannot hold.")
    ids = settings.all_ids()
    missing = [t for t in (settings.cls_token, settings.sep_token, settings.pad_token,
                           settings.unk_token) if t not in ids]
    if missing:
        raise UnsupportedTokenizerError(f"{path}: the vocabulary lacks the tokens {missing}.")


# === The Precompiled normaliser's charsmap ===

def read_charsmap(charsmap, max_chars):
    """{key: output} of a SentencePiece precompiled_charsmap (u32 trie bytes, a darts-clone
    double array of keys, then the NUL-terminated outputs), keeping single characters and keys
    of at most max_chars characters under 6 bytes: the rules HF's Precompiled can apply."""
    if not charsmap:
        return {}
    trie_bytes = int.from_bytes(charsmap[:4], "little")
    units = np.frombuffer(charsmap[4:4 + trie_bytes], np.uint32).astype(np.int64)
    outputs = charsmap[4 + trie_bytes:]
    rules = {}
    for key, output_start in _trie_keys(units, _WHOLE_CLUSTER_BYTES - 1):
        text = key.decode("utf-8", "replace")
        if len(text) == 1 or len(text) <= max_chars:
            end = outputs.index(b"\x00", output_start)
            rules[text] = outputs[output_start:end].decode("utf-8", "replace")
    return rules


def _trie_keys(units, max_bytes):
    """(key bytes, output offset) of every key of at most max_bytes bytes in a darts-clone
    double array (unit: bit 31 leaf, bits 0-7 label, bit 8 has-leaf, bits 10+ offset)."""
    def offset(unit):
        return (unit >> 10) << ((unit & (1 << 9)) >> 6)

    labels = np.arange(1, 256)
    stack = [(0, b"")]
    while stack:
        position, key = stack.pop()
        children = position ^ offset(units[position]) ^ labels  # [255]
        valid = children < len(units)
        found = labels[valid][(units[children[valid]] & ((1 << 31) | 0xFF)) == labels[valid]]
        for label in found:
            child = position ^ offset(units[position]) ^ label
            child_key = key + bytes([label])
            if (units[child] >> 8) & 1:
                yield child_key, int(units[child ^ offset(units[child])] & ((1 << 31) - 1))
            if len(child_key) < max_bytes:
                stack.append((child, child_key))


# === In-graph tokenisation ===

def _literal(text):
    """RE2 pattern matching text literally."""
    return "".join("\\" + c if c in string.punctuation else c for c in text)


def _added_token_pattern(settings):
    """RE2 alternation of the added tokens, longest first, with the whitespace each strips."""
    def pattern(token):
        before = f"{_WHITESPACE}*" if token in settings.lstrip else ""
        after = f"{_WHITESPACE}*" if token in settings.rstrip else ""
        return before + _literal(token) + after

    return "|".join(pattern(t) for t in sorted(settings.added_tokens, key=len, reverse=True))


class SentencePieceGraphTokenizer(PieceTokenizer):
    """Words -> student ids [B, T] and each word's first-piece position (`encode_words`, NER);
    raw texts -> student ids [B, T] (`text_ids`, classification); in the graph.

    Reproduces `tasks.tagging.encode` (the teacher's HF fast tokenizer with
    `is_split_into_words=True`) followed by `StudentVocab.to_student_ids`:
      1. each word is cut at the teacher's added tokens ('<s>', '<mask>' etc. match literally,
         '<mask>' with the whitespace before it);
      2. the other parts are normalised as HF's Precompiled normaliser does (`normalise`), runs
         of spaces made one space;
      3. Metaspace: a part not starting with a space gets one, spaces become '▁', the part is
         cut before each '▁' (pre-tokens; a part normalised to '' has none);
      4. SentencePiece Unigram (Viterbi, unknown characters one '<unk>' per run) on each
         pre-token, with the teacher's pieces and scores;
      5. a word left with no piece (e.g. only U+0001, which the charsmap deletes) becomes
         '<unk>', as in tagging.encode;
      6. '<s>' + the first T - 2 pieces + '</s>', padded with '<pad>' to T; teacher ids are
         mapped to student ids (unseen pieces: 1).
    `text_ids` reproduces `tasks.classification.encode` (the tokenizer on a whole raw text):
    steps 1-4 and 6; no '<unk>' is added for a text without pieces ('' is '<s>' '</s>').
    """

    def __init__(self, settings, student_of_teacher_id, seq_len):
        super().__init__("sentencepiece_tokenizer", settings, student_of_teacher_id, seq_len)
        self._model_unk_id = settings.unk_id
        self._proto_unk_id = len(settings.pieces)
        self.sentencepiece = tf_text.SentencepieceTokenizer(model=settings.model_proto(),
                                                            out_type=tf.int32)
        keys = sorted(settings.rules)
        self.rule_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.string),
                tf.constant([settings.rules[k] for k in keys], tf.string)),
            default_value=_NOT_FOUND)
        added = sorted(settings.added_tokens)
        self.added_token_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(added, tf.string),
                tf.constant([settings.added_tokens[t] for t in added], tf.int64)),
            default_value=-1)
        self._added_pattern = _added_token_pattern(settings)

    # --- Normalisation ---

    def normalise(self, text):
        """HF's Precompiled normaliser (and Replace(' {2,}', ' ')) on [M] valid UTF-8 strings:
        a grapheme cluster under 6 bytes whose first 1-5 characters are a rule's key becomes
        the shortest such rule's output whole; other clusters map each character."""
        chars = tf.strings.unicode_split(text, "UTF-8")  # [M, (K)]
        flat_chars = chars.flat_values  # [K]
        cluster = tf.cumsum(tf.cast(self._starts_cluster(chars), tf.int64)) - 1  # [K]
        clusters = tf.reduce_max(tf.concat([cluster, [-1]], 0)) + 1  # G (0 without text)
        text_of_cluster = tf.math.unsorted_segment_max(chars.value_rowids(), cluster,
                                                       clusters)  # [G]
        graphemes = tf.strings.unsorted_segment_join(flat_chars, cluster, clusters)  # [G]
        char_output = self.rule_table.lookup(flat_chars)
        char_output = tf.where(char_output == _NOT_FOUND, flat_chars, char_output)  # [K]
        by_character = tf.strings.unsorted_segment_join(char_output, cluster, clusters)  # [G]
        whole = tf.fill(tf.shape(graphemes), _NOT_FOUND)  # [G]
        for length in range(_MAX_RULE_CHARS, 0, -1):  # the shortest key wins
            output = self.rule_table.lookup(
                tf.strings.substr(graphemes, 0, length, unit="UTF8_CHAR"))
            whole = tf.where(output == _NOT_FOUND, whole, output)
        use_whole = (whole != _NOT_FOUND) & (
            tf.strings.length(graphemes) < _WHOLE_CLUSTER_BYTES)
        normalised = tf.strings.unsorted_segment_join(
            tf.where(use_whole, whole, by_character), text_of_cluster,
            tf.shape(text, out_type=tf.int64)[0])  # [M]
        if self._settings.collapse_spaces:
            normalised = tf.strings.regex_replace(normalised, " {2,}", " ")
        return normalised

    def _starts_cluster(self, chars):
        """Ragged [M, (K)] characters -> [K] bool: the character starts a grapheme cluster."""
        flat = chars.flat_values
        extend = (tf.strings.regex_full_match(flat, _EXTEND)
                  & ~tf.strings.regex_full_match(flat, _NOT_EXTEND))
        prepend = tf.strings.regex_full_match(flat, _PREPEND)
        control = tf.strings.regex_full_match(flat, _CONTROL) & ~extend & ~prepend

        def previous(values, first_value):
            return tf.concat([[first_value], values[:-1]], axis=0)

        first_of_text = tf.range(tf.size(flat, out_type=tf.int64)) == tf.gather(
            chars.row_starts(), chars.value_rowids())
        crlf = (flat == "\n") & (previous(flat, "") == "\r")
        joins = crlf | (~previous(control, True) & ~control
                        & (extend | previous(prepend, False)))
        return first_of_text | ~joins

    # --- Pieces ---

    def split_added_tokens(self, texts):
        """[N] valid UTF-8 strings -> ragged [N, (M)] parts: added tokens (with the whitespace
        they strip) and the text between them."""
        if not self._added_pattern:
            return tf.RaggedTensor.from_tensor(texts[:, None])
        # regex_split would end a string at NUL: find the parts in a copy with NUL replaced,
        # then cut them out of the input.
        _, start, end = tf_text.regex_split_with_offsets(
            tf.strings.regex_replace(texts, "\\x00", "\x01"), self._added_pattern,
            self._added_pattern)
        return start.with_flat_values(tf.strings.substr(
            tf.gather(texts, start.value_rowids()), start.flat_values,
            end.flat_values - start.flat_values))

    def pre_tokens(self, normalised):
        """Metaspace on [M] normalised parts -> ragged [M, (S)] pre-tokens, each '▁' + text."""
        mark = self._settings.replacement
        text = tf.strings.regex_replace(normalised, " ", mark)
        text = tf.where(tf.strings.regex_full_match(text, f"(?s){_literal(mark)}.*|"),
                        text, mark + text)
        if not self._settings.split:
            return tf.RaggedTensor.from_row_lengths(tf.boolean_mask(text, text != ""),
                                                    tf.cast(text != "", tf.int64))
        # Every non-empty text starts with the mark: the piece before the first is ''.
        cut = tf.strings.split(text, sep=mark)[:, 1:]  # [M, (S)]
        return cut.with_flat_values(mark + cut.flat_values)

    def pieces(self, texts):
        """[N] valid UTF-8 words or whole texts -> ragged [N, (P)] teacher piece ids (none for
        a text without any, e.g. '' or only deleted characters)."""
        parts = self.split_added_tokens(texts)  # [N, (M)]
        flat_parts = parts.flat_values  # [M]
        added_id = self.added_token_table.lookup(
            tf.strings.regex_replace(flat_parts, f"^{_WHITESPACE}+|{_WHITESPACE}+$", ""))
        is_added = tf.strings.regex_full_match(flat_parts, f"(?s)(?:{self._added_pattern})") if (
            self._added_pattern) else tf.zeros_like(flat_parts, tf.bool)
        pre_tokens = self.pre_tokens(self.normalise(
            tf.where(is_added, "", flat_parts)))  # [M, (S)]
        ids = tf.cast(self.sentencepiece.tokenize(pre_tokens.flat_values), tf.int64)  # [S, (P)]
        ids = ids.with_flat_values(tf.where(ids.flat_values == self._proto_unk_id,
                                            tf.constant(self._model_unk_id, tf.int64),
                                            ids.flat_values))
        part_pieces = pre_tokens.with_flat_values(ids).merge_dims(1, 2)  # [M, (P)]
        added = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(added_id, is_added), tf.cast(is_added, tf.int64))  # [M, (0|1)]
        part_pieces = tf.concat([part_pieces, added], axis=1)  # an added part has no pieces
        return parts.with_flat_values(part_pieces).merge_dims(1, 2)  # [N, (P)]


# === Either teacher tokenizer ===
