"""The teacher's BERT WordPiece tokenizer, reproduced in the TensorFlow graph.

Legend: B sentences, N words in the batch, M word parts (words cut at the teacher's special
tokens), P word pieces, W most words in a sentence, T seq_len, V_t teacher vocabulary.

`read_wordpiece_settings` reads what the teacher's HF fast tokenizer does (tokenizer.json or
tokenizer_config.json, and vocab.txt); `GraphTokenizer` does the same with TensorFlow and
tensorflow_text ops, so a SavedModel tokenises raw sentences exactly as training did.
Teachers whose tokenizer is not BERT WordPiece (BPE, SentencePiece) raise
UnsupportedTokenizerError.
"""

import dataclasses
import json
import os
import string

import tensorflow as tf
import tensorflow_text as tf_text

from xtremedistil.export.piece_tokenizer import PieceTokenizer
from xtremedistil.students import vocab as vocab_lib

# Characters BERT's normaliser deletes: Cc (but tab, newline, carriage return), Cf, Co, U+FFFD.
_CONTROL_CHARS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}]"
# Unicode White_Space that is not a control character: split like a space inside a word.
_SPACE_CHARS = r"[\p{Zs}\x{2028}\x{2029}]"
# BERT punctuation: all ASCII punctuation and symbols, and Unicode category P.
_PUNCTUATION = r"[!-/:-@\[-`{-~]|\p{P}"
# CJK ideographs, each a token of its own: the ranges of HF tokenizers' BertNormalizer (which
# starts the fifth at U+2B920 where Python BERT has U+2B820).
_CJK = ("[\\x{4E00}-\\x{9FFF}\\x{3400}-\\x{4DBF}\\x{20000}-\\x{2A6DF}\\x{2A700}-\\x{2B73F}"
        "\\x{2B740}-\\x{2B81F}\\x{2B920}-\\x{2CEAF}\\x{F900}-\\x{FAFF}\\x{2F800}-\\x{2FA1F}]")


class UnsupportedTokenizerError(ValueError):
    """The teacher's tokenizer cannot be reproduced in the graph (not BERT WordPiece)."""


# === The teacher's WordPiece tokenizer, as settings ===

@dataclasses.dataclass
class WordPieceSettings:
    """What the teacher's HF fast tokenizer does, read from its tokenizer.json and vocab.txt."""
    piece_ids: dict  # piece -> teacher id (vocab.txt, later duplicates win as in HF)
    lowercase: bool
    strip_accents: bool
    clean_text: bool
    handle_chinese_chars: bool
    unk_token: str
    cls_token: str
    sep_token: str
    pad_token: str
    prefix: str  # continuing sub-word prefix, '##'
    max_chars_per_word: int
    raw_added_tokens: dict  # token -> id, matched in the raw text before normalisation
    normalized_added_tokens: dict  # token -> id, matched after normalisation

    def all_ids(self):
        return {**self.piece_ids, **self.raw_added_tokens, **self.normalized_added_tokens}


def _read_vocab_txt(teacher_dir):
    path = os.path.join(teacher_dir, "vocab.txt")
    if not os.path.exists(path):
        raise UnsupportedTokenizerError(
            f"{teacher_dir} has no vocab.txt: only WordPiece (BERT-style vocab.txt) teachers can "
            "be served with in-graph tokenisation. Use the 'student_ids' signature or the TFLite "
            "files with your own tokenizer instead.")
    with open(path, encoding="utf-8") as f:
        pieces = [line.rstrip("\n") for line in f]
    return {piece: i for i, piece in enumerate(pieces)}


