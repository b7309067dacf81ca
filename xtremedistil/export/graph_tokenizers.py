"""The teacher's tokenizer in the graph, whichever kind it is: BERT WordPiece
(`wordpiece.GraphTokenizer`) or SentencePiece Unigram (`sentencepiece.SentencePieceGraphTokenizer`).
BPE teachers (RoBERTa, GPT-2 style) have none: no in-graph BPE tokenizer exists in TensorFlow or
tensorflow-text, so they stay TFLite-only (UnsupportedTokenizerError).
"""

from xtremedistil.export import wordpiece
from xtremedistil.export.sentencepiece import (SentencePieceGraphTokenizer,
                                               SentencePieceSettings,
                                               read_sentencepiece_settings)
from xtremedistil.export.wordpiece import UnsupportedTokenizerError, student_id_table


def read_settings(teacher_dir, do_lower_case=True):
    """WordPieceSettings (BERT WordPiece) or SentencePieceSettings (Unigram) of the teacher's
    tokenizer; UnsupportedTokenizerError for any other (BPE teachers stay TFLite-only)."""
    try:
        return wordpiece.read_wordpiece_settings(teacher_dir, do_lower_case)
    except UnsupportedTokenizerError as wordpiece_error:
        try:
            return read_sentencepiece_settings(teacher_dir)
        except UnsupportedTokenizerError as sentencepiece_error:
            raise UnsupportedTokenizerError(
                f"the teacher's tokenizer is neither BERT WordPiece ({wordpiece_error}) nor "
                f"SentencePiece Unigram ({sentencepiece_error})") from None


def build(settings, student_pieces, teacher_vocab_size, seq_len):
    """The in-graph tokenizer of `read_settings`'s settings, mapping teacher
    pieces to the student's (student_pieces: the manifest's piece strings)."""
    table = student_id_table(settings, student_pieces, teacher_vocab_size)
    if isinstance(settings, SentencePieceSettings):
        return SentencePieceGraphTokenizer(settings, table, seq_len)
    return wordpiece.GraphTokenizer(settings, table, seq_len)
