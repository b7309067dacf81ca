"""A small BERT-style transformer student (XtremeDistilTransformers: Mukherjee, Hassan Awadallah
and Gao 2021): factorised teacher word embeddings projected to the encoder's width, learned
positions, --num_hidden_layers post-norm encoder layers, a projection to the teacher's width
and a dense output layer.

Tagging ('tokens'): every piece's last state is projected and classified. Sentence tasks: the
mean of the real pieces' states; a pair's two texts go through the same encoder on their own
and the pair is classified from [u, v, |u - v|, u * v], as the BiLSTM student does.

With --distil_multi_hidden_states it also outputs 'layers' [B, L, (T,) H]: each encoder
layer's states (pooled as above for sentence tasks) through a learned linear map to the
teacher's width, which the recipe's 'layers' stage distils from the mapped teacher layers.
With --distil_attention it outputs 'attention' [B, L_a * M, T, T]: the attention distributions
of the layers --attention_layers names, their heads averaged (M = 1: any teacher head count
fits) or each head's own (M = N, --attention_heads=match), which the 'attention' stage distils
(not for pairs, whose texts the teacher reads together).

Its word embeddings (--word_emb_dim wide, the teacher's compressed by PCA:
--compress_word_embedding; frozen with --freeze_word_embedding) are projected to
--hidden_size; a projection from as wide as the encoder starts as the identity. Its position
table has the run's --seq_len rows: a build for shorter inputs (export) uses the first ones.

Its layer groups, from the top down, are the output layer, the projection, each encoder layer
(the last first) and the embeddings: the stage-wise recipes unfreeze them one at a time from the
top, the paper's gradual unfreezing. Written with tf-keras layers and plain TensorFlow ops, so
a static-batch build converts to TFLite with builtin ops.

Legend: B batch, T pieces, V student vocabulary, E word_emb_dim, D hidden_size, N heads,
F intermediate_size, H teacher hidden size, C labels.
"""

import math
import os

import numpy as np
import tensorflow as tf
import tf_keras
import transformers

from xtremedistil import students
from xtremedistil import teacher as teacher_lib
from xtremedistil.students import vocab as vocab_lib

# BERT's initialisation (initializer_range 0.02) for every kernel of the encoder and the maps
# out of it. With Keras' default (Glorot: ~0.06-0.09 at these widths) the distilled encoder
# collapsed to one state for every piece within 50 steps of the representation stage and
# took hundreds more to recover (PAN-X, multilingual-e5-small teacher: a dev F1 of 0 after
# every logits stage); with 0.02 it learns from the first steps.
def bert_initializer():
    return tf_keras.initializers.TruncatedNormal(stddev=0.02)


EMBEDDING_LAYERS = ("word_embeddings", "embedding_projection", "position_embeddings",
                    "embedding_norm")


