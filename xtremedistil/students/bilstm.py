"""The XtremeDistil student: factorised teacher word embeddings, a BiLSTM, a projection to the
teacher's width and a dense output layer.

Tagging ('tokens'): the BiLSTM states of every piece are projected and classified. Sentence
tasks ('sentence', 'pair'; Mukherjee & Awadallah 2020): a BiLSTM whose states at real pieces
never see the padding (`PaddingFreeBiLSTM`) is pooled over the real pieces (mean and max); a
pair's two texts go through the same embeddings and BiLSTM, and the pair is classified from
[u, v, |u - v|, u * v] of their pooled states u, v.

Dropout (--student_dropout, at --dropout_rate): 'after_lstm' once, after the BiLSTM (the
pooled state for sentence tasks); 'paper' where the original code has it: on the embeddings,
inside the LSTM (inputs and recurrent state), after the BiLSTM, and before the output layer
(not on 'hidden', which stage 1 distils).

Legend: B batch, T seq_len, V student vocabulary, E word_emb_dim, L bilstm_hidden_size,
H teacher hidden size (of the distilled teacher layer), C labels.
"""

import tensorflow as tf
import tf_keras

from xtremedistil import students


class BiLSTMStudent(students.Student):
    name = "bilstm"
    layer_groups = {"logits": ("logits",), "projection": ("projection",),
                    "bilstm": ("bilstm",), "word_embeddings": ("word_embeddings",)}

    def build(self, dims, embeddings=None, batch_size=None):
        options = self.options
        paper = options.student_dropout == "paper"
        # Dropout is inactive at inference; a static batch (the TFLite export) builds the LSTM
        # without it, so the converter still fuses it (same weights).
        lstm_dropout = options.dropout_rate if paper and batch_size is None else 0.0
        word_embeddings = students.word_embeddings(dims, options, embeddings)
        embedding_dropout = tf_keras.layers.Dropout(options.dropout_rate,
                                                    name="embedding_dropout")

        def embed(ids):  # [B, T] -> [B, T, E]
            x = word_embeddings(ids)
            return embedding_dropout(x) if paper else x

        student_ids = tf_keras.Input((dims.input_len,), batch_size=batch_size, dtype=tf.int32,
                                     name="student_ids")
        if dims.output == "tokens":
            bilstm = tf_keras.layers.Bidirectional(
                tf_keras.layers.LSTM(options.bilstm_hidden_size, return_sequences=True,
                                     dropout=lstm_dropout, recurrent_dropout=lstm_dropout),
                name="bilstm")
            features = bilstm(embed(student_ids))  # [B, T, 2L]
        elif dims.output in ("sentence", "pair"):
            bilstm = PaddingFreeBiLSTM(options.bilstm_hidden_size, lstm_dropout, name="bilstm")

            def pooled(ids):  # [B, T] -> [B, 4L]
                mask = tf.cast(tf.not_equal(ids, 0), tf.float32)  # student id 0: padding
                states = bilstm([embed(ids), tf.cast(tf.reduce_sum(mask, 1), tf.int32)])
                return masked_pool(states, mask)

            if dims.output == "sentence":
                features = pooled(student_ids)
            else:
                u = pooled(student_ids[:, :dims.seq_len])
                v = pooled(student_ids[:, dims.seq_len:])
                features = tf.concat([u, v, tf.abs(u - v), u * v], axis=-1)  # [B, 16L]
        else:
            raise ValueError(f"Student {self.name}: unknown output {dims.output!r}.")
        x = tf_keras.layers.Dropout(options.dropout_rate, name="dropout")(features)
        x = tf_keras.layers.Dense(dims.teacher_hidden_size, activation="gelu",
                                  name="projection")(x)  # [B, (T,) H]
        to_logits = (tf_keras.layers.Dropout(options.dropout_rate, name="output_dropout")(x)
                     if paper else x)
        # float32 outputs keep losses and softmax stable under a mixed-precision policy.
        hidden = tf_keras.layers.Activation("linear", dtype="float32", name="hidden")(x)
        logits = tf_keras.layers.Dense(dims.num_labels, dtype="float32",
                                       name="logits")(to_logits)
        return tf_keras.Model(student_ids, {"hidden": hidden, "logits": logits}, name="student")


def masked_pool(states, mask):
    """[B, T, D] LSTM states, [B, T] mask of real pieces -> [B, 2D]: their mean and their max.

    LSTM states lie in (-1, 1), so padding set to -2 never wins the max; a huge sentinel would
    also work in float but stretch the int8 range of the tensor until real states round to 0.
    """
    weights = mask[:, :, tf.newaxis]
    mean = tf.reduce_sum(states * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, 1), 1.0)
    maximum = tf.reduce_max(states * weights - 2.0 * (1.0 - weights), axis=1)
    return tf.concat([mean, maximum], axis=-1)


def reverse_real_pieces(sequences, lengths):
    """[B, T, D] -> the first lengths[b] positions of each row reversed, the padding in place.

    A gather, not tf.reverse_sequence: LiteRT's REVERSE_SEQUENCE has no int8 kernel, GATHER has,
    so the full-integer TFLite student runs.
    """
    positions = tf.range(tf.shape(sequences)[1])[tf.newaxis, :]
    lengths = tf.cast(lengths, tf.int32)[:, tf.newaxis]
    source = tf.where(positions < lengths, lengths - 1 - positions, positions)
    return tf.gather(sequences, source, batch_dims=1)


@tf_keras.utils.register_keras_serializable("xtremedistil")
class PaddingFreeBiLSTM(tf_keras.layers.Layer):
    """A BiLSTM whose states at real pieces do not depend on the padding after them.

    Called on [inputs [B, T, E], lengths [B]]. The forward LSTM reads the padding only after
    the real pieces; the backward one reads each sequence's real pieces reversed (by length),
    so its padding comes last too. A Keras mask would do the same, but a masked LSTM does not
    convert to TFLite's fused LSTM; these two plain ones do.
    """

    def __init__(self, units, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout = units, dropout
        self.forward_lstm, self.backward_lstm = (
            tf_keras.layers.LSTM(units, return_sequences=True, dropout=dropout,
                                 recurrent_dropout=dropout, name=name)
            for name in ("forward", "backward"))

    def call(self, inputs, training=None):
        sequences, lengths = inputs
        forward = self.forward_lstm(sequences, training=training)
        backward = reverse_real_pieces(
            self.backward_lstm(reverse_real_pieces(sequences, lengths), training=training), lengths)
        return tf.concat([forward, backward], axis=-1)  # [B, T, 2L]

    def get_config(self):
        return dict(super().get_config(), units=self.units, dropout=self.dropout)
