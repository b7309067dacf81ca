"""TFLite files of a trained student: conversion, quantisation, the runner and the sidecar.

Legend: N sentences, T seq_len, C labels.

  student_fp32.tflite   student ids int32 [1, T] -> logits float32 [1, T, C] (NER);
                        classification [1, T] -> [1, C], pairs [1, 2T] -> [1, C]
  student_fp16.tflite   the same with float16 weights
  student_int8.tflite   int8 weights, float32 activations (dynamic range): the fastest int8
                        file on CPU, when it agrees with Keras on held-out transfer sentences
                        (tags, or labels); else full-integer if that agrees
  student_int8_full_integer.tflite   int8 weights and activations, for integer-only
                        hardware; written when it agrees with Keras (the sidecar records
                        each file's quantisation, agreement and use)
  vocab.txt, labels.txt, teacher_vocab.txt (or teacher_tokenizer/), student_tflite.json

`tflite_logits` is the one runner of these files: export's checks, the tests and the latency
benchmark all run them through it.
"""

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from xtremedistil import console
from xtremedistil import tasks
from xtremedistil.export import saved_model
from xtremedistil.export import wordpiece

TFLITE_FILES = {"fp32": "student_fp32.tflite", "fp16": "student_fp16.tflite",
                "int8": "student_int8.tflite"}  # always written
ALTERNATIVE_FILES = {"int8_full_integer": "student_int8_full_integer.tflite"}  # when it agrees
SIDECAR = "student_tflite.json"
MIN_INT8_AGREEMENT = 0.98  # an int8 file is kept only if it agrees this well with Keras
CALIBRATION_SENTENCES = 200  # transfer sentences that calibrate full-integer int8
CHECK_SENTENCES = 200  # further transfer sentences the int8 files' tags are checked on


# === Conversion and the runner ===

def save_static_batch_student(student_batch1, input_len, folder):
    """Saves the batch-1 student as a SavedModel for the TFLite converter.

    Its 'serving_default' signature: student_ids int32 [1, input_len] (T; pairs 2T) ->
    logits float32 [1, T, C] (classification [1, C]). With the static batch, the converter
    fuses each LSTM into UNIDIRECTIONAL_SEQUENCE_LSTM.
    """
    module = tf.Module()
    module.student_weights = list(student_batch1.weights)
    call = saved_model.untracked_call(student_batch1)
    serve = tf.function(lambda student_ids: {"logits": call(student_ids)})
    signature = serve.get_concrete_function(
        tf.TensorSpec([1, input_len], tf.int32, name="student_ids"))
    tf.saved_model.save(module, folder, signatures={saved_model.SERVING_SIGNATURE: signature})
    return folder


