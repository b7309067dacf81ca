"""The in-graph SentencePiece (Unigram, XLM-R) tokenizer against the HF fast tokenizer path
(tasks.tagging.encode / tasks.classification.encode, then StudentVocab.to_student_ids)."""

import itertools
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import SHARED_DATA, tiny_config
from xtremedistil import data as data_lib
from xtremedistil import export, pipeline, synthetic, teacher_zoo
from xtremedistil import teacher as teacher_lib
from xtremedistil.data import Sentence, TextExample
from xtremedistil.export import graph_tokenizers, sentencepiece, wordpiece
from xtremedistil.manifest import Manifest
from xtremedistil.students import vocab as vocab_lib
from xtremedistil.tasks import classification, tagging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQ_LEN = 32
PANX_SENTENCES = 20  # per language

# Words that test the normaliser, the added tokens and the unknown piece, one sentence each.
EDGE_WORDS = [
    [],
    ["\x01"],  # deleted by the charsmap: no piece, so '<unk>'
    ["a", "\x01", "b", "\u200b", "\x01\x02"],
    ["\x00", "a\x00b", "\x00\u0301", "\x07bell", "\x7f", "\x85", "\x9f"],
    ["\u00a0", "a\u00a0b", "a\u3000b", "\u2028", "a\u2009\u2009b", "\u2581", "\u2581\u2581x",
     "\ufeff"],
    ["👍🏽", "👨\u200d👩\u200d👧", "🇺🇸", "☃\ufe0f", "©\u200d"],
    ["e\u0301", "Ａ\u0301", "a\u0302\u0300", "ｶﾞ", "\u1100\u1161\u11a8", "क्षि", "ক\u09c7\u09be",
     "\u0301", "\u0600" "1", "\u1062\u0301"],
    ["＜s＞", "＜unk＞", "ﬁ", "①", "Ω", "ǅ", "\u00ad", "\r\n", "a\r\nb"],
    ["<s>", "</s>", "<pad>", "<unk>", "<mask>", "x<mask>y", "a<s>b"],
    ["paris"] * 40,  # cut at seq_len
    ["Straße", "İstanbul", "ΟΔΟΣ", "東京", "Привет", "مرحبا", "שלום"],
]
EDGE_TEXTS = ["", " ", "  hello   world  ", "\t\n", "a <mask> b", "x\u00a0<mask>", "<s></s>",
              "hello\x00<mask>\x00world", "a ▁b", "▁▁b", "\r\n", " ".join(["rome"] * 40)] + [
    " ".join(words) for words in EDGE_WORDS]


def sentences_of(word_lists, language="xx"):
    return [Sentence(tuple(words), None, language, "test") for words in word_lists]


def reference_words(tokenizer, vocab, word_lists, seq_len=SEQ_LEN):
    """(student ids [N, T], word_starts) of tagging.encode, as training gives them."""
    encoded = tagging.encode(sentences_of(word_lists), tokenizer, seq_len)
    return (vocab.to_student_ids(encoded.student_pieces, len(tokenizer)),
            encoded.extras["word_starts"])


def reference_texts(tokenizer, vocab, texts, seq_len=SEQ_LEN):
    examples = [TextExample(text, None, None, "xx", "test") for text in texts]
    encoded = classification.encode(examples, tokenizer, seq_len, pairwise=False)
    return vocab.to_student_ids(encoded.student_pieces, len(tokenizer))


def assert_words_match(graph, tokenizer, vocab, word_lists, seq_len=SEQ_LEN):
    """encode_words gives tagging.encode's student ids, and its first pieces where HF has them
    (words HF cuts off or leaves without pieces at the end are at >= T - 1)."""
    ids, first_piece = graph.encode_words(tf.ragged.constant(word_lists, dtype=tf.string,
                                                             row_splits_dtype=tf.int64))
    want_ids, want_starts = reference_words(tokenizer, vocab, word_lists, seq_len)
    for row, (words, starts) in enumerate(zip(word_lists, want_starts)):
        assert ids[row].numpy().tolist() == want_ids[row].tolist(), words
        positions = first_piece[row].numpy()
        assert len(positions) == len(words)
        assert positions[:len(starts)].tolist() == starts.tolist(), words
        assert (positions[len(starts):] >= seq_len - 1).all(), words