def _settings_from_tokenizer_json(path, piece_ids):
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    model, normalizer = spec.get("model") or {}, spec.get("normalizer") or {}
    pre_tokenizer = spec.get("pre_tokenizer") or {}
    found = (model.get("type"), normalizer.get("type"), pre_tokenizer.get("type"))
    if found != ("WordPiece", "BertNormalizer", "BertPreTokenizer"):
        raise UnsupportedTokenizerError(
            f"{path}: model/normalizer/pre-tokenizer are {found}; only WordPiece with "
            "BertNormalizer and BertPreTokenizer (BERT-style vocab.txt) can be served with "
            "in-graph tokenisation. Use the 'student_ids' signature or the TFLite files with "
            "your own tokenizer instead.")
    lowercase = bool(normalizer.get("lowercase", True))
    strip_accents = normalizer.get("strip_accents")
    added = spec.get("added_tokens") or []
    special = {t["content"] for t in added if t.get("special")}
    post = (spec.get("post_processor") or {}).get("special_tokens") or {}

    def special_token(name, default):
        return name if name in post or name in special else default

    return WordPieceSettings(
        piece_ids=piece_ids, lowercase=lowercase,
        strip_accents=lowercase if strip_accents is None else bool(strip_accents),
        clean_text=bool(normalizer.get("clean_text", True)),
        handle_chinese_chars=bool(normalizer.get("handle_chinese_chars", True)),
        unk_token=model.get("unk_token", "[UNK]"),
        cls_token=special_token("[CLS]", "[CLS]"), sep_token=special_token("[SEP]", "[SEP]"),
        pad_token=(spec.get("padding") or {}).get("pad_token", "[PAD]"),
        prefix=model.get("continuing_subword_prefix", "##"),
        max_chars_per_word=int(model.get("max_input_chars_per_word", 100)),
        raw_added_tokens={t["content"]: t["id"] for t in added if not t.get("normalized")},
        normalized_added_tokens={t["content"]: t["id"] for t in added if t.get("normalized")})


def _settings_from_tokenizer_config(teacher_dir, piece_ids, do_lower_case):
    """A BERT tokenizer saved without tokenizer.json: BERT defaults and tokenizer_config.json."""
    path = os.path.join(teacher_dir, "tokenizer_config.json")
    config = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    lowercase = bool(config.get("do_lower_case", do_lower_case))
    strip_accents = config.get("strip_accents")
    tokens = {name: config.get(f"{name}_token", f"[{name.upper()}]")
              for name in ("unk", "cls", "sep", "pad", "mask")}
    specials = {t: piece_ids[t] for t in tokens.values() if t in piece_ids}
    return WordPieceSettings(
        piece_ids=piece_ids, lowercase=lowercase,
        strip_accents=lowercase if strip_accents is None else bool(strip_accents),
        clean_text=True, handle_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
        unk_token=tokens["unk"], cls_token=tokens["cls"], sep_token=tokens["sep"],
        pad_token=tokens["pad"], prefix="##", max_chars_per_word=100,
        raw_added_tokens=specials, normalized_added_tokens={})


def read_wordpiece_settings(teacher_dir, do_lower_case=True):
    """The teacher tokenizer's settings; UnsupportedTokenizerError unless it is BERT WordPiece."""
    piece_ids = _read_vocab_txt(teacher_dir)
    path = os.path.join(teacher_dir, "tokenizer.json")
    if os.path.exists(path):
        settings = _settings_from_tokenizer_json(path, piece_ids)
    else:
        settings = _settings_from_tokenizer_config(teacher_dir, piece_ids, do_lower_case)
    ids = settings.all_ids()
    missing = [t for t in (settings.unk_token, settings.cls_token, settings.sep_token,
                           settings.pad_token) if t not in ids]
    if missing:
        raise UnsupportedTokenizerError(f"{teacher_dir}/vocab.txt lacks the pieces {missing}.")
    return settings


def student_id_table(settings, student_pieces, teacher_vocab_size):
    """[V_t] int32 array: student id of each teacher id (1, the unknown piece, when unseen).

    student_pieces are the manifest's piece strings (index = student id), found in the
    teacher's vocab.txt and added tokens; the table is StudentVocab.lookup_table's.
    """
    ids = settings.all_ids()
    missing = [piece for piece in student_pieces if piece is not None and piece not in ids]
    if missing:
        raise ValueError(f"student_vocab in config.json has pieces {missing[:5]} that the "
                         "teacher's tokenizer lacks: config.json and teacher/ are from "
                         "different runs.")
    teacher_ids = vocab_lib.teacher_ids_of(student_pieces, ids)
    vocab = vocab_lib.StudentVocab(teacher_ids)
    return vocab.lookup_table(max(teacher_vocab_size, int(teacher_ids.max()) + 1))


# === In-graph tokenisation ===

def _alternatives(tokens):
    """An RE2 alternation matching any of `tokens` literally, longest first."""
    return "|".join(_escape_re2(t) for t in sorted(tokens, key=len, reverse=True))


def _escape_re2(text):
    return "".join("\\" + c if c in string.punctuation else c for c in text)


