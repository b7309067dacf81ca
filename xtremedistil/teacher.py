"""The transformer teacher: loading from a local checkpoint, fine-tuning, and its outputs.

The head (token or sequence classification) and the named outputs come from the task.

Legend: B batch, T seq_len, H teacher hidden size, C labels.
"""

import json
import os
import pathlib
import time

import h5py
import numpy as np
import tensorflow as tf
import tf_keras
import transformers
from absl import logging
from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

from xtremedistil import schedules
from xtremedistil import training

transformers.logging.set_verbosity_error()

FINETUNED_WEIGHTS = "tf_model.h5"


def default_checkpoint():
    """The folder of the default teacher (--pt_teacher_checkpoint's default name)."""
    from xtremedistil import options, teacher_zoo  # pylint: disable=import-outside-toplevel
    return teacher_zoo.resolve_checkpoint(options.Options().pt_teacher_checkpoint)


def load_tokenizer(checkpoint):
    """The teacher's fast tokenizer, set up to tokenise pre-split words."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint, use_fast=True)
    if getattr(tokenizer, "add_prefix_space", None) is False:
        # Byte-level BPE (RoBERTa) must mark each pre-split word as starting after a space.
        tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint, use_fast=True,
                                                               add_prefix_space=True)
    return tokenizer


def load_teacher(checkpoint, num_labels,
                 model_class=transformers.TFAutoModelForTokenClassification):
    """A TF model of `model_class` (the task's head) from a local folder (TF h5, safetensors or
    PyTorch bin) or a hub name."""
    folder = pathlib.Path(checkpoint)
    try:
        config = transformers.AutoConfig.from_pretrained(checkpoint, num_labels=num_labels)
    except OSError as error:
        raise ValueError(f"--pt_teacher_checkpoint={checkpoint}: no local folder with a "
                         f"config.json, and the hub is not reachable ({error}).") from error
    if (folder / FINETUNED_WEIGHTS).exists() or not folder.is_dir():
        return model_class.from_pretrained(checkpoint, config=config)
    if (folder / "model.safetensors").exists():
        # transformers' TF loader fails on safetensors; build the model and convert the weights.
        import safetensors.numpy  # pylint: disable=import-outside-toplevel
        model = model_class.from_config(config)
        model(model.dummy_inputs, training=False)
        state_dict = safetensors.numpy.load_file(str(folder / "model.safetensors"))
        _, info = load_pytorch_state_dict_in_tf2_model(
            model, state_dict, allow_missing_keys=True, output_loading_info=True)
        missing = [k for k in info["missing_keys"] if "classifier" not in k]
        if missing:
            raise ValueError(f"{folder}/model.safetensors lacks weights {missing[:5]}")
        return model
    if (folder / "pytorch_model.bin").exists():
        return model_class.from_pretrained(checkpoint, config=config, from_pt=True)
    raise ValueError(f"--pt_teacher_checkpoint={checkpoint}: found no tf_model.h5, "
                     "model.safetensors or pytorch_model.bin in the folder.")


def word_embeddings(hf_model):
    """[V_t, E] numpy matrix of the teacher's input word-piece embeddings."""
    vocab_size = hf_model.config.vocab_size
    for weight in hf_model.weights:
        if "word_embeddings" in weight.name and weight.shape[0] == vocab_size:
            return weight.numpy()
    for weight in hf_model.weights:
        if weight.shape.rank == 2 and weight.shape[0] == vocab_size:
            return weight.numpy()
    raise ValueError(f"No [{vocab_size}, E] word embedding matrix in {type(hf_model).__name__}.")


def classifier_weights(hf_model):
    """[kernel [H, C], bias [C]] of the teacher's token classifier (on its last layer), or None."""
    classifier = getattr(hf_model, "classifier", None)
    return classifier.get_weights() if classifier is not None else None


def resolve_layer(hf_model, teacher_layer):
    """The index of `teacher_layer` in hidden_states (0 embeddings, -1 the last layer)."""
    layers = num_layers(hf_model)
    layer = layers if teacher_layer == -1 else teacher_layer
    if not 0 <= layer <= layers:
        raise ValueError(f"--teacher_layer={teacher_layer}: the teacher has layers 0..{layers}.")
    return layer


