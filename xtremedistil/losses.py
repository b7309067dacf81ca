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


def attention_kl(teacher_attention, student_attention):
    """Attention loss (MiniLM): KL(teacher || student) of each query piece's attention
    distribution over the pieces, averaged over the distilled maps.

    [B, L, T, T]: L maps (of each distilled layer, its heads averaged or each head's own:
    --attention_heads; rows sum to 1; padded rows of the teacher's are all 0 and count 0)
    -> [B, T], per query piece. Keys the teacher gives 0 (padding) count 0 too, so a
    student's 0 there never makes log(0) a NaN.
    """
    teacher = tf.cast(teacher_attention, student_attention.dtype)
    kl = tf.reduce_sum(tf.math.xlogy(teacher, teacher)
                       - teacher * tf.math.log(student_attention + 1e-8), axis=-1)
    return tf.reduce_mean(kl, axis=1)


def attention_mse(teacher_attention, student_attention):
    """Attention loss as the mean squared error of the attention weights: [B, L, T, T] ->
    [B, T], per query piece (mean over keys and layers)."""
    return tf.reduce_mean(tf.reduce_mean(tf.square(
        tf.cast(teacher_attention, student_attention.dtype) - student_attention), -1), 1)


def per_example(position_loss):
    """A per-query-piece attention loss [B, T] as one value per example [B] (sentence tasks):
    its mean over the real pieces, those the teacher's map attends to at all."""
    def loss(teacher_attention, student_attention):
        # [B, T]: 1 where some query attends to the key (real pieces), 0 at padding.
        real = tf.cast(tf.reduce_max(teacher_attention, axis=[1, 2]) > 0,
                       student_attention.dtype)
        values = position_loss(teacher_attention, student_attention)
        return tf.reduce_sum(values * real, -1) / tf.maximum(tf.reduce_sum(real, -1), 1.0)
    return loss


def attention_loss(name, per_position=True):
    """--attention_loss: 'kl' or 'mse', per query piece [B, T] (tagging) or, without
    per_position, per example [B] (sentence tasks)."""
    losses = {"kl": attention_kl, "mse": attention_mse}
    if name not in losses:
        raise ValueError(f"--attention_loss={name}: expected 'kl' or 'mse'.")
    return losses[name] if per_position else per_example(losses[name])


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
