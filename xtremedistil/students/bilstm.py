"""The XtremeDistil student: factorised teacher word embeddings, a BiLSTM, a projection to the
teacher's width and a dense output layer.

Dropout (--student_dropout, at --dropout_rate): 'after_lstm' once, after the BiLSTM; 'paper'
where the original code has it: on the embeddings, inside the LSTM (inputs and recurrent
state), after the BiLSTM, and before the output layer (not on 'hidden', which stage 1 distils).

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
        # === Layers ===
        embedding_init = (tf_keras.initializers.Constant(embeddings) if embeddings is not None
                          else "uniform")
        word_embeddings = tf_keras.layers.Embedding(
            dims.vocab_size, options.word_emb_dim, embeddings_initializer=embedding_init,
            name="word_embeddings")
        paper = options.student_dropout == "paper"
        # Dropout is inactive at inference; a static batch (the TFLite export) builds the LSTM
        # without it, so the converter still fuses it (same weights).
        lstm_dropout = options.dropout_rate if paper and batch_size is None else 0.0
        bilstm = tf_keras.layers.Bidirectional(
            tf_keras.layers.LSTM(options.bilstm_hidden_size, return_sequences=True,
                                 dropout=lstm_dropout, recurrent_dropout=lstm_dropout),
            name="bilstm")
        dropout = tf_keras.layers.Dropout(options.dropout_rate, name="dropout")
        projection = tf_keras.layers.Dense(dims.teacher_hidden_size, activation="gelu",
                                           name="projection")
        # float32 outputs keep losses and softmax stable under a mixed-precision policy.
        hidden = tf_keras.layers.Activation("linear", dtype="float32", name="hidden")
        logits = tf_keras.layers.Dense(dims.num_labels, dtype="float32", name="logits")

        # === Functional Model ===
        student_ids = tf_keras.Input((dims.seq_len,), batch_size=batch_size, dtype=tf.int32,
                                     name="student_ids")
        x = word_embeddings(student_ids)  # [B, T, E]
        if paper:
            x = tf_keras.layers.Dropout(options.dropout_rate, name="embedding_dropout")(x)
        x = bilstm(x)  # [B, T, 2L]
        x = dropout(x)
        x = projection(x)  # [B, T, H]
        to_logits = (tf_keras.layers.Dropout(options.dropout_rate, name="output_dropout")(x)
                     if paper else x)
        return tf_keras.Model(student_ids, {"hidden": hidden(x), "logits": logits(to_logits)},
                              name="student")