def is_last_layer(hf_model, teacher_layer):
    return resolve_layer(hf_model, teacher_layer) == num_layers(hf_model)


def num_layers(hf_model):
    config = hf_model.config
    return getattr(config, "num_hidden_layers", None) or config.n_layers


def layer_map(given, student_layers, teacher_layers):
    """The teacher layer each student layer 1..student_layers learns (--layer_map), a tuple.

    given: 'student:teacher' pairs, one for every student layer ('1:2,2:4,3:6'); empty: the
    uniform map, student layer i -> teacher layer i * teacher_layers // student_layers.
    """
    if not given:
        return tuple(i * teacher_layers // student_layers for i in range(1, student_layers + 1))
    try:
        pairs = dict(tuple(int(n) for n in pair.split(":")) for pair in given.split(","))
    except ValueError:
        raise ValueError(f"--layer_map={given}: expected 'student:teacher' pairs of layer "
                         "numbers separated by commas, e.g. '1:2,2:4'.") from None
    if sorted(pairs) != list(range(1, student_layers + 1)):
        raise ValueError(f"--layer_map={given}: give a teacher layer for each student layer "
                         f"1..{student_layers}, once.")
    if not all(0 <= t <= teacher_layers for t in pairs.values()):
        raise ValueError(f"--layer_map={given}: the teacher has layers 0..{teacher_layers}.")
    return tuple(pairs[i] for i in range(1, student_layers + 1))


def attention_layer_map(layer_map_option, student_layers, attention_student_layers,
                        teacher_layers):
    """The teacher layer whose attention each of `attention_student_layers` learns
    (--distil_attention), by --layer_map; a tuple."""
    mapped = layer_map(layer_map_option, student_layers, teacher_layers)
    result = tuple(mapped[i - 1] for i in attention_student_layers)
    if 0 in result:
        raise ValueError(f"--layer_map={layer_map_option}: --distil_attention maps a student "
                         "layer to the teacher's embeddings (0), which have no attention.")
    return result


def keras_models(hf_model, task, teacher_layer, outputs=("hidden", "logits"), layers=(),
                 attention_layers=(), attention_maps=1):
    """(predictor, distiller): tf.keras models over Encoded.teacher_inputs(): input_ids,
    attention_mask and, when the task has segments (pairs), token_type_ids.

    predictor returns the logits; distiller returns {name: tensor} of the task's teacher
    `outputs` ('hidden' is the layer `teacher_layer`: 0 embeddings, -1 the last layer;
    'layers' the 'hidden' of each of `layers`, stacked on axis 1: [B, L, ...]; 'attention'
    the attention distributions of each of `attention_layers` (1-based), `attention_maps` a
    layer (`grouped_heads`), [B, L_a * attention_maps, T, T]), or None when `outputs` is empty.
    """
    layer = resolve_layer(hf_model, teacher_layer)
    # Any length up to seq_len: `predict` cuts batches after their longest sentence.
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if task.segment_ids else [])
    inputs = [tf_keras.Input((None,), dtype=tf.int32, name=name) for name in names]
    hf_outputs = hf_model(**dict(zip(names, inputs)), output_hidden_states=True,
                          output_attentions=bool(attention_layers))
    # float32 outputs whatever the mixed-precision policy: losses and stored outputs need them.
    tensors = task.teacher_output_tensors(hf_outputs, layer)
    if layers:
        tensors["layers"] = tf.stack([task.teacher_output_tensors(hf_outputs, n)["hidden"]
                                      for n in layers], axis=1)
    if attention_layers:
        # attentions[i - 1]: layer i's [B, N, T, T]; its heads averaged in groups, and the
        # rows of padding queries 0 (they would depend on how long the batch was cut).
        queries = tf.cast(inputs[1], tf.float32)[:, tf.newaxis, :, tf.newaxis]  # [B, 1, T, 1]
        tensors["attention"] = queries * tf.concat(
            [grouped_heads(hf_outputs.attentions[n - 1], attention_maps)
             for n in attention_layers], axis=1)
    named = {name: tf_keras.layers.Activation("linear", dtype="float32", name=name)(tensor)
             for name, tensor in tensors.items()}
    predictor = tf_keras.Model(inputs, named["logits"], name="teacher_predictor")
    distiller = (tf_keras.Model(inputs, {name: named[name] for name in outputs},
                                name="teacher_distiller") if outputs else None)
    return predictor, distiller


