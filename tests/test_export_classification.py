"""Export of sentence and sentence-pair classification runs: the SavedModel classifies raw text
as the Keras student does, TFLite files with builtin ops, the sidecar's recipe, predict mode.

One tiny run of each task (a third of the synthetic task's size, the soft mode, 1-2 epochs):
the pair run through run_xtreme_distil.py, whose train mode ends by exporting, in a
subprocess while the sentence run trains here."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import transformers

from tests.conftest import script_flags, tiny_config
from xtremedistil import data as data_lib
from xtremedistil import export, pipeline, predict, students, tasks
from xtremedistil.data import TextExample
from xtremedistil.export import tflite
from xtremedistil.manifest import Manifest
from xtremedistil.synthetic import write_classification_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = (("train", 120), ("dev", 30), ("test", 30))
TRANSFER = 240  # > 200: the int8 check holds out 120 of them
SEQ_LEN = 16

# Raw texts that must not break serving. The tiny teacher knows only a-z, so most are [UNK].
EDGE_TEXTS = [
    "",
    "   ",
    "alice met bob smith in paris",
    " ".join(["paris"] * 40),  # longer than seq_len pieces
    "Привет Москва alice",
    "東京タワー に alice 去",
    "☃ ⍼ 🥰 alice \u200b rome",
    "ALICE Paris-Rome don't [SEP] x[CLS]y!!",
    "café naïve ΟΔΟΣ İstanbul Straße",
    "tab\tinside, a\nnewline and\x0bcontrol",
    "é" * 120 + " " + "a" * 101,
]

FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenisation ops the SavedModel uses
results = {}
for name, (path, inputs) in json.loads(sys.stdin.read()).items():
    classify = tf.saved_model.load(path).signatures["serving_default"]
    outputs = classify(**{k: tf.constant(v) for k, v in inputs.items()})
    results[name] = {"label": [t.decode() for t in outputs["label"].numpy()],
                     "probabilities": outputs["probabilities"].numpy().tolist(),
                     "labels": [[t.decode() for t in row] for row in outputs["labels"].numpy()]}
results["project_modules"] = sorted(m for m in sys.modules if m.startswith("xtremedistil"))
print(json.dumps(results))
"""


