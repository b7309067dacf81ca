"""Raw text -> words with offsets -> entity spans: the graph (export/spans.py) against Python
(words.py, seqeval), on every code point, random tag sequences and text in many scripts."""

import os
import unicodedata

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from seqeval.metrics.sequence_labeling import get_entities

from xtremedistil import predict, reference, words
from xtremedistil.export import spans, tflite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPTS = [
    '"Hello," said Angela Merkel in Washington, D.C. on Monday.',
    "Die Bundeskanzlerin Angela Merkel besuchte am Dienstag Straße in München.",
    "习近平在北京会见了美国总统。",
    "東京都の小池百合子知事は、大阪で会見した。",
    "زار الرئيس محمد بن سلمان مدينة الرياض يوم الأحد.",
    "प्रधानमंत्री नरेंद्र मोदी ने नई दिल्ली में भाषण दिया।",
    "Emoji 🥰 and 👩‍👩‍👧 families, cafe\u0301 x\u0301\u0302 and ZWJ\u200dword\u00a0nbsp\u3000wide",
    "",
    "   ",
]


def graph_words(texts):
    sentences = tf_text.coerce_to_structurally_valid_utf8(tf.constant(texts))
    split, start, end = tf.function(spans.split_words)(sentences)
    return [[(w.decode("utf-8"), s, e) for w, s, e in zip(*rows)]
            for rows in zip(split.to_list(), start.to_list(), end.to_list())]


def python_words(texts):
    return [[(w.text, w.start, w.end) for w in words.split_words(t)] for t in texts]


def test_words_and_offsets_equal_python_on_many_scripts():
    got = graph_words(SCRIPTS)
    assert got == python_words(SCRIPTS)
    for text, row in zip(SCRIPTS, got):
        assert all(text[start:end] == word for word, start, end in row)


def test_every_code_point_splits_as_python_splits():
    """'a<c>b' for every BMP code point c (surrogates excepted) and every 16th above, 512 to a
    line: a word, a split or a word of its own, with offsets, as words.split_words decides."""
    points = [chr(c) for c in [*range(0xD800), *range(0xE000, 0x10000),
                               *range(0x10000, 0x110000, 16)]]
    texts = ["".join(f"a{c}b\n" for c in points[i:i + 512]) for i in range(0, len(points), 512)]
    differ = [text for text, got, want in zip(texts, graph_words(texts), python_words(texts))
              if got != want]
    # Unicode versions differ (Python 3.11: 14.0; RE2 in TensorFlow may be newer): allow
    # only code points that Python's Unicode has no category for.
    suspects = [f"a{c}b" for text in differ for c in text[1::4]
                if unicodedata.category(c) != "Cn"]
    assigned = [text[1] for text, got, want in zip(
        suspects, graph_words(suspects), python_words(suspects)) if got != want]
    assert not assigned, [hex(ord(c)) for c in assigned[:20]]


def graph_entities(texts, tags, labels, probabilities=None):
    sentences = tf_text.coerce_to_structurally_valid_utf8(tf.constant(texts))
    split, start, end = spans.split_words(sentences)
    index = {label: i for i, label in enumerate(labels)}
    label_ids = tf.ragged.constant([[index[t] for t in row] for row in tags], tf.int32,
                                   row_splits_dtype=tf.int64)
    flat = tf.size(label_ids.flat_values)
    probability = (tf.ones([flat]) if probabilities is None
                   else tf.constant(np.concatenate(probabilities), tf.float32))
    out = spans.EntityMerger(labels)(sentences, start, end, label_ids,
                                     tf.zeros([flat], tf.bool), probability)
    return [[{"text": out["entity_text"][r, k].numpy().decode("utf-8"),
              "type": out["entity_type"][r, k].numpy().decode("utf-8"),
              "start": int(out["entity_start"][r, k]), "end": int(out["entity_end"][r, k]),
              "score": round(float(out["entity_score"][r, k]), 6)}
             for k in range(int(out["num_entities"][r]))] for r in range(len(texts))]


