"""--student=transformer: a small BERT-style encoder trained by the same recipes as the BiLSTM."""

import json
import os
import shutil

import numpy as np
import pytest
import tf_keras
import transformers

from tests.conftest import tiny_config
from tests.test_classification import CHANCE, classification_config
from xtremedistil import export, losses, pipeline, students, tasks
from xtremedistil import teacher as teacher_lib
from xtremedistil.export import tflite
from xtremedistil.manifest import Manifest
from xtremedistil.students import transformer

SHAPE = dict(student="transformer", num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
             intermediate_size=64)


@pytest.fixture(scope="module")
def transformer_run(trained_run, tmp_path_factory):
    """The tiny task distilled stage-wise into a 2-layer transformer, its layers learning the
    teacher's (uniform map), on the trained run's teacher; exported."""
    trained, _ = trained_run
    config = tiny_config(os.path.dirname(trained.model_dir), **SHAPE, baseline=False,
                         distil_epochs=1, strategy="default", distil_multi_hidden_states=True,
                         model_dir=str(tmp_path_factory.mktemp("transformer") / "model"))
    for folder in ("teacher", "teacher_outputs"):
        shutil.copytree(os.path.join(trained.model_dir, folder),
                        os.path.join(config.model_dir, folder))
    metrics = pipeline.run(config)
    return config, metrics, export.export_all(config.model_dir)


def test_transformer_student_learns_the_task_unfreezing_layer_by_layer(transformer_run):
    config, metrics, _ = transformer_run
    assert metrics["student_type"] == "transformer"
    names = [s["name"] for s in metrics["stages"]]
    # Five groups from the top: logits, projection, layer_2, layer_1, embeddings.
    assert names[2:] == ["layers", "representation"] + [f"logits_{i}" for i in range(1, 6)] + [
        f"labels_{i}" for i in range(1, 6)]
    layers_stage = next(s for s in metrics["stages"] if s["name"] == "layers")
    assert layers_stage["best_val_loss"] < 1.0  # the mapped states came near the teacher's
    with open(os.path.join(config.model_dir, "teacher_outputs", "stamp.json"),
              encoding="utf-8") as f:
        assert json.load(f)["layers"] == [1, 2]  # the tiny teacher's 2 layers, uniform map
    assert metrics["student"]["mean_f1"] >= metrics["teacher"]["mean_f1"] - 0.1


def test_transformer_tflite_logits_equal_keras_with_builtin_ops(transformer_run):
    config, _, paths = transformer_run
    manifest = Manifest.read(config.model_dir)
    examples = tasks.get("tagging").read_labeled(manifest.options).test[:16]
    ids, _ = export.encode(manifest, examples)
    keras_logits = export.load_student(manifest).predict(ids, verbose=0)
    interpreter = tflite.tflite_interpreter(os.path.join(paths["tflite_dir"],
                                                         export.TFLITE_FILES["fp32"]))
    np.testing.assert_allclose(tflite.tflite_logits(interpreter, ids), keras_logits, atol=1e-4)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}  # pylint: disable=protected-access
    assert "BATCH_MATMUL" in ops and "SOFTMAX" in ops and not any("FLEX" in op or "CUSTOM" in op
                                                                  for op in ops)


def test_real_pieces_do_not_see_the_padding():
    layer = transformer.EncoderLayer(hidden_size=16, num_heads=4, intermediate_size=32)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 10, 16)).astype(np.float32)
    mask = np.ones((2, 10), np.float32)
    mask[0, 6:] = 0  # 6 real pieces, then padding
    changed = x.copy()
    changed[0, 6:] = rng.normal(size=(4, 16)) * 10  # anything at the padding
    before, after = layer([x, mask]).numpy(), layer([changed, mask]).numpy()
    np.testing.assert_allclose(after[0, :6], before[0, :6], atol=1e-5)
    assert not np.allclose(after[0, 6:], before[0, 6:])  # (padding rows do change)
    attention = layer.attention(x, mask).numpy()  # [B, N, T, T]
    np.testing.assert_allclose(attention.sum(-1), 1, rtol=1e-5)
    assert attention[0, :, :, 6:].max() < 1e-6
    # Sentence tasks pool the real pieces alone.
    np.testing.assert_allclose(transformer.masked_mean(after, mask).numpy()[0],
                               after[0, :6].mean(0), rtol=1e-5)


def test_transformer_student_classifies_pairs(tmp_path):
    config = classification_config(tmp_path, True, "soft", **SHAPE)
    metrics = pipeline.run(config)
    assert metrics["task"] == "pairs" and metrics["student_type"] == "transformer"
    assert metrics["student"]["mean_accuracy"] >= CHANCE["pairs"] + 0.3


def test_layer_maps():
    assert teacher_lib.layer_map("", 4, 6) == (1, 3, 4, 6)  # the last learns the last
    assert teacher_lib.layer_map("", 2, 12) == (6, 12)
    assert teacher_lib.layer_map("", 3, 3) == (1, 2, 3)
    assert teacher_lib.layer_map("2:5,1:0", 2, 6) == (0, 5)
    for bad, message in (("1:2", "each student layer"), ("1:2,2:7", "layers 0..6"),
                         ("1-2,2:3", "pairs"), ("1:2,1:3", "each student layer")):
        with pytest.raises(ValueError, match=message):
            teacher_lib.layer_map(bad, 2, 6)