def grouped_heads(attention, maps):
    """[B, N, T, T] attention of N heads -> [B, maps, T, T]: map k is the mean of heads
    k * N / maps .. (k + 1) * N / maps - 1 (maps 1: every head's mean; maps N: the heads)."""
    heads = attention.shape[1]
    if heads % maps:
        raise ValueError(f"--attention_heads=match: the teacher's {heads} attention heads "
                         f"cannot be shared among the student's {maps}; give "
                         "--num_attention_heads a divisor of it, or --attention_heads=average.")
    shape = tf.shape(attention)
    return tf.reduce_mean(tf.reshape(attention, tf.stack(
        [shape[0], maps, heads // maps, shape[2], shape[3]])), axis=2)


class OnlineTeacher:
    """A teacher output computed on each training batch instead of stored (the attention maps
    of a transfer set larger than --attention_cache_mb); counts the seconds it takes.

    Called on teacher piece ids [B, T] (the stored input_ids); returns the output [B, ...]
    float32, padded back to T along its position axes like `predict`.
    """

    def __init__(self, distiller, name, pad_id, seq_len):
        self.name, self.pad_id, self.seq_len = name, pad_id, seq_len
        self.shape = _padded_shape(distiller.output[name], seq_len)
        self._axes = _position_axes(distiller.output[name])
        self._run = tf.function(lambda ids, mask: distiller([ids, mask], training=False)[name],
                                reduce_retracing=True)
        self.seconds, self.batches = 0.0, 0

    def __call__(self, input_ids):
        started = time.monotonic()
        mask = (input_ids != self.pad_id).astype(np.int32)
        width = training.cut_width(mask.sum(axis=1), input_ids.shape[1])
        value = self._run(tf.constant(input_ids[:, :width]), tf.constant(mask[:, :width]))
        value = _pad_positions(value.numpy().astype(np.float32), self._axes, width,
                               self.seq_len)
        self.seconds += time.monotonic() - started
        self.batches += 1
        return value

    def record(self):
        """What metrics.json says of it."""
        return {"seconds": round(self.seconds, 2), "batches": self.batches}


def save_tokenizer(tokenizer, folder):
    """The tokenizer alone in the teacher's folder, for a run that never fine-tunes the teacher
    (--distil_mode=none): export reads the student's word pieces with it."""
    os.makedirs(folder, exist_ok=True)
    tokenizer.save_pretrained(folder)


def save(hf_model, tokenizer, folder):
    """Writes the fine-tuned teacher; the weights go last, so their presence marks it done."""
    os.makedirs(folder, exist_ok=True)
    tokenizer.save_pretrained(folder)
    hf_model.config.save_pretrained(folder)
    training.save_weights_atomically(hf_model, os.path.join(folder, FINETUNED_WEIGHTS))


def saved_word_embeddings(folder):
    """[V_t, H] word embeddings of the fine-tuned teacher saved in `folder` (read from its
    weights file alone, no model built), or None when it holds no fine-tuned teacher."""
    path = os.path.join(folder, FINETUNED_WEIGHTS)
    if not os.path.exists(path):
        return None
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        vocab_size = json.load(f)["vocab_size"]
    found = []
    with h5py.File(path, "r") as weights:
        weights.visititems(lambda name, item: found.append(item[()]) if (
            isinstance(item, h5py.Dataset) and "word_embeddings" in name
            and item.shape[:1] == (vocab_size,) and item.ndim == 2) else None)
    if len(found) != 1:
        raise ValueError(f"{path}: {len(found)} word embedding tables of {vocab_size} rows, "
                         "expected one.")
    return found[0]


def is_finetuned(folder):
    return os.path.exists(os.path.join(folder, FINETUNED_WEIGHTS))


def predict(model, encoded, batch_size, dtype=np.float32):
    """The model's outputs (an array, or {name: array}) for every example of `encoded`, in order.

    The teacher's cost grows with the length it reads and most sentences are far shorter than
    seq_len, so examples are batched by length and each batch is cut after its longest
    sentence (rounded up to a multiple of 8, a few traced shapes); per-position outputs are
    padded back to seq_len with zeros along their position axes (the model's output axes of
    unknown size after the batch: [B, T, H], [B, L, T, H], [B, L, T, T]). The attention mask
    keeps the real positions' outputs the same as with the padding.
    """
    tensors = tf.nest.flatten(model.output)
    axes = [_position_axes(tensor) for tensor in tensors]
    lengths = encoded.attention_mask.sum(axis=1)
    order = np.argsort(-lengths, kind="stable")
    seq_len = encoded.input_ids.shape[1]
    # Each batch is written into its rows of arrays allocated once (zeros: the padding), not
    # padded and concatenated: those copies of every output cost memory and kernel time.
    results = [np.zeros((len(order),) + _padded_shape(tensor, seq_len), dtype)
               for tensor in tensors]
    # Longest sentences go first, so the estimate of the time left errs long.
    report = training.ProgressLog("teacher", "examples", len(order))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = training.cut_width(lengths[rows], seq_len)
        values = tf.nest.flatten(model.predict_on_batch(
            [a[rows, :width] for a in encoded.teacher_inputs()]))
        for result, value, value_axes in zip(results, values, axes):
            result[(rows,) + tuple(slice(0, width) if axis in value_axes else slice(None)
                                   for axis in range(1, result.ndim))] = value
        report.update(start + len(rows))
    return tf.nest.pack_sequence_as(model.output, results)


def _padded_shape(tensor, seq_len):
    """A Keras output's shape after the batch axis, its position axes (_position_axes) at
    seq_len."""
    return tuple(seq_len if size is None else size for size in tensor.shape[1:])


def _position_axes(tensor):
    """The position axes of a Keras output: its axes of unknown size after the batch, as the
    inputs are of any length (none for sentence outputs, two for attention maps)."""
    return [axis for axis, size in enumerate(tensor.shape) if axis > 0 and size is None]


def _pad_positions(value, axes, width, seq_len):
    if not axes:
        return value
    padding = [(0, 0)] * value.ndim
    for axis in axes:
        padding[axis] = (0, seq_len - width)
    return np.pad(value, padding)


def fine_tune(predictor, task, train, dev_score, strategy, epochs, batch_size, learning_rate,
              patience, folder, checkpoint_steps=0, seed=0, callbacks=(), recipe="ours"):
    """Fine-tuning on the task's labels with early stopping on dev_score() (higher is better).

    recipe (--teacher_recipe): 'ours' AdamW (weight decay 0.01), linear warm-up over 10% of
    the steps to `learning_rate` then linear decay, the task's label weights (tagging: first
    pieces); 'paper' the original code's: Adam, per epoch a warm-up over 10 epochs then
    exponential decay (schedules.paper_teacher), loss on every piece the task can label.
    Checkpoints (every epoch and every `checkpoint_steps` batches) go to `folder`, so a killed
    fine-tuning resumes from the last one.
    """
    steps_per_epoch = -(-len(train) // batch_size)
    steps = steps_per_epoch * epochs
    with strategy.scope():
        if recipe == "paper":
            optimizer = tf_keras.optimizers.Adam(
                schedules.paper_teacher(learning_rate, epochs, steps_per_epoch))
        elif recipe == "ours":
            optimizer, _ = transformers.create_optimizer(
                learning_rate, num_train_steps=steps, num_warmup_steps=steps // 10,
                weight_decay_rate=0.01)
        else:
            raise ValueError(f"--teacher_recipe={recipe}: expected ours or paper.")
        predictor.compile(optimizer, loss=task.label_loss, weighted_metrics=[])
    label_ids, label_weights = task.teacher_targets(train, every_piece=recipe == "paper")
    logging.info("teacher: fine-tuning on %d examples for up to %d epochs", len(train), epochs)
    os.makedirs(folder, exist_ok=True)
    keep_best = training.KeepBest(patience, training.best_path(folder, "fine_tuning"),
                                  score_fn=dev_score)
    examples = (tuple(train.teacher_inputs()), label_ids, label_weights)
    lengths = train.attention_mask.sum(axis=1)
    training.fit_resumable(
        predictor, folder, "fine_tuning", keep_best, epochs,
        lambda epoch: training.length_grouped(examples, lengths, batch_size, seed, epoch),
        None, checkpoint_steps, extra_callbacks=callbacks)


def finish_fine_tuning(folder):
    training.remove_checkpoints(folder, "fine_tuning")