class TransformerStudent(students.Student):
    name = "transformer"
    # At 1e-3 a pair student distilled on 20,000 pairs collapses to the teacher's mean output
    # (RESULTS #80, #84); PAN-X scores the same at 3e-4 (#78).
    OPTIONS = {"distil_learning_rate": 3e-4}

    @property
    def layer_groups(self):
        layers = self.options.num_hidden_layers
        return {"logits": ("logits",), "projection": ("projection",),
                **{f"layer_{i}": (f"layer_{i}",) for i in range(layers, 0, -1)},
                "embeddings": EMBEDDING_LAYERS}

    def export_checkpoint(self, model, manifest, folder):
        return save_checkpoint(model, manifest, folder)

    def load_checkpoint(self, model, folder, pieces):
        from_bert(model, self.options, folder, pieces)

    def build(self, dims, embeddings=None, batch_size=None):
        options = self.options
        if dims.seq_len > options.seq_len:
            raise ValueError(f"The transformer student has {options.seq_len} positions "
                             f"(--seq_len of its run): it reads at most {options.seq_len} "
                             f"pieces, not {dims.seq_len}.")
        word_embeddings = students.word_embeddings(dims, options, embeddings)
        # Embeddings as wide as the encoder (PCA to --hidden_size) enter it as they are at
        # first: the projection starts as the identity.
        to_width = tf_keras.layers.Dense(
            options.hidden_size, name="embedding_projection",
            kernel_initializer=("identity" if options.word_emb_dim == options.hidden_size
                                else bert_initializer()))
        # As many positions as the run's --seq_len, whatever length this build reads.
        positions = PositionEmbedding(options.seq_len, name="position_embeddings")
        embedding_norm = tf_keras.layers.LayerNormalization(epsilon=1e-12, name="embedding_norm")
        dropout = tf_keras.layers.Dropout(options.dropout_rate, name="embedding_dropout")
        layers = [EncoderLayer(options.hidden_size, options.num_attention_heads,
                               options.intermediate_size, options.dropout_rate,
                               name=f"layer_{i}") for i in range(1, options.num_hidden_layers + 1)]

        def encode(ids):
            """[B, T] -> ([B, T, D] states of each layer, [B, T] mask of real pieces,
            [[B, M, T, T] attention of each layer, heads averaged (M = 1) or not])."""
            mask = tf.cast(tf.not_equal(ids, 0), tf.float32)  # student id 0: padding
            x = dropout(embedding_norm(positions(to_width(word_embeddings(ids)))))
            states, attention = [], []
            for layer in layers:
                x, probabilities = layer([x, mask])
                states.append(x)
                attention.append(teacher_lib.grouped_heads(
                    probabilities, options.attention_maps_per_layer))
            return states, mask, attention

        def pooled(ids):  # [B, T] -> [[B, D] of each layer]
            states, mask, _ = encode(ids)
            return [masked_mean(x, mask) for x in states]

        student_ids = tf_keras.Input((dims.input_len,), batch_size=batch_size, dtype=tf.int32,
                                     name="student_ids")
        attention = None  # a pair's two texts attend each within itself: no joint map
        if dims.output == "tokens":
            per_layer, _, attention = encode(student_ids)  # [B, T, D] each
        elif dims.output == "sentence":
            states, mask, attention = encode(student_ids)
            per_layer = [masked_mean(x, mask) for x in states]  # [B, D] each
        elif dims.output == "pair":
            per_layer = [tf.concat([u, v, tf.abs(u - v), u * v], axis=-1)  # [B, 4D] each
                         for u, v in zip(pooled(student_ids[:, :dims.seq_len]),
                                         pooled(student_ids[:, dims.seq_len:]))]
        else:
            raise ValueError(f"Student {self.name}: unknown output {dims.output!r}.")
        outputs = {}
        if options.distil_attention:
            if attention is None:
                raise ValueError("--distil_attention: the student reads a pair's texts "
                                 "apart, the teacher together; their attention maps differ.")
            # [B, L_a * M, T, T]: the layers whose attention the 'attention' stage distils.
            outputs["attention"] = tf_keras.layers.Activation(
                "linear", dtype="float32", name="attention")(
                    tf.concat([attention[i - 1] for i in options.attention_student_layers],
                              axis=1))
        if options.distil_multi_hidden_states:
            # Each layer mapped to the teacher's width: what --distil_multi_hidden_states
            # distils (the maps are used by nothing else).
            mapped = [tf_keras.layers.Dense(dims.teacher_hidden_size, name=f"layer_map_{i}",
                                            kernel_initializer=bert_initializer())(f)
                      for i, f in enumerate(per_layer, 1)]
            outputs["layers"] = tf_keras.layers.Activation(
                "linear", dtype="float32", name="layers")(tf.stack(mapped, axis=1))
        x = tf_keras.layers.Dropout(options.dropout_rate, name="dropout")(per_layer[-1])
        x = tf_keras.layers.Dense(dims.teacher_hidden_size, activation="gelu",
                                  kernel_initializer=bert_initializer(),
                                  name="projection")(x)  # [B, (T,) H]
        hidden = tf_keras.layers.Activation("linear", dtype="float32", name="hidden")(x)
        logits = tf_keras.layers.Dense(dims.num_labels, dtype="float32", name="logits")(x)
        outputs.update(hidden=hidden, logits=logits)
        return tf_keras.Model(student_ids, outputs, name="student")