def assert_texts_match(graph, tokenizer, vocab, texts, seq_len=SEQ_LEN):
    ids = graph.text_ids(tf.constant(texts)).numpy()
    want = reference_texts(tokenizer, vocab, texts, seq_len)
    for row, text in enumerate(texts):
        assert ids[row].tolist() == want[row].tolist(), repr(text)


def make_graph(teacher_dir, tokenizer, seq_len=SEQ_LEN):
    """(SentencePieceGraphTokenizer, StudentVocab): a student knowing two teacher pieces in
    three, so unseen pieces (student id 1) are tested too."""
    settings = sentencepiece.read_sentencepiece_settings(teacher_dir)
    size = len(tokenizer)
    vocab = vocab_lib.StudentVocab.from_counts((np.arange(size) % 3 != 0).astype(np.int64),
                                               tokenizer.pad_token_id, tokenizer.unk_token_id)
    pieces = tokenizer.convert_ids_to_tokens(vocab.teacher_ids.tolist())
    table = sentencepiece.student_id_table(settings, pieces, size)
    return sentencepiece.SentencePieceGraphTokenizer(settings, table, seq_len), vocab


# === The tiny XLM-R teacher ===

@pytest.fixture(scope="session")
def tiny_xlmr(tmp_path_factory):
    """(folder, HF fast tokenizer, graph tokenizer, StudentVocab) of the tiny XLM-R."""
    folder = synthetic.write_tiny_xlmr(tmp_path_factory.mktemp("tiny_xlmr"))
    tokenizer = teacher_lib.load_tokenizer(str(folder))
    return (folder, tokenizer) + make_graph(str(folder), tokenizer)


def test_charsmap_rules_round_trip():
    rules = {"\u00a0": " ", "\x01": "", "e\u0301": "\u00e9", "\ufb01": "fi", "\uff21": "A"}
    assert sentencepiece.read_charsmap(synthetic.precompiled_charsmap(rules), 5) == rules


def test_tiny_settings(tiny_xlmr):
    folder, tokenizer, _, _ = tiny_xlmr
    settings = sentencepiece.read_sentencepiece_settings(str(folder))
    assert settings.rules == synthetic.TINY_CHARSMAP_RULES
    assert settings.collapse_spaces and settings.split and settings.lstrip == ("<mask>",)
    assert (settings.cls_token, settings.sep_token, settings.pad_token, settings.unk_token) == (
        "<s>", "</s>", "<pad>", "<unk>")
    assert settings.all_ids() == tokenizer.get_vocab()


def test_tiny_teacher_words_and_texts(tiny_xlmr):
    _, tokenizer, graph, vocab = tiny_xlmr
    rules = [list(synthetic.TINY_CHARSMAP_RULES), ["Ａcme", "ﬁne", "cafe\u0301", "x\x01y"]]
    word_lists = [list(s.tokens) for s in data_lib.read_labeled_file(
        os.path.join(ROOT, "data", "demo", "test.tsv")).sentences[:50]]
    assert_words_match(graph, tokenizer, vocab, word_lists + rules + EDGE_WORDS)
    assert_texts_match(graph, tokenizer, vocab, [" ".join(w) for w in word_lists + rules]
                       + EDGE_TEXTS)


def test_other_tokenizers_are_refused(tmp_path):
    bert = synthetic.write_tiny_bert(tmp_path / "bert")
    with pytest.raises(export.UnsupportedTokenizerError, match="WordPiece"):
        sentencepiece.read_sentencepiece_settings(str(bert))
    roberta = synthetic.write_tiny_roberta(tmp_path / "roberta")
    with pytest.raises(export.UnsupportedTokenizerError, match="BPE"):
        sentencepiece.read_sentencepiece_settings(str(roberta))
    with pytest.raises(export.UnsupportedTokenizerError, match="neither BERT WordPiece"):
        graph_tokenizers.read_settings(str(roberta))
    assert isinstance(graph_tokenizers.read_settings(str(bert)),
                      wordpiece.WordPieceSettings)


def test_unsupported_normaliser_says_what_it_found(tiny_xlmr, tmp_path):
    folder = tiny_xlmr[0]
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    spec["normalizer"] = {"type": "NFKC"}
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(export.UnsupportedTokenizerError, match="normaliser is .*NFKC"):
        sentencepiece.read_sentencepiece_settings(str(tmp_path))


