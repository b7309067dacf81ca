"""Export of a trained student: a SavedModel that tags (NER) or classifies raw sentences, and
TFLite files.

Legend: N examples, T seq_len, C labels; classification: logits [1, C], and pairs read
[1, 2T] ids (each text's T one after the other).

Everything is written under `model_dir/export/`:
  saved_model/models.config        TF Serving model config file (absolute base path)
  saved_model/<name>/<version>/    SavedModel: signatures 'serving_default' and 'student_ids'
  tflite/student_fp32.tflite       student ids int32 [1, T] -> logits float32 [1, T, C]
  tflite/student_fp16.tflite       the same with float16 weights
  tflite/student_int8.tflite       int8 weights (dynamic range; see the sidecar), and
  tflite/student_int8_full_integer.tflite  full-integer int8 when it agrees with Keras
  tflite/vocab.txt, teacher_vocab.txt, labels.txt, student_tflite.json (the sidecar)
  onnx/student.onnx                student ids int32 [B, T] -> logits (dynamic batch; needs
                                   tf2onnx and onnxruntime, else skipped), student_onnx.json
  (teacher_tokenizer/ instead of teacher_vocab.txt for teachers whose tokenizer is not BERT
  WordPiece: SentencePiece, BPE; BPE teachers get no SavedModel, as no in-graph BPE exists)

Modules: `graph_tokenizers` (the teacher's tokenizer in the graph: `wordpiece`,
`sentencepiece`), `spans` (raw text -> words -> entities in the graph), `saved_model` (the serving
signatures), `tflite` (conversion, quantisation, the one runner, the sidecar), `onnx` (the
same for ONNX). This module reads the trained run (`Manifest`) and exports it whole.
"""

import hashlib
import itertools
import json
import os

from absl import logging

from xtremedistil import students
from xtremedistil import tasks
from xtremedistil.export import graph_tokenizers
from xtremedistil.export import onnx
from xtremedistil.export import saved_model
from xtremedistil.export import tflite
from xtremedistil.export import wordpiece
from xtremedistil.export.saved_model import SERVING_SIGNATURE, STUDENT_IDS_SIGNATURE
from xtremedistil.export.tflite import TFLITE_FILES
from xtremedistil.export.wordpiece import UnsupportedTokenizerError
from xtremedistil.manifest import Manifest
from xtremedistil.students import vocab as vocab_lib

__all__ = ["SERVING_SIGNATURE", "STUDENT_IDS_SIGNATURE", "TFLITE_FILES",
           "UnsupportedTokenizerError", "calibration_set", "encode", "export_all",
           "load_student", "onnx", "saved_model", "saved_model_dir", "student_dims", "tflite",
           "wordpiece"]


def student_dims(manifest, seq_len=None):
    """students.Dims of a trained run (what its task's student predicts, its sizes); seq_len
    defaults to the run's."""
    return students.Dims(len(manifest.student_vocab), seq_len or manifest.options.seq_len,
                         len(manifest.labels), manifest.teacher_hidden_size,
                         tasks.get(manifest.task).student_output)


def load_student(manifest, batch_size=None, seq_len=None, weights=None):
    """The trained student (tf-keras, logits only) with best.h5 (or the weights file given, such
    as a stage's) loaded; a static batch_size for TFLite. seq_len defaults to the run's; the
    weights fit any."""
    model = students.get(manifest.options).build(student_dims(manifest, seq_len),
                                                 batch_size=batch_size)
    model.load_weights(weights or manifest.student_weights)
    return students.output_model(model, "logits")


def encode(manifest, examples, seq_len=None, tokenizer=None):
    """(student ids [N, T] (pairs [N, 2T]), tasks.Encoded) of examples, as training encodes
    them: the task's encoding with the teacher's tokenizer, then the run's student vocabulary
    on the pieces the student reads (Encoded.student_pieces)."""
    if tokenizer is None:
        from xtremedistil import teacher as teacher_lib  # pylint: disable=import-outside-toplevel
        tokenizer = teacher_lib.load_tokenizer(manifest.teacher_dir)
    encoded = tasks.get(manifest.task).encode(examples, tokenizer,
                                              seq_len or manifest.options.seq_len)
    vocab = vocab_lib.StudentVocab(vocab_lib.teacher_ids_of(manifest.student_vocab,
                                                            tokenizer.get_vocab()))
    teacher_vocab_size = max(manifest.teacher_vocab_size, len(tokenizer),
                             int(vocab.teacher_ids.max()) + 1)
    return vocab.to_student_ids(encoded.student_pieces, teacher_vocab_size), encoded


def calibration_set(manifest, limit):
    """(student ids [N, T], label weights [N, T]; classification [N]) of the first `limit`
    transfer examples, read with the run's data options; None when the transfer file is
    missing or empty."""
    options = manifest.options
    if not options.transfer_file or not os.path.exists(options.transfer_file):
        return None
    # Only the first `limit` examples are read: transfer files can be far larger than memory.
    examples = list(itertools.islice(
        tasks.get(manifest.task).transfer_examples(options), limit))
    if not examples:
        return None
    ids, encoded = encode(manifest, examples)
    return ids, encoded.label_weights