def to_bert(model, options, seq_len, table=None, pad_token_id=0):
    """A transformers TFBertModel computing the student's encoder: its last_hidden_state is the
    last encoder layer's states (the real pieces as attention_mask). The factorised embeddings
    and their projection fold into one [V, D] table, the projection's bias into the one token
    type embedding; q, k and v are the thirds of each layer's qkv kernel.

    table: [V, E] word embeddings of the checkpoint's token ids (a teacher tokenizer's,
    `checkpoint_table`); None: the student's own, in its ids.
    """
    if table is None:
        table = model.get_layer("word_embeddings").get_weights()[0]
    kernel, bias = model.get_layer("embedding_projection").get_weights()
    config = transformers.BertConfig(
        vocab_size=table.shape[0], pad_token_id=pad_token_id, hidden_size=options.hidden_size,
        num_hidden_layers=options.num_hidden_layers,
        num_attention_heads=options.num_attention_heads,
        intermediate_size=options.intermediate_size, max_position_embeddings=seq_len,
        type_vocab_size=1, hidden_act="gelu", layer_norm_eps=1e-12,
        hidden_dropout_prob=options.dropout_rate, attention_probs_dropout_prob=0.0)
    bert = transformers.TFBertModel(config)
    bert(bert.dummy_inputs)
    values = {"embeddings/word_embeddings/weight": table @ kernel,
              "embeddings/token_type_embeddings/embeddings": bias[np.newaxis],
              "embeddings/position_embeddings/embeddings":
                  model.get_layer("position_embeddings").get_weights()[0],
              "embeddings/LayerNorm/gamma": model.get_layer("embedding_norm").get_weights()[0],
              "embeddings/LayerNorm/beta": model.get_layer("embedding_norm").get_weights()[1]}
    for i in range(options.num_hidden_layers):
        layer = model.get_layer(f"layer_{i + 1}")
        qkv_kernel, qkv_bias = layer.qkv.get_weights()
        prefix = f"encoder/layer_._{i}/"
        for part, name in enumerate(("query", "key", "value")):
            columns = slice(part * options.hidden_size, (part + 1) * options.hidden_size)
            values[f"{prefix}attention/self/{name}/kernel"] = qkv_kernel[:, columns]
            values[f"{prefix}attention/self/{name}/bias"] = qkv_bias[columns]
        for ours, theirs in ((layer.attention_output, "attention/output/dense"),
                             (layer.attention_norm, "attention/output/LayerNorm"),
                             (layer.intermediate, "intermediate/dense"),
                             (layer.output_dense, "output/dense"),
                             (layer.output_norm, "output/LayerNorm")):
            first, second = ours.get_weights()
            names = ("gamma", "beta") if "LayerNorm" in theirs else ("kernel", "bias")
            values[f"{prefix}{theirs}/{names[0]}"] = first
            values[f"{prefix}{theirs}/{names[1]}"] = second
    assigned = 0
    for weight in bert.weights:
        name = weight.name.split(":")[0].split("bert/", 1)[-1]
        if name in values:
            weight.assign(values[name])
            assigned += 1
    if assigned != len(values):
        raise RuntimeError(f"to_bert: {assigned} of {len(values)} weights found in TFBertModel.")
    return bert


def from_bert(model, options, folder, pieces):
    """Sets the student's encoder from a transformers BERT folder, the inverse of to_bert:
    each student piece takes the folder's row of that piece (its unknown piece's row when it
    has none), with an identity projection. The projection and the output layer keep theirs."""
    bert = transformers.TFBertModel.from_pretrained(folder)
    config = bert.config
    expected = {"num_hidden_layers": config.num_hidden_layers, "hidden_size": config.hidden_size,
                "num_attention_heads": config.num_attention_heads,
                "intermediate_size": config.intermediate_size,
                "word_emb_dim": config.hidden_size}
    wrong = {k: v for k, v in expected.items() if getattr(options, k) != v}
    if wrong:
        raise ValueError(f"--pt_student_checkpoint={folder}: give the student its shape: "
                         + " ".join(f"--{k}={v}" for k, v in wrong.items()))
    seq_len = model.get_layer("position_embeddings").max_len
    if config.max_position_embeddings < seq_len:
        raise ValueError(f"--pt_student_checkpoint={folder}: {config.max_position_embeddings} "
                         f"positions, fewer than --seq_len={seq_len}.")
    weights = {w.name.split(":")[0].split("bert/", 1)[-1]: w.numpy() for w in bert.weights}
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    vocab = tokenizer.get_vocab()
    rows = [vocab.get(piece, tokenizer.unk_token_id) for piece in pieces]
    model.get_layer("word_embeddings").set_weights(
        [weights["embeddings/word_embeddings/weight"][rows]])
    model.get_layer("embedding_projection").set_weights(
        [np.eye(config.hidden_size, dtype=np.float32),
         weights["embeddings/token_type_embeddings/embeddings"][0]])
    model.get_layer("position_embeddings").set_weights(
        [weights["embeddings/position_embeddings/embeddings"][:seq_len]])
    model.get_layer("embedding_norm").set_weights(
        [weights["embeddings/LayerNorm/gamma"], weights["embeddings/LayerNorm/beta"]])
    for i in range(config.num_hidden_layers):
        layer, prefix = model.get_layer(f"layer_{i + 1}"), f"encoder/layer_._{i}/"

        def pair(name, first="kernel", second="bias"):
            return [weights[f"{prefix}{name}/{first}"], weights[f"{prefix}{name}/{second}"]]
        parts = [pair(f"attention/self/{n}") for n in ("query", "key", "value")]
        layer.qkv.set_weights([np.concatenate([p[0] for p in parts], axis=1),
                               np.concatenate([p[1] for p in parts])])
        layer.attention_output.set_weights(pair("attention/output/dense"))
        layer.attention_norm.set_weights(pair("attention/output/LayerNorm", "gamma", "beta"))
        layer.intermediate.set_weights(pair("intermediate/dense"))
        layer.output_dense.set_weights(pair("output/dense"))
        layer.output_norm.set_weights(pair("output/LayerNorm", "gamma", "beta"))


