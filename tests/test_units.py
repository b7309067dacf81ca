"""Pure pieces on hand-made sentences: alignment, masking, scoring, student shapes."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import write_tiny_bert
from xtremedistil import losses, students, tasks
from xtremedistil import teacher as teacher_lib
from xtremedistil.data import Sentence
from xtremedistil.options import Options
from xtremedistil.students import bilstm
from xtremedistil.students import vocab as vocab_lib
from xtremedistil.tasks import tagging


def sentence(tokens, tags, language="xx"):
    return Sentence(tuple(tokens), tuple(tags), language, "test:1")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return teacher_lib.load_tokenizer(write_tiny_bert(tmp_path_factory.mktemp("bert")))


def test_first_piece_carries_the_tag(tokenizer):
    # 'zq' is not in the vocabulary: it splits into 'z', '##q'.
    s = sentence(["alice", "zq", "paris"], ["B-PER", "O", "B-LOC"])
    encoded = tagging.encode([s], tokenizer, 8, {"O": 0, "B-PER": 1, "B-LOC": 2})
    pieces = tokenizer.convert_ids_to_tokens(encoded.input_ids[0].tolist())
    assert pieces[:6] == ["[CLS]", "alice", "z", "##q", "paris", "[SEP]"]
    assert encoded.extras["word_starts"][0].tolist() == [1, 2, 4]
    assert encoded.label_weights[0].tolist() == [0, 1, 1, 0, 1, 0, 0, 0]
    assert encoded.label_ids[0].tolist() == [0, 1, 0, 0, 2, 0, 0, 0]
    assert encoded.truncated == 0


def test_truncation_is_counted_and_cut_words_score_as_o(tokenizer):
    s = sentence(["alice", "met", "bob", "smith"], ["B-PER", "O", "B-PER", "I-PER"])
    encoded = tagging.encode([s], tokenizer, 5, {"O": 0, "B-PER": 1, "I-PER": 2})
    assert encoded.truncated == 1
    assert encoded.extras["word_starts"][0].tolist() == [1, 2, 3]
    tags = ["O", "B-PER", "I-PER"]
    predicted = tagging.word_tags(np.array([[0, 1, 0, 1, 0]]), [s], encoded.extras["word_starts"],
                                  tags)
    assert predicted == [["B-PER", "O", "B-PER", "O"]]
    # The cut 'smith' makes the second entity wrong: F1 is not inflated by truncation.
    scores = tagging.score_by_language([s], predicted)["per_language"]["xx"]
    assert scores["precision"] == pytest.approx(0.5) and scores["recall"] == pytest.approx(0.5)


def test_pieceless_word_becomes_unknown(tokenizer):
    s = sentence(["alice", "\u200b", "paris"], ["B-PER", "O", "B-LOC"])
    encoded = tagging.encode([s], tokenizer, 8, {"O": 0, "B-PER": 1, "B-LOC": 2})
    starts = encoded.extras["word_starts"][0]
    assert len(starts) == 3
    assert encoded.label_ids[0, starts].tolist() == [1, 0, 2]
    last = sentence(["alice", "\u200b"], ["B-PER", "B-LOC"])
    encoded = tagging.encode([last], tokenizer, 8, {"O": 0, "B-PER": 1, "B-LOC": 2})
    assert encoded.truncated == 0
    assert encoded.label_ids[0, encoded.extras["word_starts"][0]].tolist() == [1, 2]


def test_scores_per_language_and_macro_mean():
    gold = [sentence(["a", "b"], ["B-PER", "O"], "xx"), sentence(["c"], ["B-LOC"], "yy")]
    result = tagging.score_by_language(gold, [["B-PER", "O"], ["O"]])
    assert result["per_language"]["xx"]["f1"] == 1.0
    assert result["per_language"]["yy"]["f1"] == 0.0
    assert result["mean_f1"] == 0.5


def test_student_vocab_maps_unseen_pieces_to_unknown():
    vocab = vocab_lib.StudentVocab.from_ids([np.array([[0, 7, 3]]), np.array([[9, 3]])],
                                            pad_id=0, unk_id=1)
    assert vocab.teacher_ids.tolist() == [0, 1, 3, 7, 9]
    assert vocab.to_student_ids(np.array([[0, 9, 5, 1]]), 12).tolist() == [[0, 4, 1, 1]]


def test_student_vocab_size_keeps_the_most_frequent_pieces():
    vocab = vocab_lib.StudentVocab.from_ids([np.array([[0, 7, 3, 9]]), np.array([[9, 3, 9]])],
                                            pad_id=0, unk_id=1, max_size=4)
    assert vocab.teacher_ids.tolist() == [0, 1, 9, 3]  # most frequent first; 7 seen once
    assert vocab.to_student_ids(np.array([[7, 3, 9]]), 12).tolist() == [[1, 3, 2]]


def test_full_student_vocab_keeps_every_teacher_piece():
    vocab = vocab_lib.StudentVocab.full(6, pad_id=0, unk_id=3)
    assert vocab.teacher_ids.tolist() == [0, 3, 1, 2, 4, 5]
    assert vocab.to_student_ids(np.array([[0, 1, 3, 5]]), 6).tolist() == [[0, 2, 1, 5]]


def test_masked_losses_ignore_padding():
    teacher = tf.constant([[[1.0, 2.0], [5.0, 5.0]]])
    student = tf.constant([[[1.0, 2.0], [0.0, 0.0]]])
    per_token = losses.hidden_mse(teacher, student).numpy()
    assert per_token.tolist() == [[0.0, 25.0]]
    kl = losses.logits_kl(2.0)(teacher, teacher).numpy()
    np.testing.assert_allclose(kl, 0.0, atol=1e-6)
    ce = tasks.get("tagging").label_loss(tf.constant([[0, 1]]), student).numpy()
    assert ce.shape == (1, 2)


def test_student_shapes_and_factorised_embeddings():
    rng = np.random.default_rng(0)
    teacher_embeddings = rng.normal(size=(50, 32)).astype(np.float32)
    ids = np.array([0, 1, 5, 9, 12, 40])
    embeddings = vocab_lib.factorise_embeddings(teacher_embeddings, ids, 4)
    assert embeddings.shape == (6, 4)
    student = students.get(Options(word_emb_dim=4, bilstm_hidden_size=8))
    model = student.build(students.Dims(vocab_size=6, seq_len=10, num_labels=7,
                                        teacher_hidden_size=32), embeddings=embeddings)
    np.testing.assert_allclose(model.get_layer("word_embeddings").get_weights()[0], embeddings)
    assert model(np.zeros((3, 10), np.int32))["logits"].shape == (3, 10, 7)
    assert students.output_model(model, "logits")(np.zeros((3, 10), np.int32)).shape == (3, 10, 7)
    assert students.output_model(model, "hidden").output.shape[-1] == 32
    student.set_trainable(model, ("logits",))
    assert [l.name for l in model.layers if l.trainable and l.weights] == ["logits"]


def test_reverse_real_pieces_reverses_each_row_up_to_its_length():
    sequences = tf.reshape(tf.range(3 * 5 * 2, dtype=tf.float32), [3, 5, 2])
    lengths = tf.constant([5, 2, 0])
    expected = tf.reverse_sequence(sequences, lengths, seq_axis=1, batch_axis=0)
    reversed_ = bilstm.reverse_real_pieces(sequences, lengths)
    np.testing.assert_array_equal(reversed_.numpy(), expected.numpy())
    assert reversed_.numpy()[1, :2, 0].tolist() == [12.0, 10.0]


def test_student_pieces_without_a_teacher_piece_get_unused_ids():
    """config.json's student_vocab holds None for embedding rows past the tokenizer's pieces
    (multilingual-e5-small: 250,037 rows, 250,002 pieces): they map to ids no text gives."""
    ids = vocab_lib.teacher_ids_of(["<pad>", "x", None, "y", None], {"<pad>": 0, "x": 5, "y": 2})
    assert ids.tolist() == [0, 5, 6, 2, 7]
    table = vocab_lib.StudentVocab(ids).lookup_table(8)
    assert table[[0, 5, 2]].tolist() == [0, 1, 3]  # the real pieces keep their student ids
