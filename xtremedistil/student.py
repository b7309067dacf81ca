"""The student: factorised teacher word embeddings, a BiLSTM, a projection head and a tagger.

Legend: B batch, T seq_len, V student vocabulary, E word_emb_dim, L bilstm_hidden_size,
H teacher hidden size (of the distilled teacher layer), C number of tags.
"""

import numpy as np
import tensorflow as tf
import tf_keras

# Layer groups from the top down, the order of gradual unfreezing.
LAYERS_TOP_DOWN = ("logits", "projection", "bilstm", "word_embeddings")


def factorise_embeddings(teacher_embeddings, teacher_ids, word_emb_dim):
    """[V, E] PCA of the teacher's embeddings of the student's pieces (rows in student order)."""
    rows = teacher_embeddings[teacher_ids].astype(np.float64)  # [V, H_emb]
    centred = rows - rows.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    dims = min(word_emb_dim, s.shape[0])
    factorised = np.zeros((rows.shape[0], word_emb_dim))
    factorised[:, :dims] = u[:, :dims] * s[:dims]
    # Scale to unit variance per row so the LSTM sees inputs of a familiar size.
    factorised /= factorised.std() + 1e-8
    return factorised.astype(np.float32)


def build_student(vocab_size, seq_len, num_tags, teacher_hidden_size, word_emb_dim=100,
                  bilstm_hidden_size=128, dropout_rate=0.1, embeddings=None, batch_size=None):
    """A tf.keras functional tagger: student ids [B, T] -> logits [B, T, C].

    A static `batch_size` (e.g. 1) gives a graph that TFLite converts to fused LSTM ops.
    """
    # === Layers ===
    embedding_init = (tf_keras.initializers.Constant(embeddings) if embeddings is not None
                      else "uniform")
    word_embeddings = tf_keras.layers.Embedding(
        vocab_size, word_emb_dim, embeddings_initializer=embedding_init, name="word_embeddings")
    bilstm = tf_keras.layers.Bidirectional(
        tf_keras.layers.LSTM(bilstm_hidden_size, return_sequences=True), name="bilstm")
    dropout = tf_keras.layers.Dropout(dropout_rate, name="dropout")
    projection = tf_keras.layers.Dense(teacher_hidden_size, activation="gelu", name="projection")
    # float32 logits keep losses and softmax stable under a mixed-precision policy.
    logits = tf_keras.layers.Dense(num_tags, dtype="float32", name="logits")

    # === Functional Model ===
    student_ids = tf_keras.Input((seq_len,), batch_size=batch_size, dtype=tf.int32,
                                 name="student_ids")
    x = word_embeddings(student_ids)  # [B, T, E]
    x = bilstm(x)  # [B, T, 2L]
    x = dropout(x)
    x = projection(x)  # [B, T, H]
    outputs = logits(x)  # [B, T, C]
    return tf_keras.Model(student_ids, outputs, name="student")


def representation_model(student):
    """The student up to its projection head: ids [B, T] -> [B, T, H] float32, sharing weights."""
    projection = student.get_layer("projection").output
    as_float32 = tf_keras.layers.Activation("linear", dtype="float32", name="projection_float32")
    return tf_keras.Model(student.input, as_float32(projection), name="student_representation")


def set_trainable(student, layer_names):
    for name in LAYERS_TOP_DOWN:
        student.get_layer(name).trainable = name in layer_names


def count_params(model):
    return int(sum(np.prod(w.shape) for w in model.weights))
