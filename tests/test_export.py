"""Export: the SavedModel (in-graph tokenisation, TF Serving files), TFLite, and predict mode."""

import itertools
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import transformers

from tests.conftest import SHARED_DATA, tiny_config
from xtremedistil import data as data_lib
from xtremedistil import export, pipeline, predict, reference, students, synthetic, words
from xtremedistil import teacher as teacher_lib
from xtremedistil.data import Sentence
from xtremedistil.export import tflite, wordpiece
from xtremedistil.manifest import Manifest
from xtremedistil.students import vocab as vocab_lib
from xtremedistil.tasks import tagging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Inputs that must not break serving. The tiny teacher knows only a-z, so most are [UNK].
EDGE_SENTENCES = [
    "",
    "   ",
    "alice met bob smith in paris",
    " ".join(["paris"] * 200),
    "Привет Москва alice",
    "東京タワー に alice 去",
    "☃ ⍼ 🥰 alice \u200b rome",
    "ALICE Paris-Rome don't [SEP] x[CLS]y",
    "café naïve ΟΔΟΣ İstanbul Straße",
    "é" * 120 + " " + "a" * 101,
]

FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenisation ops the SavedModel uses
loaded = tf.saved_model.load(sys.argv[1])
sentences = json.loads(sys.stdin.read())
outputs = loaded.signatures["serving_default"](sentences=tf.constant(sentences))
project = sorted(m for m in sys.modules if m.startswith("xtremedistil"))
print(json.dumps({
    "tags": [[t.decode() for t in row] for row in outputs["tags"].numpy()],
    "num_words": outputs["num_words"].numpy().tolist(),
    "project_modules": project}))
"""


@pytest.fixture(scope="module")
def keras_student(exported):
    """The trained Keras student (logits), built from the manifest's options and best.h5."""
    manifest, _ = exported
    model = students.get(manifest.options).build(students.Dims(
        len(manifest.student_vocab), manifest.options.seq_len, len(manifest.labels),
        manifest.teacher_hidden_size))
    model.load_weights(os.path.join(manifest.model_dir, "student", "best.h5"))
    return students.output_model(model, "logits")


@pytest.fixture(scope="module")
def test_set(exported):
    """(sentences, student ids [N, T], Encoded) of the held-out test split, as training did."""
    manifest, _ = exported
    sentences = data_lib.read_labeled_file(
        os.path.join(manifest.options.task, "test.tsv")).sentences
    return (sentences,) + export.encode(manifest, sentences)


def as_sentences(lines):
    """Raw lines as training data: split into words as the SavedModel splits them."""
    return [Sentence(tuple(w.text for w in words.split_words(line)), None, "xx", "test")
            for line in lines]


def keras_tags(manifest, student, lines):
    """Word tags of the Keras student path: tagging.encode, predict, tagging.word_tags."""
    sentences = as_sentences(lines)
    ids, encoded = export.encode(manifest, sentences)
    predicted = np.argmax(student.predict(ids, verbose=0), axis=-1)
    return tagging.word_tags(predicted, sentences, encoded.extras["word_starts"],
                             manifest.labels)


# === SavedModel ===

def test_fresh_process_serving_gives_the_keras_tags(exported, keras_student, test_set):
    manifest, paths = exported
    lines = [" ".join(s.tokens) for s in test_set[0][:40]] + EDGE_SENTENCES
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, os.path.abspath(paths["saved_model"])],
        input=json.dumps(lines), capture_output=True, text=True, timeout=300, check=False,
        cwd=os.path.dirname(paths["saved_model"]),
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["project_modules"] == []
    expected = keras_tags(manifest, keras_student, lines)
    for row, count, want in zip(served["tags"], served["num_words"], expected):
        assert row[:count] == want
        assert all(t == "" for t in row[count:])