# === The multilingual teacher (XLM-R's 250,002 pieces and charsmap) ===

@pytest.fixture(scope="session")
def e5():
    """(HF fast tokenizer, graph tokenizer, StudentVocab) of multilingual-e5-small."""
    try:
        folder = teacher_zoo.resolve_checkpoint(teacher_zoo.E5_NAME)
    except (ValueError, ImportError, OSError) as error:
        pytest.skip(f"multilingual-e5-small cannot be built here: {error}")
    tokenizer = teacher_lib.load_tokenizer(folder)
    return (tokenizer,) + make_graph(folder, tokenizer)


def test_e5_proto_ids_are_the_hf_ids(e5):
    tokenizer, graph, _ = e5
    settings = graph._settings  # pylint: disable=protected-access
    assert [p for p, _ in settings.pieces[:4]] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert settings.all_ids() == tokenizer.get_vocab()
    assert len(settings.rules) > 7000  # single characters and short sequences of the charsmap


def test_e5_demo_sentences(e5):
    tokenizer, graph, vocab = e5
    ner = data_lib.read_labeled_file(os.path.join(ROOT, "data", "demo", "test.tsv")).sentences
    assert_words_match(graph, tokenizer, vocab, [list(s.tokens) for s in ner])
    texts = data_lib.read_text_file(os.path.join(ROOT, "data", "demo_classification",
                                                 "test.tsv")).sentences
    assert_texts_match(graph, tokenizer, vocab, [e.text for e in texts])


def test_e5_edge_cases(e5):
    tokenizer, graph, vocab = e5
    assert_words_match(graph, tokenizer, vocab, EDGE_WORDS)
    assert_texts_match(graph, tokenizer, vocab, EDGE_TEXTS)


def panx_sentences(path, count):
    """The first `count` sentences (word lists) of a PAN-X column file."""
    sentences, words = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                words.append(re.split("[ \t]+", line.strip())[0])
            elif words:
                sentences.append(words)
                words = []
                if len(sentences) == count:
                    break
    return sentences + ([words] if words and len(sentences) < count else [])


def test_e5_panx_every_language(e5):
    panx = SHARED_DATA / "panx"
    paths = sorted(panx.glob("test-*.tsv")) if panx.is_dir() else []
    if not paths:
        pytest.skip(f"{panx} is absent")
    tokenizer, graph, vocab = e5
    word_lists = list(itertools.chain.from_iterable(
        panx_sentences(path, PANX_SENTENCES) for path in paths))
    assert len(paths) == 51
    assert_words_match(graph, tokenizer, vocab, word_lists)
    assert_texts_match(graph, tokenizer, vocab, [" ".join(words) for words in word_lists])


# === A trained run's SavedModel ===

def test_saved_model_of_a_sentencepiece_teacher(tiny_xlmr, tmp_path):
    """A tiny run with the tiny XLM-R exports a SavedModel whose 'tokenize' gives the student
    ids training gives (export.encode) on the test sentences. The student learns the labels
    alone (--distil_mode=none): what is tested is the tokenizer, not distillation."""
    config = tiny_config(tmp_path, pt_teacher_checkpoint=str(tiny_xlmr[0]), ft_epochs=1,
                         baseline=False, distil_mode="none", strategy="default")
    pipeline.run(config)
    manifest = Manifest.read(config.model_dir)
    path = export.saved_model.export_saved_model(
        manifest, export.saved_model_dir(config.model_dir), export.load_student(manifest))
    loaded = tf.saved_model.load(path)
    sentences = data_lib.read_labeled_file(os.path.join(config.task, "test.tsv")).sentences
    sentences += sentences_of([["Ａcme", "cafe\u0301", "\x01"], ["rome"] * 40])
    tokenized = loaded.tokenize(tf.constant([" ".join(s.tokens) for s in sentences]))
    ids, encoded = export.encode(manifest, sentences)
    np.testing.assert_array_equal(tokenized["student_ids"].numpy(), ids)
    first_piece = tokenized["first_piece"].numpy()
    for row, starts in enumerate(encoded.extras["word_starts"]):
        assert first_piece[row, :len(starts)].tolist() == starts.tolist()
    tags = loaded.signatures["serving_default"](sentences=tf.constant(["alice met bob"]))
    assert tags["num_words"].numpy().tolist() == [3]