def test_random_tags_merge_as_seqeval_merges():
    rng = np.random.default_rng(0)
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    texts = [" ".join(f"w{i}" for i in range(rng.integers(0, 12))) for _ in range(300)]
    tags = [[labels[k] for k in rng.integers(0, len(labels), len(t.split()))] for t in texts]
    got = graph_entities(texts, tags, labels)
    for text, row, entities in zip(texts, tags, got):
        split = words.split_words(text)
        want = [(kind, split[first].start, split[last].end)
                for kind, first, last in get_entities(row)]
        assert [(e["type"], e["start"], e["end"]) for e in entities] == want, row


def test_entity_spans_index_the_input_in_every_script():
    """Every word tagged, alternating B- and I- of two types in runs: spans in the graph equal
    words.entity_spans, and text[start:end] is the entity."""
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    rng = np.random.default_rng(1)
    tags, probabilities = [], []
    for text in SCRIPTS:
        count = len(words.split_words(text))
        tags.append([labels[k] for k in rng.integers(0, len(labels), count)])
        probabilities.append(rng.uniform(0.3, 1.0, count).astype(np.float32))
    got = graph_entities(SCRIPTS, tags, labels, probabilities)
    assert sum(map(len, got)) > 20
    for text, row, scores, entities in zip(SCRIPTS, tags, probabilities, got):
        want = words.entity_spans(text, words.split_words(text), row, scores.tolist())
        assert [{**e, "score": None} for e in entities] == [{**e, "score": None} for e in want]
        np.testing.assert_allclose([e["score"] for e in entities], [e["score"] for e in want],
                                   atol=1e-5)
        assert all(text[e["start"]:e["end"]] == e["text"] for e in entities)


def test_reference_spans_equal_the_saved_model(exported):
    """xtremedistil/reference.py with the fp32 TFLite file (and the ONNX file) finds the
    SavedModel's entities, offsets and scores on the test set and on raw text."""
    manifest, paths = exported
    with open(os.path.join(manifest.options.task, "test.tsv"), encoding="utf-8") as f:
        lines = [line.split("\t")[0] for line in f.read().splitlines() if line.strip()]
    # Raw text: the task's and the demo's test sentences, many scripts, and a line past
    # seq_len pieces (its last words cut off: 'O').
    with open(os.path.join(ROOT, "data", "demo", "test.tsv"), encoding="utf-8") as f:
        demo = [line.split("\t")[0] for line in f.read().splitlines() if line.strip()]
    lines = [line.replace(" ,", ",").replace(" .", ".") for line in lines + demo] + SCRIPTS + [
        ", ".join(lines[:12])]
    tagger = tf.saved_model.load(paths["saved_model"]).signatures["serving_default"]
    served = predict.tag_lines(tagger, lines)
    assert sum(len(r.entities) for r in served) > len(lines) // 4
    cut = served[-1]
    assert cut.tags[-1] == "O" and len(cut.words) > manifest.options.seq_len
    assert all(e["end"] <= cut.words[manifest.options.seq_len - 3].end for e in cut.entities)
    runners = {"tflite": reference.tflite_runner(
        os.path.join(paths["tflite_dir"], tflite.TFLITE_FILES["fp32"]))}
    if paths.get("onnx"):
        runners["onnx"] = reference.onnx_runner(paths["onnx"])
    for name, runner in runners.items():
        app = reference.Tagger(paths["tflite_dir"], runner)
        for line, result in zip(lines, served):
            words_, tags, _ = app.tag(line)
            assert ([(w.text, w.start, w.end) for w in words_], tags) == (
                [(w.text, w.start, w.end) for w in result.words], result.tags), (name, line)
            got = app.spans(line)
            assert [{**e, "score": None} for e in got] == [
                {**e, "score": None} for e in result.entities], (name, line)
            np.testing.assert_allclose([e["score"] for e in got],
                                       [e["score"] for e in result.entities], atol=1e-4)
