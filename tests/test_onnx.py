"""ONNX export: the converted students (random weights, so nothing trains) give Keras' logits in
onnxruntime, the exact GELU converts without Erfc, and export_all writes the file and its
sidecar for the trained run."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from xtremedistil import export, students
from xtremedistil import options as options_lib
from xtremedistil.export import onnx

pytestmark = pytest.mark.skipif(bool(onnx.missing_packages()),
                                reason="tf2onnx, onnx or onnxruntime is not installed")

SEQ_LEN, VOCAB, LABELS, TEACHER_HIDDEN = 16, 60, 5, 32
TINY = dict(task="unused", seq_len=SEQ_LEN, word_emb_dim=16, bilstm_hidden_size=16)
TINY_TRANSFORMER = dict(TINY, student="transformer", word_emb_dim=32, num_hidden_layers=2,
                        hidden_size=32, num_attention_heads=4, intermediate_size=64)


def random_student(output, seed=0, **options):
    """A tiny logits-only student with random weights large enough to give logits of order 1
    (the default initialisation's are near 0, where every tag ties)."""
    model = students.get(options_lib.Options(**options)).build(
        students.Dims(VOCAB, SEQ_LEN, LABELS, TEACHER_HIDDEN, output))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.4, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return students.output_model(model, "logits")


def padded_ids(input_len, sentences=48, seed=1):
    """[N, input_len] ids: each text of SEQ_LEN ids a random length of real ids, then 0s."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (sentences, input_len)).astype(np.int32)
    texts = ids.reshape(sentences, -1, SEQ_LEN)  # a view: pairs have 2 texts
    lengths = rng.integers(1, SEQ_LEN + 1, texts.shape[:2])
    texts[np.arange(SEQ_LEN) >= lengths[..., None]] = 0
    return ids


def assert_onnx_equals_keras(keras_student):
    model = onnx.convert_student(keras_student)
    assert "Erfc" not in onnx.onnx_ops(model) and "Erf" in onnx.onnx_ops(model)
    ids = padded_ids(int(keras_student.input.shape[1]))
    keras_logits = keras_student.predict(ids, verbose=0)
    onnx_logits = onnx.onnx_logits(onnx.onnx_session(model.SerializeToString()), ids)
    assert onnx_logits.shape == keras_logits.shape
    assert np.abs(keras_logits).max() > 1.0  # logits far from ties, so argmax means something
    figures = onnx.parity(onnx_logits, keras_logits)
    assert figures["argmax_agreement"] == 1.0
    assert figures["max_abs_logits_diff"] < 1e-4
    return model


# 'sentence' converts like 'pair' (which pools each text as it does), so it is left out.
@pytest.mark.parametrize("output", ["tokens", "pair"])
def test_bilstm_onnx_logits_equal_keras(output):
    model = assert_onnx_equals_keras(random_student(output, **TINY))
    assert "LSTM" in onnx.onnx_ops(model)  # ONNX's own LSTM op, not a Loop
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 2 * SEQ_LEN if output == "pair" else SEQ_LEN]


def test_transformer_onnx_logits_equal_keras():
    assert_onnx_equals_keras(random_student("tokens", **TINY_TRANSFORMER))


def test_erfc_rewrite_keeps_the_exact_gelu():
    import onnxruntime  # pylint: disable=import-outside-toplevel
    import tf2onnx  # pylint: disable=import-outside-toplevel
    x = np.linspace(-12.0, 12.0, 4801, dtype=np.float32)[None, :]
    gelu = tf.function(lambda x: tf.nn.gelu(x, approximate=False))
    model, _ = tf2onnx.convert.from_function(
        gelu, input_signature=(tf.TensorSpec([None, None], tf.float32, name="x"),),
        opset=onnx.OPSET, custom_op_handlers=onnx.ERFC_HANDLERS)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], gelu(x).numpy(), atol=1e-6)


def test_export_all_writes_the_onnx_file_and_its_parity(exported):
    manifest, paths = exported
    assert paths["onnx"] == os.path.join(manifest.model_dir, "export", "onnx", onnx.ONNX_FILE)
    with open(os.path.join(os.path.dirname(paths["onnx"]), onnx.SIDECAR),
              encoding="utf-8") as f:
        sidecar = json.load(f)
    assert sidecar["opset"] == onnx.OPSET and sidecar["bytes"] == os.path.getsize(paths["onnx"])
    assert "Erfc" not in sidecar["ops"] and "LSTM" in sidecar["ops"]
    assert sidecar["parity"]["inputs"] == "transfer sentences"
    assert sidecar["parity"]["argmax_agreement"] == 1.0
    assert sidecar["parity"]["max_abs_logits_diff"] < 1e-4
    ids = export.calibration_set(manifest, 8)[0]
    session = onnx.onnx_session(paths["onnx"])
    np.testing.assert_allclose(onnx.onnx_logits(session, ids),
                               export.load_student(manifest).predict(ids, verbose=0), atol=1e-4)