def save_checkpoint(model, manifest, folder):
    """Writes the student's encoder as a transformers BERT checkpoint folder (config.json,
    tf_model.h5) with its tokenizer, which TFBertModel and AutoTokenizer.from_pretrained load;
    returns the folder.

    A WordPiece teacher: a BERT tokenizer over the student's pieces (its ids the student's).
    Others (SentencePiece, BPE), whose vocabulary cannot be cut without changing how text is
    split: the teacher's own tokenizer, the table's rows in its ids (`checkpoint_table`).
    """
    options = manifest.options
    if os.path.exists(os.path.join(manifest.teacher_dir, "vocab.txt")):
        to_bert(model, options, options.seq_len).save_pretrained(folder)
        vocab = os.path.join(folder, "vocab.txt")
        with open(vocab, "w", encoding="utf-8") as f:
            f.write("".join(piece + "\n" for piece in manifest.student_vocab))
        transformers.BertTokenizerFast(
            vocab, do_lower_case=manifest.do_lower_case, pad_token=manifest.student_vocab[0],
            unk_token=manifest.student_vocab[1]).save_pretrained(folder)
        return folder
    tokenizer = transformers.AutoTokenizer.from_pretrained(manifest.teacher_dir)
    vocab = vocab_lib.StudentVocab(
        np.asarray(tokenizer.convert_tokens_to_ids(manifest.student_vocab), np.int32))
    table = checkpoint_table(model.get_layer("word_embeddings").get_weights()[0], vocab,
                             max(manifest.teacher_vocab_size, len(tokenizer)),
                             teacher_lib.saved_word_embeddings(manifest.teacher_dir))
    to_bert(model, options, options.seq_len, table, tokenizer.pad_token_id).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def checkpoint_table(student_table, vocab, size, teacher_table=None):
    """[size, E] word embeddings in teacher ids: each piece the student has, its row; each
    piece it lacks, the teacher's row through the linear map (least squares, with a bias) that
    best takes the teacher's rows of the student's pieces to the student's, so that a later
    task fine-tuned from the checkpoint reads its other pieces as this student would place
    them, not all as one unknown piece (task transfer: a PAN-X student saw few pieces of a
    sentiment task). Without the teacher's table (not fine-tuned: --distil_mode=none), the
    unknown piece's row, as the student reads them.

    student_table [V_s, E]; vocab the student's StudentVocab; teacher_table [V_t, H] or None.
    """
    table = student_table[vocab.lookup_table(size)]
    if teacher_table is None:
        return table
    # The student's real pieces (ids 2.., not padding or unknown) with a teacher row.
    known = vocab.teacher_ids[2:] < len(teacher_table)
    with_bias = np.concatenate(
        [teacher_table, np.ones((len(teacher_table), 1), teacher_table.dtype)], axis=1)
    mapping = np.linalg.lstsq(with_bias[vocab.teacher_ids[2:][known]].astype(np.float64),
                              student_table[2:][known], rcond=None)[0]
    lacking = np.setdiff1d(np.arange(min(size, len(teacher_table))), vocab.teacher_ids)
    table[lacking] = (with_bias[lacking] @ mapping).astype(table.dtype)
    return table