def convert_tflite(static_saved_model, quantisation, representative_ids=None):
    """TFLite flatbuffer bytes of the batch-1 student SavedModel, builtin ops only.

    quantisation: 'fp32' (none), 'fp16' (float16 weights), 'dynamic_range' (int8 weights,
    float activations) or 'full_integer' (int8 weights and activations, calibrated on
    representative_ids [N, T]; int32 ids in, float32 logits out).
    """
    if quantisation not in ("fp32", "fp16", "dynamic_range", "full_integer"):
        raise ValueError(f"quantisation={quantisation!r}: expected fp32, fp16, dynamic_range "
                         "or full_integer.")
    converter = tf.lite.TFLiteConverter.from_saved_model(static_saved_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantisation != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantisation == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantisation == "full_integer":
        converter.representative_dataset = lambda: ([row[None, :]] for row in representative_ids)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with console.quiet_converter():
        return converter.convert()


def tflite_interpreter(model_path=None, model_content=None, runtime="litert", num_threads=None,
                       default_delegates=False):
    """An allocated interpreter.

    runtime: 'litert' (ai_edge_litert) or 'tf' (tf.lite.Interpreter). Without default
    delegates op lists show every op (the checks); with them (XNNPACK) it runs as apps do.
    """
    if runtime == "litert":
        from ai_edge_litert import interpreter as litert  # pylint: disable=import-outside-toplevel
        interpreter_class, resolver = litert.Interpreter, litert.OpResolverType
    elif runtime == "tf":
        interpreter_class, resolver = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    else:
        raise ValueError(f"runtime={runtime!r}: expected 'litert' or 'tf'.")
    interpreter = interpreter_class(
        model_path=model_path, model_content=model_content, num_threads=num_threads,
        experimental_op_resolver_type=(resolver.AUTO if default_delegates
                                       else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interpreter.allocate_tensors()
    return interpreter


def tflite_logits(interpreter, student_ids):
    """Runs a [1, T] TFLite student sentence by sentence: [N, T] ids -> [N, T, C] logits
    (classification: [N, T] or pairs [N, 2T] -> [N, C]).

    The fused LSTM ops keep their state in variable tensors between invocations, so the
    variables are reset before each sentence (as every app must do).
    """
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    logits = []
    for row in np.asarray(student_ids, np.int32):
        interpreter.reset_all_variables()
        interpreter.set_tensor(input_index, row[None, :])
        interpreter.invoke()
        logits.append(interpreter.get_tensor(output_index)[0])
    return np.stack(logits)


def tflite_ops(interpreter):
    """Sorted op names of an interpreter's graph."""
    details = interpreter._get_ops_details()  # pylint: disable=protected-access
    return sorted({op["op_name"] for op in details})


def tag_agreement(logits_a, logits_b, mask):
    """Share of masked positions where two [N, T, C] logits pick the same tag; for
    classification [N, C] logits and [N] weights, the share of examples with the same label."""
    same = np.argmax(logits_a, -1) == np.argmax(logits_b, -1)
    return float(same[mask > 0].mean()) if mask.sum() else 1.0


# === int8: dynamic range, full-integer beside it ===

# student_int8.tflite is the first of these that agrees with Keras. On an x86 CPU dynamic
# range takes 0.55-0.71x fp32's time and full-integer 2-5x, with or without the default
# delegate: XNNPACK takes no LSTM and the int8 LSTM kernels are slow
# (benchmarks/tflite_variants.py, RESULTS #54). Both are < 5 MB (the embedding table in int8).
INT8_PREFERENCE = ("dynamic_range", "full_integer")
INT8_USE = {
    "dynamic_range": ("int8 weights, float32 activations: the fastest int8 file on CPU, "
                      "faster than fp32 with the default delegate (XNNPACK); "
                      "benchmarks/tflite_variants.py, RESULTS #54"),
    "full_integer": ("int8 weights and activations (int8 fused LSTMs): for integer-only "
                     "hardware (NPU, DSP, Edge TPU, microcontrollers); on an x86 CPU 2-5x slower "
                     "than fp32 (RESULTS #54); unmeasured on ARM"),
}


def split_check_set(transfer):
    """(calibration ids [n, T], held-out ids [m, T], held-out label weights) of the int8 check
    set: the first CALIBRATION_SENTENCES calibrate full-integer int8, the next
    CHECK_SENTENCES check agreement (a smaller set: half and half)."""
    ids, weights = transfer
    split = (CALIBRATION_SENTENCES if len(ids) >= CALIBRATION_SENTENCES + CHECK_SENTENCES
             else len(ids) // 2)
    return ids[:split], ids[split:], weights[split:]


def _first_line(error):
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


def _full_integer(static_saved_model, calibrate, check):
    """(flatbuffer or None, record): full-integer int8 calibrated on `calibrate` [n, T];
    record check(flat) ({agreement, held_out_sentences}) plus calibration_sentences, or why
    it failed."""
    try:
        flat = convert_tflite(static_saved_model, "full_integer", calibrate)
    except Exception as error:  # pylint: disable=broad-except
        return None, f"conversion failed: {_first_line(error)}"
    try:
        record = check(flat)
    except RuntimeError as error:  # converted, but a kernel lacks int8
        return None, f"does not run: {_first_line(error)}"
    return flat, dict(record, calibration_sentences=int(len(calibrate)))


def _agreement_check(keras_student, held_out, weights, agreement_key):
    """A function: flatbuffer -> {agreement_key: its agreement with Keras on held_out [m, T]
    (words with label weights > 0; classification: examples), "held_out_sentences": m}."""
    keras_logits = keras_student.predict(held_out, verbose=0)

    def check(flat):
        logits = tflite_logits(tflite_interpreter(model_content=flat), held_out)
        return {agreement_key: round(tag_agreement(logits, keras_logits, weights), 4),
                "held_out_sentences": int(len(held_out))}
    return check


def _choose_int8(candidates, full_integer_record, agreement_key):
    """{"int8": (flatbuffer, record)}, plus "int8_full_integer" when full-integer agrees but
    is not the int8 file. candidates: {quantisation: (flatbuffer, check record)};
    full_integer_record: its check record, or why it is missing."""
    agreeing = [quantisation for quantisation in INT8_PREFERENCE if quantisation in candidates
                and candidates[quantisation][1][agreement_key] >= MIN_INT8_AGREEMENT]
    chosen = agreeing[0] if agreeing else max(
        candidates, key=lambda quantisation: candidates[quantisation][1][agreement_key])
    alternative = "full_integer" in agreeing and chosen != "full_integer"
    if "full_integer" in candidates and chosen != "full_integer":
        full_integer_record = dict(full_integer_record, file=(
            ALTERNATIVE_FILES["int8_full_integer"] if alternative else
            f"not written: agrees on {full_integer_record[agreement_key]} < "
            f"{MIN_INT8_AGREEMENT}"))
    models = {"int8": (candidates[chosen][0], {
        "quantisation": chosen,
        "use": (INT8_USE[chosen] if agreeing else
                f"no int8 file agrees with Keras on >= {MIN_INT8_AGREEMENT}: the closest"),
        "dynamic_range": candidates["dynamic_range"][1], "full_integer": full_integer_record})}
    if alternative:
        models["int8_full_integer"] = (candidates["full_integer"][0], {
            "quantisation": "full_integer", "use": INT8_USE["full_integer"],
            **candidates["full_integer"][1]})
    return models


def _int8_models(static_saved_model, keras_student, transfer, transfer_file,
                 agreement_key="tag_agreement"):
    """{"int8": (flatbuffer, record)} and, when full-integer agrees with Keras but is not the
    int8 file, {"int8_full_integer": (flatbuffer, record)} beside it.

    The int8 file is the first of INT8_PREFERENCE that agrees with Keras on >=
    MIN_INT8_AGREEMENT of held-out transfer words (classification: examples' labels), else
    the one that agrees best; without a transfer set, dynamic range unchecked. transfer:
    (student ids [N, T], label weights [N, T] or [N]) of the first CALIBRATION_SENTENCES +
    CHECK_SENTENCES transfer sentences, or None. agreement_key names the agreement in the
    records: 'tag_agreement' (NER) or 'label_agreement'.
    """
    dynamic_range = convert_tflite(static_saved_model, "dynamic_range")
    if transfer is None or len(transfer[0]) <= CALIBRATION_SENTENCES // 2:
        return {"int8": (dynamic_range, {
            "quantisation": "dynamic_range", "use": INT8_USE["dynamic_range"],
            "full_integer": (f"not tried: transfer_file {transfer_file!r} is missing or too "
                             "small for calibration")})}
    calibrate, held_out, weights = split_check_set(transfer)
    check = _agreement_check(keras_student, held_out, weights, agreement_key)
    candidates = {"dynamic_range": (dynamic_range, check(dynamic_range))}
    full_integer, full_integer_record = _full_integer(static_saved_model, calibrate, check)
    if full_integer is not None:
        candidates["full_integer"] = (full_integer, full_integer_record)
    return _choose_int8(candidates, full_integer_record, agreement_key)


# === The files and the sidecar ===

_RECIPE_TAIL = (
    "The tag of a word is argmax of the logits at its first piece (labels.txt, line = tag id); "
    "words cut off by seq_len get 'O'. Entities: the tags merged as seqeval merges them (an "
    "I- after O or another type starts one), from the first word's start to the last word's "
    "end, scored by the mean tag probability. Reset the interpreter's variable tensors before "
    "every sentence (Python reset_all_variables(), Java resetVariableTensors()): the fused "
    "LSTM ops keep the previous sentence's state in them. xtremedistil/reference.py does all "
    "this in Python.")
_SPLIT_WORDS = (
    "Split the sentence into words as the SavedModel does (xtremedistil/words.py "
    "split_words): at Unicode whitespace (Python str.isspace), and every punctuation character "
    "(ASCII symbols, Unicode P*) and CJK ideograph is a word of its own; keep each word's "
    "character offsets. ")
TOKENISATION_RECIPE = (
    _SPLIT_WORDS + "Tokenise each word on its own with the "
    "teacher's BERT WordPiece tokenizer (teacher_vocab.txt; lower-case and strip accents if "
    "do_lower_case; split at punctuation and CJK characters; '##' continuation pieces; words "
    "over 100 characters become [UNK]); a word with no piece at all becomes [UNK]. Map each "
    "piece string to its line number in vocab.txt (the student id), or to unk_id when absent. "
    "Input = [cls_id] + the first seq_len - 2 pieces + [sep_id], padded with pad_id to seq_len. "
    + _RECIPE_TAIL)
TEACHER_TOKENIZER_RECIPE = (
    _SPLIT_WORDS + "Tokenise the words with the teacher's own "
    "tokenizer in teacher_tokenizer/ (Hugging Face tokenizers: tokenizer(words, "
    "is_split_into_words=True, truncation=True, max_length=seq_len, padding='max_length'), "
    "which adds its special pieces); a word with no piece at all becomes the unknown piece. "
    "Map each teacher piece to its line number in vocab.txt (the student id), or to unk_id "
    "when absent. (SentencePiece teachers: the tokenizers library on "
    "teacher_tokenizer/tokenizer.json; a SentencePiece .model built from it would not give the "
    "same pieces, as the Hugging Face normaliser maps whole grapheme clusters.) "
    + _RECIPE_TAIL)

# Classification: a whole raw text (pairs: each text on its own) gives seq_len ids.
_TEXT_RECIPE_TAIL = (
    "The label is labels.txt[argmax(logits[0])] (line = label id; softmax of the logits gives "
    "the probabilities). Reset the interpreter's variable tensors before every input (Python "
    "reset_all_variables(), Java resetVariableTensors()): the fused LSTM ops keep the previous "
    "input's state in them.")
_PAIR_IDS = ("For a sentence pair, make these seq_len ids for text_a and, on its own, for "
             "text_b, and concatenate them: input [1, 2 * seq_len]. ")
TEXT_TOKENISATION_RECIPE = (
    "Tokenise the whole raw text with the teacher's BERT WordPiece tokenizer, as "
    "tokenizer(text, truncation=True, max_length=seq_len, padding='max_length') does "
    "(teacher_vocab.txt; lower-case and strip accents if do_lower_case; split at whitespace, "
    "punctuation and CJK characters; '##' continuation pieces; tokens over 100 characters "
    "become [UNK]). Map each piece string to its line number in vocab.txt (the student id), "
    "or to unk_id when absent. Input = [cls_id] + the first seq_len - 2 pieces + [sep_id], "
    "padded with pad_id to seq_len. ")
TEXT_TEACHER_TOKENIZER_RECIPE = (
    "Tokenise the whole raw text with the teacher's own tokenizer in teacher_tokenizer/ "
    "(Hugging Face tokenizers: tokenizer(text, truncation=True, max_length=seq_len, "
    "padding='max_length'), which adds its special pieces). Map each teacher piece to its "
    "line number in vocab.txt (the student id), or to unk_id when absent. ")


def tokenisation_recipes(student_output):
    """(WordPiece recipe, teacher-tokenizer recipe) of the sidecar for what the student reads:
    'tokens' (NER words), 'sentence' (a raw text) or 'pair' (two raw texts)."""
    if student_output == "tokens":
        return TOKENISATION_RECIPE, TEACHER_TOKENIZER_RECIPE
    pair = _PAIR_IDS if student_output == "pair" else ""
    return (TEXT_TOKENISATION_RECIPE + pair + _TEXT_RECIPE_TAIL,
            TEXT_TEACHER_TOKENIZER_RECIPE + pair + _TEXT_RECIPE_TAIL)


def _write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in lines))


def _tokenisation_sidecar(manifest, tflite_dir, student_output):
    """Sidecar fields on making student ids: BERT WordPiece settings and teacher_vocab.txt, or,
    for other teachers (BPE, SentencePiece), the teacher's tokenizer in teacher_tokenizer/."""
    wordpiece_recipe, teacher_tokenizer_recipe = tokenisation_recipes(student_output)
    ids = {piece: i for i, piece in enumerate(manifest.student_vocab)}
    try:
        settings = wordpiece.read_wordpiece_settings(manifest.teacher_dir,
                                                     manifest.do_lower_case)
    except wordpiece.UnsupportedTokenizerError:
        from xtremedistil import teacher as teacher_lib  # pylint: disable=import-outside-toplevel
        tokenizer = teacher_lib.load_tokenizer(manifest.teacher_dir)
        tokenizer.save_pretrained(os.path.join(tflite_dir, "teacher_tokenizer"))
        special = (tokenizer.pad_token, tokenizer.unk_token, tokenizer.cls_token,
                   tokenizer.sep_token)
        tokenisation = {"teacher_tokenizer": "teacher_tokenizer",
                        "tokenisation": teacher_tokenizer_recipe}
    else:
        special = (settings.pad_token, settings.unk_token, settings.cls_token,
                   settings.sep_token)
        shutil.copyfile(os.path.join(manifest.teacher_dir, "vocab.txt"),
                        os.path.join(tflite_dir, "teacher_vocab.txt"))
        tokenisation = {"do_lower_case": settings.lowercase,
                        "strip_accents": settings.strip_accents,
                        "max_chars_per_word": settings.max_chars_per_word,
                        "teacher_vocab": "teacher_vocab.txt", "tokenisation": wordpiece_recipe}
    pad, unk, cls, sep = special
    return {"pad_id": ids.get(pad, 0), "unk_id": ids.get(unk, 1), "cls_id": ids.get(cls, 1),
            "sep_id": ids.get(sep, 1), **tokenisation}


def _write_models(models, tflite_dir):
    """Writes {key: (flatbuffer, record)} as TFLITE_FILES / ALTERNATIVE_FILES[key] (removing
    an alternative left by an earlier export); returns the sidecar's `files`: {file name:
    record + bytes and ops}."""
    names = {**TFLITE_FILES, **ALTERNATIVE_FILES}
    for key, name in ALTERNATIVE_FILES.items():
        if key not in models and os.path.exists(os.path.join(tflite_dir, name)):
            os.remove(os.path.join(tflite_dir, name))
    files = {}
    for key, (flat, record) in models.items():
        path = os.path.join(tflite_dir, names[key])
        with open(path, "wb") as f:
            f.write(flat)
        ops = tflite_ops(tflite_interpreter(model_content=flat))
        if any(op.startswith("Flex") or op == "CUSTOM" for op in ops):
            raise RuntimeError(f"{path} needs non-builtin ops {ops}; it would not run on the "
                               "plain TFLite runtime.")
        files[names[key]] = dict(record, bytes=len(flat), ops=ops)
    return files


def export_tflite(manifest, tflite_dir, keras_student, static_student, transfer):
    """Writes student_{fp32,fp16,int8}.tflite (and student_int8_full_integer.tflite when it
    agrees with Keras), vocab/labels files and the json sidecar.

    keras_student: the logits-only student (`export.load_student`); static_student the same
    with a static batch of 1; transfer: the int8 calibration set (see _int8_models).
    """
    seq_len = manifest.options.seq_len
    student_output = tasks.get(manifest.task).student_output
    os.makedirs(tflite_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        static = save_static_batch_student(static_student, int(static_student.input.shape[1]),
                                           tmp)
        models = {"fp32": (convert_tflite(static, "fp32"), {"quantisation": "none (float32)"}),
                  "fp16": (convert_tflite(static, "fp16"), {"quantisation": "float16 weights"}),
                  **_int8_models(static, keras_student, transfer,
                                 manifest.options.transfer_file,
                                 "tag_agreement" if student_output == "tokens"
                                 else "label_agreement")}
    files = _write_models(models, tflite_dir)
    _write_lines(os.path.join(tflite_dir, "vocab.txt"), manifest.student_vocab)
    _write_lines(os.path.join(tflite_dir, "labels.txt"), manifest.labels)
    interpreter = tflite_interpreter(model_content=models["fp32"][0])
    signature = interpreter.get_signature_list()
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    if student_output == "tokens":
        task_fields = {"num_tags": len(manifest.labels),
                       "outside_tag": saved_model.OUTSIDE_TAG}
    else:  # what the student reads: one text, or a pair's two texts one after the other
        task_fields = {"task": manifest.task, "num_labels": len(manifest.labels),
                       "texts": 2 if student_output == "pair" else 1}
    sidecar = {
        "seq_len": seq_len, "batch_size": 1, **task_fields,
        "input": {"tensor_name": input_detail["name"], "signature_input": "student_ids",
                  "dtype": "int32", "shape": [int(d) for d in input_detail["shape"]]},
        "output": {"tensor_name": output_detail["name"], "signature_output": "logits",
                   "dtype": "float32", "shape": [int(d) for d in output_detail["shape"]]},
        "signatures": {k: {"inputs": v["inputs"], "outputs": v["outputs"]}
                       for k, v in signature.items()},
        "vocab": "vocab.txt", "labels": "labels.txt",
        **_tokenisation_sidecar(manifest, tflite_dir, student_output), "files": files,
    }
    with open(os.path.join(tflite_dir, SIDECAR), "w", encoding="utf-8") as f:
        json.dump(sidecar, f, indent=1, ensure_ascii=False)
    return sidecar