def run_config(tmp, pairwise):
    """Options of a tiny run; both runs share the tiny BERT teacher in tmp. The export is under
    test, not distillation: the students learn the labels alone (--distil_mode=none)."""
    name = "pairs" if pairwise else "sentences"
    task = write_classification_task(tmp / f"{name}_task", pairwise=pairwise, sizes=SIZES,
                                     transfer=TRANSFER)
    return tiny_config(tmp, task=str(task), transfer_file=str(task / "transfer.txt"),
                       model_dir=str(tmp / name), do_NER=False, do_pairwise=pairwise,
                       distil_mode="none", strategy="default", seq_len=SEQ_LEN, ft_epochs=2,
                       distil_epochs=1, baseline=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{'classification': (manifest, export_all's result), 'pairs': ...}."""
    tmp = tmp_path_factory.mktemp("classification_export")
    sentence_config, pair_config = run_config(tmp, False), run_config(tmp, True)
    # The teacher is written before the script starts, so the two runs do not race for it.
    log = tmp / "pairs_script.log"
    with open(log, "w", encoding="utf-8") as log_file:
        script = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "run_xtreme_distil.py", "--mode=train"] + script_flags(pair_config),
            cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            pipeline.run(sentence_config)
            sentence_export = export.export_all(sentence_config.model_dir)
            script.wait(timeout=600)
        finally:
            if script.poll() is None:
                script.kill()
                script.wait()
    assert script.returncode == 0, log.read_text(encoding="utf-8")[-5000:]
    pair_export = dict(saved_model=export.saved_model_dir(pair_config.model_dir),
                       tflite_dir=os.path.join(pair_config.model_dir, "export", "tflite"))
    with open(os.path.join(pair_export["tflite_dir"], tflite.SIDECAR), encoding="utf-8") as f:
        pair_export["tflite"] = json.load(f)
    return {"classification": (Manifest.read(sentence_config.model_dir), sentence_export),
            "pairs": (Manifest.read(pair_config.model_dir), pair_export)}


TASKS = ("classification", "pairs")


@pytest.fixture(scope="module")
def keras_students(runs):
    """{task: the trained Keras student (logits)}, built from the manifest and best.h5."""
    built = {}
    for name, (manifest, _) in runs.items():
        model = students.get(manifest.options).build(students.Dims(
            len(manifest.student_vocab), manifest.options.seq_len, len(manifest.labels),
            manifest.teacher_hidden_size, tasks.get(name).student_output))
        model.load_weights(manifest.student_weights)
        built[name] = students.output_model(model, "logits")
    return built


@pytest.fixture(scope="module")
def loaded(runs):
    return {name: tf.saved_model.load(paths["saved_model"])
            for name, (_, paths) in runs.items()}


def examples_of(name, manifest):
    """The run's test examples, then the edge texts (pairs: each with another edge text)."""
    examples = tasks.get(name).read_labeled(manifest.options).test
    others = EDGE_TEXTS[::-1] if name == "pairs" else [None] * len(EDGE_TEXTS)
    return examples + [TextExample(a, b, None, "xx", "edge")
                       for a, b in zip(EDGE_TEXTS, others)]


def serving_inputs(name, examples):
    inputs = {"sentences": [e.text for e in examples]}
    if name == "pairs":
        inputs["sentences_b"] = [e.text_b for e in examples]
    return inputs


def keras_probabilities(manifest, student, examples):
    ids, _ = export.encode(manifest, examples)
    return tf.nn.softmax(student.predict(ids, verbose=0)).numpy()


# === SavedModel ===

def test_fresh_process_serving_gives_the_keras_labels(runs, keras_students):
    request = {name: (os.path.abspath(paths["saved_model"]),
                      serving_inputs(name, examples_of(name, manifest)))
               for name, (manifest, paths) in runs.items()}
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS], input=json.dumps(request), capture_output=True,
        text=True, timeout=300, check=False, cwd=os.path.dirname(request["pairs"][0]),
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["project_modules"] == []
    for name, (manifest, _) in runs.items():
        expected = keras_probabilities(manifest, keras_students[name],
                                       examples_of(name, manifest))
        assert served[name]["label"] == [manifest.labels[i] for i in expected.argmax(-1)]
        np.testing.assert_allclose(served[name]["probabilities"], expected, atol=1e-5)
        assert served[name]["labels"] == [manifest.labels] * len(expected)


@pytest.mark.parametrize("name", TASKS)
def test_in_graph_ids_equal_the_python_encoding(runs, loaded, name):
    manifest, _ = runs[name]
    examples = examples_of(name, manifest) + [
        TextExample("Alice's U.S.A. e-mail:x@y.z (rome) «paris» 1,000.5",
                    "x \u0301 y \x00z \ufffd\x1c w", None, "xx", "edge")]
    inputs = serving_inputs(name, examples)
    tokenized = loaded[name].tokenize(**{k: tf.constant(v) for k, v in inputs.items()})
    ids, _ = export.encode(manifest, examples)
    assert ids.shape == (len(examples), (2 if name == "pairs" else 1) * SEQ_LEN)
    np.testing.assert_array_equal(tokenized["student_ids"].numpy(), ids)


@pytest.mark.parametrize("name", TASKS)
def test_signatures_take_texts_and_student_ids(runs, loaded, keras_students, name):
    manifest, _ = runs[name]
    serve = loaded[name].signatures["serving_default"]
    _, inputs = serve.structured_input_signature
    assert sorted(inputs) == (["sentences", "sentences_b"] if name == "pairs"
                              else ["sentences"])
    assert all(spec.dtype == tf.string and spec.shape.as_list() == [None]
               for spec in inputs.values())
    empty = serve(**{k: tf.constant([], tf.string) for k in inputs})
    assert empty["label"].shape == (0,) and empty["probabilities"].shape == (0, len(
        manifest.labels))
    ids, _ = export.encode(manifest, examples_of(name, manifest)[:8])
    logits = loaded[name].signatures["student_ids"](student_ids=tf.constant(ids))["logits"]
    np.testing.assert_allclose(logits.numpy(), keras_students[name].predict(ids, verbose=0),
                               atol=1e-5)
    if name == "pairs":
        with pytest.raises(tf.errors.InvalidArgumentError, match="as many texts"):
            serve(sentences=tf.constant(["a", "b"]), sentences_b=tf.constant(["a"]))


# === TFLite ===

def tflite_path(paths, key):
    return os.path.join(paths["tflite_dir"], export.TFLITE_FILES[key])


@pytest.mark.parametrize("name", TASKS)
def test_tflite_logits_equal_keras_with_builtin_ops(runs, keras_students, name):
    manifest, paths = runs[name]
    ids, _ = export.encode(manifest, examples_of(name, manifest))
    keras_logits = keras_students[name].predict(ids, verbose=0)
    input_len = (2 if name == "pairs" else 1) * SEQ_LEN
    for key in export.TFLITE_FILES:
        interpreter = tflite.tflite_interpreter(tflite_path(paths, key))
        ops = tflite.tflite_ops(interpreter)
        assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and "WHILE" not in ops, ops
        assert interpreter.get_input_details()[0]["shape"].tolist() == [1, input_len]
        assert interpreter.get_output_details()[0]["shape"].tolist() == [1,
                                                                         len(manifest.labels)]
        logits = tflite.tflite_logits(interpreter, ids)
        if key == "fp32":
            np.testing.assert_allclose(logits, keras_logits, atol=1e-4)
        else:
            assert (logits.argmax(-1) == keras_logits.argmax(-1)).mean() >= 0.9, key


@pytest.mark.parametrize("name", TASKS)
def test_sidecar_recipe_gives_the_student_ids(runs, name):
    """An app's path: the sidecar, teacher_vocab.txt and vocab.txt give the ids training
    gives; full-integer int8 runs and its record names its label agreement."""
    manifest, paths = runs[name]
    sidecar, folder = paths["tflite"], paths["tflite_dir"]
    texts = 2 if name == "pairs" else 1
    assert (sidecar["task"], sidecar["texts"], sidecar["num_labels"]) == (
        name, texts, len(manifest.labels))
    assert sidecar["input"]["shape"] == [1, texts * SEQ_LEN]
    assert sidecar["output"]["shape"] == [1, len(manifest.labels)]
    assert ("text_b" in sidecar["tokenisation"]) == (name == "pairs")
    assert predict.read_lines(os.path.join(folder, "labels.txt")) == manifest.labels
    int8 = sidecar["files"][export.TFLITE_FILES["int8"]]
    assert isinstance(int8["full_integer"], dict), int8  # converted and ran: builtin int8 ops
    record = int8["full_integer" if int8["quantisation"] == "full_integer" else "dynamic_range"]
    assert record["label_agreement"] >= 0.9
    if int8["dynamic_range"]["label_agreement"] >= tflite.MIN_INT8_AGREEMENT:
        assert int8["quantisation"] == "dynamic_range", int8  # the fastest int8 file on CPU
    vocab = {p: i for i, p in enumerate(predict.read_lines(os.path.join(folder, "vocab.txt")))}
    wordpiece = transformers.BertTokenizerFast(os.path.join(folder, sidecar["teacher_vocab"]),
                                               do_lower_case=sidecar["do_lower_case"])
    examples = examples_of(name, manifest)

    def ids_of(text):
        pieces = wordpiece.tokenize(text)[:sidecar["seq_len"] - 2]
        row = ([sidecar["cls_id"]] + [vocab.get(p, sidecar["unk_id"]) for p in pieces]
               + [sidecar["sep_id"]])
        return row + [sidecar["pad_id"]] * (sidecar["seq_len"] - len(row))

    app_ids = [sum((ids_of(t) for t in (e.text, e.text_b)[:texts]), []) for e in examples]
    np.testing.assert_array_equal(np.asarray(app_ids), export.encode(manifest, examples)[0])


# === Predict mode ===

def test_predict_writes_one_line_per_text(runs, loaded, tmp_path):
    manifest, _ = runs["classification"]
    source = tmp_path / "texts.txt"
    source.write_text("alice met bob in paris\n\n  Rome, the CITY!  \n\u00e9t\u00e9 \u00e0 oslo",
                      encoding="utf-8")
    texts = ["alice met bob in paris", "Rome, the CITY!", "\u00e9t\u00e9 \u00e0 oslo"]
    served = loaded["classification"].signatures["serving_default"](
        sentences=tf.constant(texts))
    labels = [t.decode() for t in served["label"].numpy()]
    best = served["probabilities"].numpy().max(-1)
    tsv, jsonl = tmp_path / "labels.tsv", tmp_path / "labels.jsonl"
    assert predict.predict_file(manifest.model_dir, str(source), str(tsv)) == 3
    rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines()]
    assert [row[:2] for row in rows] == [list(p) for p in zip(texts, labels)]
    np.testing.assert_allclose([float(row[2]) for row in rows], best, atol=1e-6)
    predict.predict_file(manifest.model_dir, str(source), str(jsonl), "jsonl")
    records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["text"], r["label"]) for r in records] == list(zip(
        [1, 3, 4], texts, labels))
    assert all(sorted(r["probabilities"]) == sorted(manifest.labels)
               and r["probability"] == r["probabilities"][r["label"]] for r in records)
    with pytest.raises(ValueError, match="--output_format=conll: the classification task"):
        predict.predict_file(manifest.model_dir, str(source), str(tsv), "conll")
    source.write_text("one text\ntwo\tfields\n", encoding="utf-8")
    with pytest.raises(data_lib.DataError, match=r"texts.txt:2: expected 1 TAB-separated field "
                       r"\(text\), found 2 \(a labeled file given as --input\?\)"):
        predict.predict_file(manifest.model_dir, str(source), str(tsv))