def layer_states(model, number):
    """The [B, T, D] states output of encoder layer `number` (1-based) of a built student."""
    return model.get_layer(f"layer_{number}").output[0]


def masked_mean(states, mask):
    """[B, T, D] states, [B, T] mask -> [B, D], the mean over the real pieces."""
    weights = mask[:, :, tf.newaxis]
    return tf.reduce_sum(states * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, 1), 1.0)


@tf_keras.utils.register_keras_serializable("xtremedistil")
class PositionEmbedding(tf_keras.layers.Layer):
    """Adds a learned vector per position to [B, T, D] (T <= max_len)."""

    def __init__(self, max_len, **kwargs):
        super().__init__(**kwargs)
        self.max_len = max_len

    def build(self, input_shape):
        self.table = self.add_weight(
            "table", (self.max_len, input_shape[-1]),
            initializer=bert_initializer())

    def call(self, x):
        return x + self.table[tf.newaxis, :x.shape[1]]

    def get_config(self):
        return dict(super().get_config(), max_len=self.max_len)


@tf_keras.utils.register_keras_serializable("xtremedistil")
class EncoderLayer(tf_keras.layers.Layer):
    """A post-norm transformer encoder layer (BERT's): multi-head self-attention over the real
    pieces, then a GELU feed-forward block, each with a residual and layer normalisation.

    Called on [x [B, T, D], mask [B, T]]; T must be static (the student's input length).
    Returns the new states [B, T, D] and the attention distributions [B, N, T, T].
    """

    def __init__(self, hidden_size, num_heads, intermediate_size, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size, self.num_heads = hidden_size, num_heads
        self.intermediate_size, self.dropout = intermediate_size, dropout
        self.qkv = tf_keras.layers.Dense(3 * hidden_size, kernel_initializer=bert_initializer(),
                                         name="qkv")
        self.attention_output = tf_keras.layers.Dense(
            hidden_size, kernel_initializer=bert_initializer(), name="attention_output")
        self.attention_norm = tf_keras.layers.LayerNormalization(epsilon=1e-12,
                                                                 name="attention_norm")
        self.intermediate = tf_keras.layers.Dense(intermediate_size, activation="gelu",
                                                  kernel_initializer=bert_initializer(),
                                                  name="intermediate")
        self.output_dense = tf_keras.layers.Dense(hidden_size,
                                                  kernel_initializer=bert_initializer(),
                                                  name="output")
        self.output_norm = tf_keras.layers.LayerNormalization(epsilon=1e-12, name="output_norm")
        self.drop = tf_keras.layers.Dropout(dropout)

    def attention(self, query, key, mask):
        """[B, N, T, T] attention distributions over the real pieces."""
        scores = tf.matmul(query, key, transpose_b=True) / math.sqrt(self._head_size)
        # -1e4, not -inf: a row of padding alone stays finite (and float16 holds it).
        scores += (1.0 - mask[:, tf.newaxis, tf.newaxis, :]) * -1e4
        return tf.nn.softmax(scores, axis=-1)

    def call(self, inputs, training=None):
        x, mask = inputs
        query, key, value = self._heads(x)
        probabilities = self.attention(query, key, mask)
        context = tf.matmul(probabilities, value)  # [B, N, T, D/N]
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, x.shape[1],
                                                                   self.hidden_size])
        x = self.attention_norm(x + self.drop(self.attention_output(context),
                                              training=training))
        feed_forward = self.output_dense(self.intermediate(x))
        return self.output_norm(x + self.drop(feed_forward, training=training)), probabilities

    @property
    def _head_size(self):
        return self.hidden_size // self.num_heads

    def _heads(self, x):
        """query, key, value of x [B, T, D], each [B, N, T, D/N]."""
        def split(t):
            t = tf.reshape(t, [-1, x.shape[1], self.num_heads, self._head_size])
            return tf.transpose(t, [0, 2, 1, 3])
        return tuple(split(t) for t in tf.split(self.qkv(x), 3, axis=-1))

    def get_config(self):
        return dict(super().get_config(), hidden_size=self.hidden_size,
                    num_heads=self.num_heads, intermediate_size=self.intermediate_size,
                    dropout=self.dropout)
