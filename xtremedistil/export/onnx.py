"""The ONNX file of a trained student: conversion (tf2onnx), the parity check with Keras in
onnxruntime, the runner and the sidecar.

Legend: B batch (dynamic), N sentences, T seq_len, C labels.

  student.onnx        student_ids int32 [B, T] -> logits float32 [B, T, C] (NER);
                      classification [B, T] -> [B, C], pairs [B, 2T] -> [B, C]
  student_onnx.json   opset, bytes, ops, the converter's versions and the parity figures

The students' exact GELU (tf.nn.gelu: 0.5 x erfc(-x / sqrt 2)) traces to TensorFlow's Erfc,
which tf2onnx 1.17 does not map and ONNX has no op for; `ERFC_HANDLERS` rewrites it at
conversion time to 1 - Erf(x) (ONNX Erf, opset 9 on). The Keras graph stays as trained, and
every Erfc is covered (the transformer student's encoder layers have them too). An erf-based
GELU in an export-time Keras model gives the same logits; ONNX's own Gelu op needs opset 20,
past tf2onnx 1.17's 18.

`onnx_logits` is the one runner of the file: export's check, the tests and the latency
benchmark all run it through it. tf2onnx and onnxruntime are imported only when used, so the
rest of export works without them (`missing_packages`).
"""

import dataclasses
import importlib.util
import json
import logging
import os
import time

import numpy as np
import tensorflow as tf

ONNX_FILE = "student.onnx"
SIDECAR = "student_onnx.json"
OPSET = 17  # runs in onnxruntime >= 1.13; tf2onnx 1.17 converts up to opset 18
CHECK_SENTENCES = 64  # transfer sentences the exported file is checked on against Keras
MAX_ABS_DIFF = 1e-3  # largest logits difference from Keras the export accepts
PACKAGES = ("tf2onnx", "onnx", "onnxruntime")


def missing_packages():
    """The names of PACKAGES that are not installed (export skips ONNX without them)."""
    return [name for name in PACKAGES if importlib.util.find_spec(name) is None]


# === Conversion ===

def without_dropout(manifest):
    """The manifest with --dropout_rate 0: the same student at inference (dropout is off
    there), but the BiLSTM of --student_dropout=paper built without recurrent dropout, which
    tf2onnx turns into ONNX's LSTM op rather than a Loop."""
    return dataclasses.replace(manifest, options=manifest.options.replace(dropout_rate=0.0))


def _erfc_as_one_minus_erf(ctx, node, name, args):
    """tf2onnx handler (old custom-op form): TF Erfc(x) -> ONNX Sub(1, Erf(x)), in x's dtype.

    1 - Erf loses erfc's relative precision where it is tiny, but GELU multiplies it by x, so
    the activation stays within float32 rounding of TensorFlow's (tests/test_onnx.py).
    """
    del name, args
    from tf2onnx import utils  # pylint: disable=import-outside-toplevel
    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name)
    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype))
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])
    node.type = "Sub"


ERFC_HANDLERS = {"Erfc": (_erfc_as_one_minus_erf, [])}


def _name_dims(value_info, dims):
    """Names the dynamic dimensions of a graph input or output: dims like ['batch', 32, 7]."""
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for size in dims:
        dim = shape.dim.add()
        if isinstance(size, str):
            dim.dim_param = size
        else:
            dim.dim_value = int(size)


def convert_student(keras_student, opset=OPSET):
    """The ONNX ModelProto of the logits-only Keras student, with a dynamic batch.

    Input 'student_ids' int32 [B, input length] (T; pairs 2T), output 'logits' float32
    [B, T, C] (classification [B, C]); Erfc rewritten (ERFC_HANDLERS).
    """
    import tf2onnx  # pylint: disable=import-outside-toplevel
    from tf2onnx import tf_loader  # pylint: disable=import-outside-toplevel
    # tf2onnx logs every folded node at INFO: keep the run's log to what it says itself.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    input_len = int(keras_student.input.shape[1])
    call = tf.function(lambda student_ids: keras_student(student_ids, training=False),
                       autograph=False)
    concrete = call.get_concrete_function(
        tf.TensorSpec([None, input_len], tf.int32, name="student_ids"))
    input_name, output_name = concrete.inputs[0].name, concrete.outputs[0].name
    # Frozen with tf2onnx's own loader but only the ids as input: convert.from_function would
    # also feed every captured float constant (the sentence students' masked_pool has some)
    # as a graph input.
    graph_def = tf_loader.from_function(concrete, [input_name], [output_name])
    model, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=[input_name], output_names=[output_name], opset=opset,
        custom_op_handlers=ERFC_HANDLERS,
        tensors_to_rename={input_name: "student_ids", output_name: "logits"})
    _name_dims(model.graph.input[0], ["batch", input_len])
    _name_dims(model.graph.output[0], ["batch"] + list(keras_student.output.shape[1:]))
    return model


