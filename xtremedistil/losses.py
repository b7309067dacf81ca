"""Distillation losses per position, [B, T] (per example, [B], for sentence tasks); Keras
multiplies them by the mask passed as sample_weight (the objective's mask: padding and, with
'words', non-first pieces get 0)."""

import tensorflow as tf
import tf_keras


def hidden_mse(teacher_hidden, student_hidden):
    """Representation loss: mean squared error over the hidden units, [B, T]."""
    return tf.reduce_mean(tf.square(tf.cast(teacher_hidden, student_hidden.dtype)
                                    - student_hidden), axis=-1)


def layers_mse(teacher_layers, student_layers):
    """Multi-layer representation loss: mean squared error over the mapped layers [B, L, ...]
    and their hidden units, [B, T] (sentence tasks: [B, L, H] -> [B])."""
    return tf.reduce_mean(hidden_mse(teacher_layers, student_layers), axis=1)


def logits_mse(teacher_logits, student_logits):
    """Logit loss of the paper: mean squared error between logits, [B, T]."""
    return hidden_mse(teacher_logits, student_logits)


def teacher_labels(teacher_logits, student_logits):
    """Hard distillation: cross-entropy against the teacher's most likely label, [B, T] or [B]."""
    return tf_keras.losses.sparse_categorical_crossentropy(
        tf.argmax(teacher_logits, axis=-1), student_logits, from_logits=True)


def logits_kl(temperature):
    """Logit loss as KL(teacher || student) of temperature-softened distributions, [B, T]."""
    def loss(teacher_logits, student_logits):
        teacher_logits = tf.cast(teacher_logits, student_logits.dtype)
        teacher_probs = tf.nn.softmax(teacher_logits / temperature)
        kl = tf.reduce_sum(teacher_probs * (tf.nn.log_softmax(teacher_logits / temperature)
                                            - tf.nn.log_softmax(student_logits / temperature)),
                           axis=-1)
        return kl * temperature ** 2
    return loss


def logits_loss(name, temperature=1.0):
    if name == "mse":
        return logits_mse
    if name == "kl":
        return logits_kl(temperature)
    raise ValueError(f"--logits_loss={name}: expected 'mse' or 'kl'.")