def test_predict_script_writes_pairs(runs, loaded, tmp_path):
    manifest, _ = runs["pairs"]
    source, output = tmp_path / "pairs.txt", tmp_path / "pairs.tsv"
    pairs = [("alice met bob", "carol went to rome"), ("the acme people", "Erin, today!")]
    source.write_text("\n".join("\t".join(p) for p in pairs) + "\n\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "run_xtreme_distil.py", "--mode=predict",
         f"--model_dir={manifest.model_dir}", f"--input={source}", f"--output={output}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    served = loaded["pairs"].signatures["serving_default"](
        sentences=tf.constant([a for a, _ in pairs]),
        sentences_b=tf.constant([b for _, b in pairs]))
    rows = [line.split("\t") for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row[:3] for row in rows] == [[a, b, label.decode()] for (a, b), label in zip(
        pairs, served["label"].numpy())]
    np.testing.assert_allclose([float(row[3]) for row in rows],
                               served["probabilities"].numpy().max(-1), atol=1e-6)
    source.write_text("a pair\twith two texts\nno second text\n", encoding="utf-8")
    with pytest.raises(data_lib.DataError, match=r"pairs.txt:2: expected 2 TAB-separated "
                       r"fields \(text_a<TAB>text_b\), found 1"):
        predict.predict_file(manifest.model_dir, str(source), str(output))