def onnx_ops(model):
    """Sorted op types of an ONNX ModelProto's graph, with those of any subgraphs."""
    ops = set()
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            ops.add(node.op_type if not node.domain or node.domain == "ai.onnx"
                    else f"{node.domain}.{node.op_type}")
            for attr in node.attribute:
                graphs.extend([attr.g] if attr.HasField("g") else attr.graphs)
    return sorted(ops)


# === The runner ===

def onnx_session(path_or_bytes, num_threads=None):
    """An onnxruntime CPU InferenceSession of a .onnx file (or its bytes); num_threads sets
    the intra-op threads (None: onnxruntime's default, all cores)."""
    import onnxruntime  # pylint: disable=import-outside-toplevel
    session_options = onnxruntime.SessionOptions()
    if num_threads:
        session_options.intra_op_num_threads = num_threads
    return onnxruntime.InferenceSession(path_or_bytes, session_options,
                                        providers=["CPUExecutionProvider"])


def onnx_logits(session, student_ids):
    """Runs the ONNX student on a whole batch: ids [N, T] (pairs [N, 2T]) -> logits [N, T, C]
    (classification [N, C]). Unlike the TFLite files there is no state to reset."""
    return session.run(["logits"], {"student_ids": np.asarray(student_ids, np.int32)})[0]


# === Parity and the files ===

def parity(logits, keras_logits, weights=None):
    """{max_abs_logits_diff, mean_abs_logits_diff, argmax_agreement} of ONNX logits against
    Keras' ([N, T, C] or [N, C]); the agreement counts positions with weights > 0 ([N, T] label
    weights, or [N]) when given, else every position."""
    diff = np.abs(np.asarray(logits, np.float64) - keras_logits)
    same = np.argmax(logits, -1) == np.argmax(keras_logits, -1)
    if weights is not None and np.sum(weights > 0):
        same = same[weights > 0]
    return {"max_abs_logits_diff": float(diff.max()), "mean_abs_logits_diff": float(diff.mean()),
            "argmax_agreement": float(same.mean())}


def _argmax_over(weights):
    """What argmax_agreement counts, given the check set's label weights."""
    if weights is None:
        return "every position"
    return "labelled word positions" if np.ndim(weights) == 2 else "examples"


def check_ids(keras_student, transfer, limit=CHECK_SENTENCES, seed=0):
    """(ids [n, T], weights or None, what they are) to check the file on: the first `limit`
    transfer sentences, or random ids when there is no transfer file."""
    if transfer is not None and len(transfer[0]):
        ids, weights = transfer
        return ids[:limit], weights[:limit], "transfer sentences"
    vocab_size = keras_student.get_layer("word_embeddings").input_dim
    shape = (limit, int(keras_student.input.shape[1]))
    return (np.random.default_rng(seed).integers(0, vocab_size, shape).astype(np.int32), None,
            "random ids (no transfer file)")


def export_onnx(onnx_dir, keras_student, transfer):
    """Writes student.onnx and student_onnx.json; returns the sidecar.

    keras_student: the logits-only student (`export.load_student`); transfer: (student ids
    [N, T], label weights [N, T] or [N]) of transfer sentences (`export.calibration_set`) or
    None. Raises RuntimeError when onnxruntime's logits differ from Keras' by more than
    MAX_ABS_DIFF.
    """
    import onnx  # pylint: disable=import-outside-toplevel
    import onnxruntime  # pylint: disable=import-outside-toplevel
    import tf2onnx  # pylint: disable=import-outside-toplevel
    started = time.perf_counter()
    model = convert_student(keras_student)
    seconds = time.perf_counter() - started
    onnx.checker.check_model(model)
    os.makedirs(onnx_dir, exist_ok=True)
    path = os.path.join(onnx_dir, ONNX_FILE)
    onnx.save(model, path)
    ids, weights, source = check_ids(keras_student, transfer)
    figures = parity(onnx_logits(onnx_session(path), ids),
                     keras_student.predict(ids, verbose=0), weights)
    if figures["max_abs_logits_diff"] > MAX_ABS_DIFF:
        raise RuntimeError(f"{path}: onnxruntime's logits differ from Keras' by up to "
                           f"{figures['max_abs_logits_diff']:.2g} (> {MAX_ABS_DIFF}) on {source}.")
    input_len = int(keras_student.input.shape[1])
    sidecar = {
        "file": ONNX_FILE, "bytes": os.path.getsize(path), "opset": OPSET,
        "input": {"name": "student_ids", "dtype": "int32", "shape": ["batch", input_len]},
        "output": {"name": "logits", "dtype": "float32",
                   "shape": ["batch"] + list(keras_student.output.shape[1:])},
        "ops": onnx_ops(model),
        "gelu": "TF Erfc rewritten as 1 - Erf(x) at conversion (exact GELU kept)",
        "converter": {"tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
                      "onnxruntime": onnxruntime.__version__, "tensorflow": tf.__version__,
                      "seconds": round(seconds, 2)},
        "parity": dict(figures, sentences=int(len(ids)), inputs=source,
                       argmax_over=_argmax_over(weights)),
    }
    with open(os.path.join(onnx_dir, SIDECAR), "w", encoding="utf-8") as f:
        json.dump(sidecar, f, indent=1)
    return sidecar