def test_saved_model_cli_lists_both_signatures(exported):
    _, paths = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    command = ([cli] if os.path.exists(cli)
               else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"])
    result = subprocess.run(command + ["show", "--dir", paths["saved_model"], "--all"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    for expected in ("signature_def['serving_default']", "signature_def['student_ids']",
                     "inputs['sentences']", "inputs['student_ids']", "outputs['tags']",
                     "outputs['probabilities']", "outputs['num_words']", "outputs['logits']"):
        assert expected in result.stdout


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[1]["saved_model"])


def test_edge_inputs_get_one_tag_per_word(exported, loaded):
    manifest, _ = exported
    outputs = loaded.signatures["serving_default"](sentences=tf.constant(EDGE_SENTENCES))
    tags, probabilities = outputs["tags"].numpy(), outputs["probabilities"].numpy()
    served_words = outputs["words"].numpy()
    counts = outputs["num_words"].numpy().tolist()
    split = [[w.text for w in words.split_words(line)] for line in EDGE_SENTENCES]
    assert counts == [len(line_words) for line_words in split]
    assert tags.shape == probabilities.shape == (len(EDGE_SENTENCES), 200)
    for row, count, line_words in zip(range(len(EDGE_SENTENCES)), counts, split):
        assert [w.decode() for w in served_words[row, :count]] == line_words
        assert all(t.decode() in manifest.labels for t in tags[row, :count])
        assert (tags[row, count:] == b"").all() and (probabilities[row, count:] == 0).all()
        assert ((probabilities[row, :count] > 0) & (probabilities[row, :count] <= 1)).all()
    # 200 one-piece words: the first T - 2 are tagged by the model, the rest 'O' with p = 1.
    kept = manifest.options.seq_len - 2
    assert (tags[3, kept:] == b"O").all() and (probabilities[3, kept:] == 1.0).all()
    empty_batch = loaded.signatures["serving_default"](sentences=tf.constant(["", ""]))
    assert empty_batch["tags"].shape == (2, 0)
    assert empty_batch["num_words"].numpy().tolist() == [0, 0]


def test_in_graph_ids_equal_tagging_encode(exported, loaded, test_set):
    manifest, _ = exported
    seq_len = manifest.options.seq_len
    lines = [" ".join(s.tokens) for s in test_set[0]] + EDGE_SENTENCES + [
        "Alice's U.S.A. e-mail:x@y.z (rome) «paris» 1,000.5", "x \u0301 y \x00z \ufffd\x1c w"]
    tokenized = loaded.tokenize(tf.constant(lines))
    ids, encoded = export.encode(manifest, as_sentences(lines))
    np.testing.assert_array_equal(tokenized["student_ids"].numpy(), ids)
    first_piece, counts = tokenized["first_piece"].numpy(), tokenized["num_words"].numpy()
    for row, starts in enumerate(encoded.extras["word_starts"]):
        positions = first_piece[row, :counts[row]]
        assert positions[positions < seq_len - 1].tolist() == starts.tolist()


def test_student_ids_signature_returns_keras_logits(exported, loaded, keras_student, test_set):
    ids = test_set[1][:8]
    logits = loaded.signatures["student_ids"](student_ids=tf.constant(ids))["logits"].numpy()
    np.testing.assert_allclose(logits, keras_student.predict(ids, verbose=0), atol=1e-5)


def test_serving_config_points_at_the_versions(exported):
    _, paths = exported
    with open(paths["serving_config"], encoding="utf-8") as f:
        text = f.read()
    base_path = os.path.dirname(os.path.abspath(paths["saved_model"]))
    assert f'base_path: "{base_path}"' in text and 'name: "student"' in text
    assert os.path.basename(paths["saved_model"]) == "1"


def test_non_wordpiece_teacher_is_refused(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    (tmp_path / "tokenizer.json").write_text(json.dumps(
        {"model": {"type": "Unigram"}, "normalizer": None, "pre_tokenizer": None}),
        encoding="utf-8")
    with pytest.raises(export.UnsupportedTokenizerError, match="WordPiece"):
        wordpiece.read_wordpiece_settings(str(tmp_path))
    with pytest.raises(export.UnsupportedTokenizerError, match="vocab.txt"):
        wordpiece.read_wordpiece_settings(str(tmp_path / "missing"))


def test_non_wordpiece_teacher_exports_tflite_with_its_tokenizer(tmp_path):
    teacher = synthetic.write_tiny_roberta(tmp_path / "tiny_roberta")
    # The export is under test, not distillation: the student learns the labels alone.
    config = tiny_config(tmp_path, pt_teacher_checkpoint=str(teacher), ft_epochs=2,
                         baseline=False, distil_mode="none", strategy="default")
    pipeline.run(config)
    paths = export.export_all(config.model_dir)
    assert paths["saved_model"] is None  # its tokenizer cannot run in the graph
    assert not os.path.exists(os.path.join(config.model_dir, "export", "saved_model"))
    with pytest.raises(export.UnsupportedTokenizerError, match="predict"):
        predict.load_tagger(config.model_dir)
    # An app's path: the exported teacher tokenizer, then vocab.txt, then the fp32 file.
    manifest = Manifest.read(config.model_dir)
    sidecar, folder = paths["tflite"], paths["tflite_dir"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        os.path.join(folder, sidecar["teacher_tokenizer"]))
    vocab = {piece: i for i, piece in enumerate(predict.read_lines(
        os.path.join(folder, sidecar["vocab"])))}
    assert tokenizer.convert_ids_to_tokens(0) == "<s>" and sidecar["cls_id"] == vocab["<s>"]
    sentences = data_lib.read_labeled_file(
        os.path.join(manifest.options.task, "test.tsv")).sentences[:6]
    pieces = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True,
                       truncation=True, max_length=manifest.options.seq_len, padding="max_length")
    ids = np.asarray([[vocab.get(p, sidecar["unk_id"])
                       for p in tokenizer.convert_ids_to_tokens(row)]
                      for row in pieces["input_ids"]], np.int32)
    np.testing.assert_array_equal(ids, export.encode(manifest, sentences)[0])
    interpreter = tflite.tflite_interpreter(os.path.join(folder, export.TFLITE_FILES["fp32"]))
    np.testing.assert_allclose(tflite.tflite_logits(interpreter, ids),
                               export.load_student(manifest).predict(ids, verbose=0), atol=1e-4)
    # The reference code takes raw text through the teacher's own tokenizer too.
    tagger = reference.Tagger(folder, reference.tflite_runner(
        os.path.join(folder, export.TFLITE_FILES["fp32"])))
    text = " ".join(sentences[0].tokens)
    assert np.array_equal(tagger.encode(text)[1], ids[0])
    assert all(text[e["start"]:e["end"]] == e["text"] for e in tagger.spans(text))


# === TFLite ===

RUNTIMES = ("litert", "tf")


def tflite_path(paths, key):
    return os.path.join(paths["tflite_dir"], export.TFLITE_FILES[key])


def written_tflite_paths(paths):
    """The three TFLite files and the full-integer alternative when export wrote it."""
    names = list(export.TFLITE_FILES.values()) + [
        name for name in tflite.ALTERNATIVE_FILES.values() if name in paths["tflite"]["files"]]
    return [os.path.join(paths["tflite_dir"], name) for name in names]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tflite_fp32_logits_equal_keras(exported, keras_student, test_set, runtime):
    _, paths = exported
    ids = test_set[1][:6]
    interpreter = tflite.tflite_interpreter(tflite_path(paths, "fp32"), runtime=runtime)
    np.testing.assert_allclose(tflite.tflite_logits(interpreter, ids),
                               keras_student.predict(ids, verbose=0), atol=1e-4)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("key", ["fp16", "int8"])
def test_tflite_quantised_tags_agree_with_keras(exported, keras_student, test_set, runtime,
                                                key):
    _, paths = exported
    _, ids, encoded = test_set
    interpreter = tflite.tflite_interpreter(tflite_path(paths, key), runtime=runtime)
    agreement = tflite.tag_agreement(tflite.tflite_logits(interpreter, ids),
                                     keras_student.predict(ids, verbose=0), encoded.label_weights)
    assert agreement >= 0.98


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tflite_ops_are_builtin_with_fused_lstm(exported, runtime):
    manifest, paths = exported
    for path in written_tflite_paths(paths):
        interpreter = tflite.tflite_interpreter(path, runtime=runtime)
        ops = tflite.tflite_ops(interpreter)
        assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
        assert {"UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM"} & set(ops), ops
        assert "WHILE" not in ops
        detail = interpreter.get_input_details()[0]
        assert detail["shape"].tolist() == [1, manifest.options.seq_len]
        assert detail["dtype"] == np.int32


def test_tflite_sidecar_and_vocabulary_files(exported):
    manifest, paths = exported
    folder = paths["tflite_dir"]
    with open(os.path.join(folder, "student_tflite.json"), encoding="utf-8") as f:
        sidecar = json.load(f)
    assert sidecar == paths["tflite"]
    vocab = predict.read_lines(os.path.join(folder, "vocab.txt"))
    assert vocab == manifest.student_vocab
    assert predict.read_lines(os.path.join(folder, "labels.txt")) == manifest.labels
    assert sidecar["seq_len"] == manifest.options.seq_len
    assert (sidecar["pad_id"], sidecar["unk_id"]) == (0, 1)
    assert vocab[sidecar["cls_id"]] == "[CLS]" and vocab[sidecar["sep_id"]] == "[SEP]"
    names = set(export.TFLITE_FILES.values())
    assert names <= set(sidecar["files"]) <= names | set(tflite.ALTERNATIVE_FILES.values())
    for name, record in sidecar["files"].items():
        assert record["bytes"] == os.path.getsize(os.path.join(folder, name))
    int8 = sidecar["files"]["student_int8.tflite"]
    if int8["dynamic_range"]["tag_agreement"] >= tflite.MIN_INT8_AGREEMENT:
        assert int8["quantisation"] == "dynamic_range", int8
    alternative = sidecar["files"].get("student_int8_full_integer.tflite")
    if alternative:  # full-integer beside it, only when it agrees
        assert alternative["quantisation"] == "full_integer"
        assert alternative["tag_agreement"] >= tflite.MIN_INT8_AGREEMENT
        assert int8["full_integer"]["file"] == "student_int8_full_integer.tflite"


def int8_candidates(dynamic_range, full_integer):
    """_choose_int8's candidates: flatbuffers named after their quantisation, with these
    agreements (full_integer None: it did not convert)."""
    candidates = {"dynamic_range": (b"dynamic_range", {"tag_agreement": dynamic_range})}
    if full_integer is not None:
        candidates["full_integer"] = (b"full_integer", {"tag_agreement": full_integer})
    return candidates


@pytest.mark.parametrize("dynamic_range,full_integer,int8,alternative", [
    (1.0, 0.995, "dynamic_range", True),  # the demo: the faster file, full-integer beside it
    (1.0, 0.91, "dynamic_range", False),  # full-integer disagrees: not written
    (1.0, None, "dynamic_range", False),  # full-integer did not convert
    (0.95, 0.99, "full_integer", False),  # only full-integer agrees
    (0.95, 0.90, "dynamic_range", False),  # neither agrees: the closest
])
def test_int8_file_is_the_fastest_that_agrees(dynamic_range, full_integer, int8, alternative):
    """student_int8.tflite: dynamic range when it agrees with Keras (the fastest int8 file on
    CPU, RESULTS #54), else full-integer if that agrees; full-integer goes beside it only when
    it agrees and is not the int8 file."""
    full_integer_record = ({"tag_agreement": full_integer} if full_integer is not None
                           else "conversion failed: no int8 kernel")
    models = tflite._choose_int8(  # pylint: disable=protected-access
        int8_candidates(dynamic_range, full_integer), full_integer_record, "tag_agreement")
    flat, record = models["int8"]
    assert flat.decode() == record["quantisation"] == int8
    assert record["dynamic_range"] == {"tag_agreement": dynamic_range}
    assert ("int8_full_integer" in models) == alternative
    if alternative:
        assert models["int8_full_integer"][0] == b"full_integer"
        assert models["int8_full_integer"][1]["quantisation"] == "full_integer"
        assert record["full_integer"]["file"] == "student_int8_full_integer.tflite"
    elif full_integer is None:
        assert record["full_integer"] == full_integer_record
    elif int8 != "full_integer":
        assert record["full_integer"]["file"].startswith("not written")


# === Predict mode ===

def test_predict_writes_conll_and_jsonl_one_entry_per_line(exported, loaded, tmp_path):
    manifest, _ = exported
    lines = ["alice met bob smith in paris", "", "the acme people", "Привет 東京"]
    source = tmp_path / "input.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    jsonl, conll = tmp_path / "tagged.jsonl", tmp_path / "tagged.conll"
    # In process: the script's predict mode is run by the README test and the spans test.
    assert predict.predict_file(manifest.model_dir, str(source), str(jsonl),
                                "jsonl") == len(lines)
    records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["tokens"] for r in records] == [["alice", "met", "bob", "smith", "in", "paris"],
                                              [], ["the", "acme", "people"],
                                              ["Привет", "東", "京"]]  # CJK: a word each
    served = loaded.signatures["serving_default"](
        sentences=tf.constant([" ".join(r["tokens"]) for r in records]))
    for row, record in enumerate(records):
        count = len(record["tokens"])
        assert record["tags"] == [t.decode() for t in served["tags"].numpy()[row, :count]]
        assert len(record["probabilities"]) == count

    assert predict.predict_file(manifest.model_dir, str(source), str(conll),
                                "conll") == len(lines)
    sentences, current = [], []
    for line in conll.read_text(encoding="utf-8").split("\n")[:-1]:
        if line:
            current.append(line.split("\t"))
        else:  # every sentence, an empty one too, ends with one blank line
            sentences.append(current)
            current = []
    assert current == [] and len(sentences) == len(lines)
    for pairs, record in zip(sentences, records):
        assert pairs == [list(p) for p in zip(record["tokens"], record["tags"])]


def test_words_split_like_bert_with_offsets_into_the_input():
    text = '"Hello," said Angela Merkel in Washington, D.C. 東京 café 🥰x\u0301!'
    split = words.split_words(text)
    assert [w.text for w in split] == [
        '"', "Hello", ",", '"', "said", "Angela", "Merkel", "in", "Washington", ",", "D", ".",
        "C", ".", "東", "京", "café", "🥰x\u0301", "!"]
    assert all(text[w.start:w.end] == w.text for w in split)
    tags = ["O"] * len(split)
    tags[5:7] = ["B-PER", "I-PER"]
    tags[8] = "B-LOC"
    tags[10:14] = ["B-LOC", "I-LOC", "I-LOC", "I-LOC"]
    scores = [1.0] * len(split)
    scores[6] = 0.5
    spans = words.entity_spans(text, split, tags, scores)
    assert [(e["text"], e["type"], e["score"]) for e in spans] == [
        ("Angela Merkel", "PER", 0.75), ("Washington", "LOC", 1.0), ("D.C.", "LOC", 1.0)]
    assert all(text[e["start"]:e["end"]] == e["text"] for e in spans)


def run_predict(manifest, source, output, *extra):
    return subprocess.run(
        [sys.executable, "run_xtreme_distil.py", "--mode=predict",
         f"--model_dir={manifest.model_dir}", f"--input={source}", f"--output={output}",
         *extra], cwd=ROOT, capture_output=True, timeout=300, check=False)


def test_predict_spans_index_the_input_and_bad_lines_lose_nothing(exported, tmp_path):
    manifest, _ = exported
    good = ["alice met bob smith in paris.", "", "「alice」 met, bob: smith!",
            " ".join(["paris"] * 40)]  # longer than seq_len: the rest is O
    source = tmp_path / "input.txt"
    source.write_bytes("\n".join(good[:2]).encode() + b"\n\xff\xfe broken bytes\n"
                       + "\n".join(good[2:]).encode() + b"\n")
    spans = tmp_path / "spans.jsonl"
    result = run_predict(manifest, source, spans, "--output_format=spans")
    assert (result.returncode != 0
            and f"{source}:3: not UTF-8: cannot decode byte 0xff" in result.stderr.decode())
    assert not spans.exists()  # stopped before writing anything
    result = run_predict(manifest, source, spans, "--output_format=spans", "--skip_bad_lines")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert "1 not UTF-8, written as empty results" in result.stderr.decode()
    records = [json.loads(line) for line in spans.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == good[:2] + [""] + good[2:]
    assert records[2]["entities"] == []
    found = [e for r in records for e in r["entities"]]
    assert found, "the student finds entities in the task's own words"
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"]:entity["end"]] == entity["text"]
            assert entity["type"] in {"PER", "LOC", "ORG"} and 0 < entity["score"] <= 1
    # Standard input (--input=-) is run by the README test.


def panx_sentences(count):
    """`count` raw sentences taken in turn from every PAN-X test file (every script)."""
    files = sorted((SHARED_DATA / "panx").glob("test-*.tsv"))
    per_file = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        per_file.append([" ".join(line.split("\t")[0] for line in block.splitlines())
                         for block in text.split("\n\n") if block.strip()])
    mixed = [s for row in itertools.zip_longest(*per_file) for s in row if s is not None]
    return mixed[:count]


@pytest.mark.skipif(not (SHARED_DATA / "panx").is_dir(), reason="../shared/data/panx absent")
def test_predict_spans_on_ten_thousand_lines_of_every_script(exported, tmp_path):
    manifest, _ = exported
    lines = panx_sentences(10000)
    assert len(lines) == 10000
    source, output = tmp_path / "mixed.txt", tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert predict.predict_file(manifest.model_dir, str(source), str(output), "spans") == 10000
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == lines
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"]:entity["end"]] == entity["text"]


# === The real MiniLM vocabulary: the installed default teacher's tokenizer files ===

MINILM_SEQ_LEN = 32


@pytest.fixture(scope="module")
def minilm_tokenizers():
    """(GraphTokenizer, HF tokenizer, StudentVocab, teacher vocabulary size) of the installed
    default teacher (MiniLM, uncased) with the full student vocabulary, as a run would have it:
    the graph's id table comes from the piece strings config.json stores."""
    checkpoint = teacher_lib.default_checkpoint()
    tokenizer = teacher_lib.load_tokenizer(checkpoint)
    vocab_size = transformers.AutoConfig.from_pretrained(checkpoint).vocab_size
    vocab = vocab_lib.StudentVocab.full(vocab_size, tokenizer.pad_token_id,
                                        tokenizer.unk_token_id)
    settings = wordpiece.read_wordpiece_settings(checkpoint, tokenizer.do_lower_case)
    table = wordpiece.student_id_table(
        settings, tokenizer.convert_ids_to_tokens(vocab.teacher_ids.tolist()), vocab_size)
    return (wordpiece.GraphTokenizer(settings, table, MINILM_SEQ_LEN), tokenizer, vocab,
            vocab_size)


def test_minilm_ids_equal_tagging_encode(minilm_tokenizers):
    graph_tokenizer, tokenizer, vocab, vocab_size = minilm_tokenizers
    lines = []
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        lines += [s.split("\t")[0] for s in predict.read_lines(
            os.path.join(ROOT, "data", "demo", name)) if s.strip()]
    lines += EDGE_SENTENCES
    student_ids, first_piece = tf.function(graph_tokenizer.encode_words)(tf.ragged.constant(
        [[w.text for w in words.split_words(line)] for line in lines], tf.string,
        row_splits_dtype=tf.int64))
    encoded = tagging.encode(as_sentences(lines), tokenizer, MINILM_SEQ_LEN)
    np.testing.assert_array_equal(student_ids.numpy(),
                                  vocab.to_student_ids(encoded.input_ids, vocab_size))
    for positions, starts in zip(first_piece.to_list(), encoded.extras["word_starts"]):
        assert [p for p in positions if p < MINILM_SEQ_LEN - 1] == starts.tolist()


def test_minilm_pieces_of_every_bmp_character(minilm_tokenizers):
    """Each BMP character inside a word ('a<c>b') gets the HF pieces, but for a few hundred
    characters whose Unicode properties changed after HF tokenizers' tables were made."""
    graph_tokenizer, tokenizer, _, _ = minilm_tokenizers
    words = [f"a{chr(c)}b" for c in range(0x10000) if not 0xD800 <= c < 0xE000]
    backend = tokenizer.backend_tokenizer
    backend.no_padding()
    backend.no_truncation()
    expected = [e.ids for e in backend.encode_batch([[w] for w in words], is_pretokenized=True,
                                                    add_special_tokens=False)]
    pieces = tf.function(graph_tokenizer.word_pieces)(
        tf.constant([w.encode("utf-8") for w in words])).to_list()
    differ = [w[1] for w, want, got in zip(words, expected, pieces) if want != got]
    assert len(differ) < 0.005 * len(words), [hex(ord(c)) for c in differ[:50]]


def test_a_resumed_run_keeps_the_export_of_its_student(exported, tmp_path):
    """run_xtreme_distil.py's train mode on a finished, exported run (unless_current) keeps the
    files, also after the run folder moved; another name or a missing file exports again."""
    manifest, result = exported
    moved = tmp_path / "run"
    shutil.copytree(manifest.model_dir, moved)
    saved_model = os.path.join(moved, os.path.relpath(result["saved_model"], manifest.model_dir))
    written = os.path.getmtime(os.path.join(saved_model, "saved_model.pb"))
    kept = export.export_all(str(moved), unless_current=True)
    assert kept["saved_model"] == saved_model and kept["tflite"] == result["tflite"]
    assert kept["onnx"] == os.path.join(moved, "export", "onnx", "student.onnx")
    assert os.path.getmtime(os.path.join(saved_model, "saved_model.pb")) == written
    record = os.path.join(moved, "export", export.EXPORT_RECORD)
    source = {"student": export._fingerprint(Manifest.read(str(moved))), "name": "student",
              "version": 1}
    assert export._current_export(record, source) == kept
    assert export._current_export(record, {**source, "name": "other"}) is None
    os.remove(kept["onnx"])
    assert export._current_export(record, source) is None


def test_export_without_the_onnx_packages_skips_onnx_alone(exported, tmp_path, monkeypatch,
                                                           caplog):
    manifest, _ = exported
    moved = tmp_path / "run"
    shutil.copytree(manifest.model_dir, moved, ignore=shutil.ignore_patterns("export"))
    monkeypatch.setattr(export.onnx, "missing_packages", lambda: ["tf2onnx"])
    with caplog.at_level("WARNING"):
        result = export.export_all(str(moved))
    assert result["onnx"] is None and not (moved / "export" / "onnx").exists()
    assert "ONNX skipped, tf2onnx not installed" in caplog.text
    assert os.path.exists(os.path.join(result["saved_model"], "saved_model.pb"))
    assert all(os.path.exists(os.path.join(result["tflite_dir"], name))
               for name in result["tflite"]["files"])
    with open(moved / "export" / export.EXPORT_RECORD, encoding="utf-8") as f:
        assert json.load(f)["result"]["onnx"] is None
    # A resumed run keeps that export: nothing missing, ONNX was never there.
    assert export.export_all(str(moved), unless_current=True)["onnx"] is None