def test_layers_loss_by_hand():
    teacher = np.zeros((1, 2, 1, 2), np.float32)  # [B, L, T, H]
    student = np.array([[[[1.0, 1.0]], [[3.0, 1.0]]]], np.float32)
    # Layer 1: (1 + 1) / 2 = 1; layer 2: (9 + 1) / 2 = 5; their mean 3, per position [B, T].
    np.testing.assert_allclose(losses.layers_mse(teacher, student).numpy(), [[3.0]])


def test_teacher_layers_output_stacks_the_mapped_hidden_states(tiny_tokenizer, tmp_path):
    from tests.conftest import write_tiny_bert  # pylint: disable=import-outside-toplevel
    hf_model = teacher_lib.load_teacher(str(write_tiny_bert(tmp_path / "bert")), 3,
                                        tasks.get("tagging").teacher_class("auto"))
    _, distiller = teacher_lib.keras_models(hf_model, tasks.get("tagging"), -1,
                                            ("hidden", "layers"), layers=(2, 0))
    encoded = tiny_tokenizer(["alice met bob", "paris"], padding="max_length", max_length=8,
                             return_tensors="np")
    inputs = [encoded["input_ids"], encoded["attention_mask"]]
    layers = distiller.predict_on_batch(inputs)["layers"]
    states = hf_model(input_ids=inputs[0], attention_mask=inputs[1],
                      output_hidden_states=True).hidden_states
    assert layers.shape == (2, 2, 8, hf_model.config.hidden_size)
    np.testing.assert_allclose(layers[:, 0], states[2].numpy(), atol=1e-5)
    np.testing.assert_allclose(layers[:, 1], states[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("output", ["tokens", "sentence", "pair"])
def test_layers_output_has_each_layer_in_the_teachers_width(tmp_path, output):
    options = tiny_config(tmp_path, **SHAPE, distil_multi_hidden_states=True)
    dims = students.Dims(vocab_size=30, seq_len=10, num_labels=3, teacher_hidden_size=8,
                         output=output)
    model = students.get(options).build(dims)
    ids = np.random.default_rng(0).integers(2, 30, size=(4, dims.input_len)).astype(np.int32)
    outputs = model(ids)
    per_example = (10,) if output == "tokens" else ()
    assert outputs["layers"].shape == (4, 2) + per_example + (8,)
    assert outputs["hidden"].shape == (4,) + per_example + (8,)
    assert "layers" not in students.get(tiny_config(tmp_path, **SHAPE)).build(dims).output


def test_exported_checkpoint_loads_in_transformers_with_equal_outputs(transformer_run):
    config, _, paths = transformer_run
    manifest = Manifest.read(config.model_dir)
    examples = tasks.get("tagging").read_labeled(manifest.options).test[:8]
    ids, _ = export.encode(manifest, examples)
    student = export.load_student(manifest)
    encoder = tf_keras.Model(student.input, student.get_layer("layer_2").output)
    bert = transformers.TFBertModel.from_pretrained(paths["checkpoint"])
    states = bert(input_ids=ids, attention_mask=(ids != 0).astype(np.int32)).last_hidden_state
    np.testing.assert_allclose(states.numpy(), encoder.predict(ids, verbose=0), atol=1e-4)
    # Its tokenizer gives the student's ids.
    tokenizer = transformers.AutoTokenizer.from_pretrained(paths["checkpoint"])
    pieces = tokenizer([list(e.tokens) for e in examples], is_split_into_words=True,
                       truncation=True, max_length=manifest.options.seq_len,
                       padding="max_length")["input_ids"]
    np.testing.assert_array_equal(np.asarray(pieces), ids)


def test_a_new_run_starts_from_the_exported_checkpoint(transformer_run, trained_run, tmp_path):
    config, _, paths = transformer_run
    trained, _ = trained_run
    new = tiny_config(os.path.dirname(trained.model_dir), **SHAPE, word_emb_dim=32,
                      pt_student_checkpoint=paths["checkpoint"], distil_mode="soft",
                      distil_epochs=1, baseline=False, strategy="default",
                      model_dir=str(tmp_path / "model"))
    for folder in ("teacher", "teacher_outputs"):
        shutil.copytree(os.path.join(trained.model_dir, folder),
                        os.path.join(new.model_dir, folder))
    metrics = pipeline.run(new)
    assert metrics["student"]["mean_f1"] > 0.6
    # Its initialisation is the checkpoint's encoder.
    manifest = Manifest.read(new.model_dir)
    model = students.get(new).build(export.student_dims(manifest))
    model.load_weights(os.path.join(new.model_dir, "student", "initial.h5"))
    ids, _ = export.encode(manifest, tasks.get("tagging").read_labeled(new).test[:8])
    encoder = tf_keras.Model(model.input, model.get_layer("layer_2").output)
    bert = transformers.TFBertModel.from_pretrained(paths["checkpoint"])
    states = bert(input_ids=ids, attention_mask=(ids != 0).astype(np.int32)).last_hidden_state
    np.testing.assert_allclose(encoder.predict(ids, verbose=0), states.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="--word_emb_dim=32"):
        students.get(new.replace(word_emb_dim=16)).load_checkpoint(
            model, paths["checkpoint"], manifest.student_vocab)