def saved_model_dir(model_dir, name="student", version=1):
    return os.path.join(model_dir, "export", "saved_model", name, str(version))


EXPORT_RECORD = "export.json"  # in <model_dir>/export/: what the last export_all wrote
PATH_KEYS = ("saved_model", "serving_config", "tflite_dir", "onnx", "checkpoint")


def export_all(model_dir, name="student", version=1, unless_current=False):
    """Exports a trained model_dir: SavedModel (+ TF Serving config), TFLite and ONNX files.

    Returns {"saved_model": dir, "serving_config": path, "tflite_dir": dir, "tflite": sidecar,
    "onnx": path (None when tf2onnx or onnxruntime is not installed), "checkpoint": dir}.
    The SavedModel tokenises in the graph, which needs a BERT WordPiece or SentencePiece
    Unigram teacher: for others (BPE) it is skipped with a warning (saved_model and
    serving_config None), and the TFLite files carry the teacher's tokenizer instead.
    With unless_current (a resumed training run), an export of this very student (its weights
    and config.json, the same name and version) whose files all exist is kept as it is.
    """
    manifest = Manifest.read(model_dir)
    record_path = os.path.join(model_dir, "export", EXPORT_RECORD)
    source = {"student": _fingerprint(manifest), "name": name, "version": version}
    if unless_current:
        current = _current_export(record_path, source)
        if current:
            logging.info("export: %s is of this student already (--mode=export rewrites it)",
                         os.path.dirname(record_path))
            return current
    result = _export(manifest, model_dir, name, version)
    relative = {key: os.path.relpath(value, model_dir) if key in PATH_KEYS and value else value
                for key, value in result.items()}
    with open(record_path, "w", encoding="utf-8") as f:
        json.dump({"source": source, "result": relative}, f, indent=1)
    return result


def _fingerprint(manifest):
    """sha256 of the student's weights file and the run's config.json."""
    digest = hashlib.sha256()
    for path in (manifest.student_weights, os.path.join(manifest.model_dir, "config.json")):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _current_export(record_path, source):
    """export_all's result recorded in record_path (paths relative to the model_dir, so that
    a moved run keeps it) when it was made from `source` and every file it names exists; else
    None."""
    if not os.path.exists(record_path):
        return None
    with open(record_path, encoding="utf-8") as f:
        record = json.load(f)
    model_dir = os.path.dirname(os.path.dirname(record_path))
    result = {key: os.path.join(model_dir, value) if key in PATH_KEYS and value else value
              for key, value in record["result"].items()}
    if record["source"] != source or not all(os.path.exists(result[key])
                                             for key in PATH_KEYS if result.get(key)):
        return None
    return result


def _export(manifest, model_dir, name, version):
    student = load_student(manifest)
    export_root = os.path.join(model_dir, "export")
    saved_model_path = serving_config = None
    try:
        graph_tokenizers.read_settings(manifest.teacher_dir, manifest.do_lower_case)
    except UnsupportedTokenizerError as error:
        logging.warning("export: SavedModel skipped, its in-graph tokenizer needs BERT "
                        "WordPiece or SentencePiece Unigram: %s", error)
    else:
        saved_model_path = saved_model.export_saved_model(
            manifest, saved_model_dir(model_dir, name, version), student)
        serving_config = saved_model.write_serving_config(
            os.path.join(export_root, "saved_model"), name)
        logging.info("export: SavedModel in %s, TF Serving config %s", saved_model_path,
                     serving_config)
    tflite_dir = os.path.join(export_root, "tflite")
    sidecar = tflite.export_tflite(
        manifest, tflite_dir, student, load_student(manifest, batch_size=1),
        calibration_set(manifest, tflite.CALIBRATION_SENTENCES + tflite.CHECK_SENTENCES))
    logging.info("export: TFLite files in %s (%s)", tflite_dir, ", ".join(
        f"{file_name} {record['bytes']:,} bytes, {record['quantisation']}"
        for file_name, record in sidecar["files"].items()))
    onnx_path = None
    missing = onnx.missing_packages()
    if missing:
        logging.warning("export: ONNX skipped, %s not installed (pip install -r "
                        "requirements.txt)", ", ".join(missing))
    else:
        onnx_dir = os.path.join(export_root, "onnx")
        onnx_sidecar = onnx.export_onnx(onnx_dir, load_student(onnx.without_dropout(manifest)),
                                        calibration_set(manifest, onnx.CHECK_SENTENCES))
        onnx_path = os.path.join(onnx_dir, onnx.ONNX_FILE)
        logging.info("export: ONNX file %s (%s bytes, opset %d; max |logits - Keras| %.2g)",
                     onnx_path, f"{onnx_sidecar['bytes']:,}", onnx_sidecar["opset"],
                     onnx_sidecar["parity"]["max_abs_logits_diff"])
    checkpoint = students.get(manifest.options).export_checkpoint(
        student, manifest, os.path.join(export_root, "checkpoint"))
    if checkpoint is not None:
        logging.info("export: the student as a checkpoint folder in %s", checkpoint)
    return {"saved_model": saved_model_path, "serving_config": serving_config,
            "tflite_dir": tflite_dir, "tflite": sidecar, "onnx": onnx_path,
            "checkpoint": checkpoint}
