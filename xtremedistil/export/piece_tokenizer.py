"""What the in-graph teacher tokenizers share: teacher piece ids -> the student's ids.

Legend: B sentences, N words in the batch, P word pieces, W most words in a sentence,
T seq_len.
"""

import tensorflow as tf
import tensorflow_text as tf_text


class PieceTokenizer(tf.Module):
    """Base of `wordpiece.GraphTokenizer` and `sentencepiece.SentencePieceGraphTokenizer`.

    A subclass gives `pieces(texts)`: [N] valid UTF-8 words or whole texts -> ragged [N, (P)]
    teacher piece ids. This class turns them into what `tasks.tagging.encode` and
    `tasks.classification.encode` followed by `StudentVocab.to_student_ids` give: the teacher's
    start token + the first T - 2 pieces + its end token, padded with its padding token, each
    teacher id mapped to the student's (unseen pieces: 1)."""

    def __init__(self, name, settings, student_of_teacher_id, seq_len):
        super().__init__(name=name)
        self._settings = settings
        self._seq_len = seq_len
        ids = settings.all_ids()
        self._cls_id, self._sep_id = ids[settings.cls_token], ids[settings.sep_token]
        self._pad_id, self._unk_id = ids[settings.pad_token], ids[settings.unk_token]
        self.student_of_teacher_id = tf.Variable(student_of_teacher_id, trainable=False,
                                                 name="student_of_teacher_id")

    def pieces(self, texts):
        raise NotImplementedError

    def word_pieces(self, words):
        """[N] words -> ragged [N, (P)] teacher piece ids, at least one per word (a word left
        with none is the unknown piece, as in tagging.encode)."""
        pieces = self.pieces(words)  # [N, (P)]
        pieceless = tf.cast(pieces.row_lengths() == 0, tf.int64)
        unknown = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(pieceless)], tf.constant(self._unk_id, tf.int64)), pieceless)
        return tf.concat([pieces, unknown], axis=1)

    def encode_words(self, words):
        """Ragged [B, (W)] words -> (student ids [B, T], first-piece positions ragged [B, (W)]
        int64; positions >= T - 1 mean the word was cut off)."""
        flat_words = tf_text.coerce_to_structurally_valid_utf8(words.flat_values)  # [N]
        pieces = self.word_pieces(flat_words)  # [N, (P)]
        sentence_pieces = words.with_flat_values(pieces).merge_dims(1, 2)  # [B, (P)]
        before_word = tf.cumsum(pieces.row_lengths(), exclusive=True)  # [N]
        sentence_start = tf.gather(sentence_pieces.row_starts(), words.value_rowids())  # [N]
        first_piece = 1 + before_word - sentence_start  # [N], after the start token
        return self.student_ids(sentence_pieces), words.with_flat_values(first_piece)

    def text_ids(self, texts):
        """[B] raw texts -> student ids [B, T], as tasks.classification.encode gives them."""
        return self.student_ids(self.pieces(tf_text.coerce_to_structurally_valid_utf8(texts)))

    def student_ids(self, sentence_pieces):
        """Ragged [B, (P)] teacher piece ids -> student ids [B, T]."""
        body = sentence_pieces[:, :self._seq_len - 2]  # [B, (<= T - 2)]
        cls = tf.fill([body.nrows(), 1], tf.constant(self._cls_id, tf.int64))  # [B, 1]
        sep = tf.fill([body.nrows(), 1], tf.constant(self._sep_id, tf.int64))  # [B, 1]
        teacher_ids = tf.concat([cls, body, sep], axis=1).to_tensor(
            default_value=tf.constant(self._pad_id, tf.int64), shape=[None, self._seq_len])
        return tf.gather(self.student_of_teacher_id, teacher_ids)  # [B, T]