class GraphTokenizer(PieceTokenizer):
    """Words -> student ids [B, T] and each word's first-piece position, in the graph
    (`encode_words`, NER's words, split by `export.spans.split_words`); raw texts -> student
    ids [B, T] (`text_ids`, classification).

    Reproduces `tasks.tagging.encode` (HF fast BERT tokenizer, `is_split_into_words=True`)
    followed by `StudentVocab.to_student_ids`:
      1. (the words come split: training data's words, or raw text split as BERT's basic
         tokenizer does);
      2. each word is cut at the teacher's special tokens ('[SEP]' etc. match literally);
      3. the other parts are normalised as BertNormalizer does: control characters deleted,
         other Unicode spaces made spaces, accents stripped (NFD, then no Mn), lower-cased;
      4. split at spaces, punctuation and CJK ideographs (BertPreTokenizer), so a word like
         "U.S." gives several tokens, all pieces of that one word;
      5. WordPiece with the teacher's vocab.txt (tokens over 100 characters: [UNK]);
      6. a word left with no piece at all (e.g. only a zero-width space) becomes [UNK], as in
         tagging.encode, which however leaves such words without a piece after a sentence's
         last word with pieces (they get tag 'O' there, a predicted tag here);
      7. [CLS] + the first T - 2 pieces + [SEP], padded with [PAD] to T; teacher ids are mapped
         to student ids (unseen pieces: 1).
    `text_ids` reproduces `tasks.classification.encode` (the HF tokenizer on a whole raw text,
    `tokenizer(texts, truncation=True, max_length=T, padding="max_length")`): steps 2-5 on the
    whole text (whitespace is a split like punctuation, after normalisation, so characters the
    normaliser deletes join their neighbours as in HF), then step 7; no [UNK] is added for a
    text without pieces (an empty text is [CLS] [SEP]).
    """

    def __init__(self, settings, student_of_teacher_id, seq_len):
        super().__init__("graph_tokenizer", settings, student_of_teacher_id, seq_len)
        ids = settings.all_ids()
        pieces = sorted(ids)
        self.piece_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(pieces), tf.constant([ids[p] for p in pieces], tf.int64)),
            default_value=-1)
        self.wordpiece = tf_text.WordpieceTokenizer(
            self.piece_table, suffix_indicator=settings.prefix,
            max_bytes_per_word=4 * settings.max_chars_per_word + 4, token_out_type=tf.int64,
            unknown_token=settings.unk_token)
        self._raw_added = _alternatives(settings.raw_added_tokens)
        keep = [_PUNCTUATION] + ([_CJK] if settings.handle_chinese_chars else [])
        added = list(settings.raw_added_tokens) + list(settings.normalized_added_tokens)
        if added:
            keep.insert(0, _alternatives(added))
        self._keep_pattern = "|".join(keep)

    def normalise(self, text):
        """BertNormalizer on [M] strings (words or word parts; no special tokens)."""
        settings = self._settings
        if settings.clean_text:
            text = tf.strings.regex_replace(text, _CONTROL_CHARS, "")
        text = tf.strings.regex_replace(text, _SPACE_CHARS, " ")
        if settings.strip_accents:
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
        if settings.lowercase:
            # HF lower-cases character by character; ICU would turn a final 'Σ' into 'ς'.
            text = tf.strings.regex_replace(text, "\u03a3", "\u03c3")
            text = tf.strings.lower(text, encoding="utf-8")
        return text

    def pieces(self, words):
        """[N] words or whole texts -> ragged [N, (P)] teacher piece ids (none for a text
        without any, e.g. '' or only spaces)."""
        words = tf.strings.regex_replace(words, "\\x00", "")  # regex_split stops at NUL
        if self._raw_added:
            parts = tf_text.regex_split(words, self._raw_added, self._raw_added)  # [N, (M)]
        else:
            parts = tf.RaggedTensor.from_tensor(words[:, None])
        flat_parts = parts.flat_values  # [M]
        text = self.normalise(flat_parts)
        if self._raw_added:
            is_added = tf.strings.regex_full_match(flat_parts, f"(?:{self._raw_added})")
            text = tf.where(is_added, flat_parts, text)
        tokens = tf_text.regex_split(text, r"\s+|" + self._keep_pattern, self._keep_pattern)
        too_long = tf.strings.length(tokens.flat_values, unit="UTF8_CHAR") > (
            self._settings.max_chars_per_word)
        tokens = tokens.with_flat_values(
            tf.where(too_long, self._settings.unk_token, tokens.flat_values))  # [M, (S)]
        pieces = self.wordpiece.tokenize(tokens).merge_dims(1, 2)  # [M, (P)]
        return parts.with_flat_values(pieces).merge_dims(1, 2)  # [N, (P)]
