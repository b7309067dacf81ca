"""--augment_transfer: the copies' rules and determinism, copies of training examples only, the
stamp, and a tiny run distilled on an augmented transfer set."""

import json
import os
import shutil

import numpy as np

from tests.conftest import tiny_config
from xtremedistil import augment, pipeline, tasks, teacher_cache
from xtremedistil.data import Sentence, TextExample

WORDS = tuple(f"w{i}" for i in range(12))


def _sentences(n):
    return [Sentence(WORDS, None, "xx", f"t:{i}") for i in range(n)]


def test_copies_mask_words_and_keep_n_grams_in_order():
    made = augment.ChunkCopies(3, seed=7, mask_token="[MASK]")(0, _sentences(200))
    assert made[:200] == _sentences(200)  # the originals first, unchanged
    copies = made[200:]
    assert len(copies) == 600 and all(c.language == "xx" for c in copies)
    assert all(c.source.endswith("(augmented)") for c in copies)
    short = [c.tokens for c in copies if len(c.tokens) < len(WORDS)]
    whole = [c.tokens for c in copies if len(c.tokens) == len(WORDS)]
    # About NGRAM_RATE of the copies are n-grams of 1..MAX_NGRAM words, the rest whole.
    assert 0.15 < len(short) / len(copies) < 0.35
    assert all(1 <= len(t) <= augment.MAX_NGRAM for t in short)
    for tokens in short:  # a contiguous run of the sentence, some words masked
        kept = [i for i, w in enumerate(tokens) if w != "[MASK]"]
        if kept:
            start = WORDS.index(tokens[kept[0]]) - kept[0]
            assert all(tokens[i] == WORDS[start + i] for i in kept)
    masked = sum(w == "[MASK]" for t in whole for w in t) / (len(whole) * len(WORDS))
    assert 0.07 < masked < 0.13  # MASK_RATE of the words
    assert all(w in ("[MASK]", WORDS[i]) for t in whole for i, w in enumerate(t))


def test_copies_depend_on_seed_and_chunk_alone():
    sentences = _sentences(20)
    first = augment.ChunkCopies(2, 1, "[MASK]")(3, sentences)
    assert first == augment.ChunkCopies(2, 1, "[MASK]")(3, sentences)  # a resumed run's
    assert first != augment.ChunkCopies(2, 1, "[MASK]")(4, sentences)
    assert first != augment.ChunkCopies(2, 2, "[MASK]")(3, sentences)


def test_a_pair_keeps_both_texts_whole():
    pair = TextExample("one two three four five six", "uno dos tres cuatro cinco seis", None,
                       "en", "p:1")
    copies = augment.ChunkCopies(50, 3, "<mask>")(0, [pair])[1:]
    assert all(len(c.text.split()) == 6 and len(c.text_b.split()) == 6 for c in copies)
    assert any("<mask>" in c.text for c in copies) and any("<mask>" in c.text_b for c in copies)
    single = TextExample("a fine and moving film indeed", None, None, "en", "s:1")
    lengths = {len(c.text.split()) for c in augment.ChunkCopies(50, 3, "<mask>")(0, [single])}
    assert 6 in lengths and min(lengths) <= 5


def test_only_training_examples_are_copied(tmp_path, tiny_tokenizer):
    from tests.test_engine import _fake_distiller  # pylint: disable=import-outside-toplevel
    task = tasks.get("tagging")
    sentences = [Sentence(("alice", "met", "bob", "smith"), None, "xx", f"t:{i}")
                 for i in range(30)]
    stored = teacher_cache.store_outputs(
        iter(sentences), task, tiny_tokenizer, 8, _fake_distiller(8, 1.0), str(tmp_path), 10, 8,
        {"teacher": "t", "augment": [2, 1]},
        augment=augment.ChunkCopies(2, 1, tiny_tokenizer.mask_token))
    # 27 training sentences (every 10th held out: 3) and 2 copies of each; validation as is.
    assert stored.train_count == 27 * 3
    assert teacher_cache.count(stored.train_paths) == 81
    assert teacher_cache.count(stored.val_paths) == 3
    def pieces(paths):
        return np.concatenate(list(teacher_cache.read_field(paths, "input_ids")))
    assert (pieces(stored.train_paths) == tiny_tokenizer.mask_token_id).any()
    assert not (pieces(stored.val_paths) == tiny_tokenizer.mask_token_id).any()


def test_a_run_distils_on_the_augmented_transfer_set(trained_run, tmp_path):
    trained, trained_metrics = trained_run
    config = tiny_config(os.path.dirname(trained.model_dir), model_dir=str(tmp_path / "model"),
                         augment_transfer=2, baseline=False)
    shutil.copytree(os.path.join(trained.model_dir, "teacher"),
                    os.path.join(config.model_dir, "teacher"))
    metrics = pipeline.run(config)
    folder = os.path.join(config.model_dir, "teacher_outputs")
    with open(os.path.join(folder, teacher_cache.STAMP), encoding="utf-8") as f:
        assert json.load(f)["augment"] == [2, config.seed]
    plain = os.path.join(trained.model_dir, "teacher_outputs")

    def count(where, split):
        return teacher_cache.count(sorted(
            os.path.join(where, n) for n in os.listdir(where) if n.startswith(split)))
    assert count(folder, "train") == 3 * count(plain, "train")
    assert count(folder, "val") == count(plain, "val")
    # Distilled on three times the text, the student still learns the task.
    assert metrics["student"]["mean_f1"] > 0.6
    assert metrics["student"]["mean_f1"] > trained_metrics["student"]["mean_f1"] - 0.15


def test_outputs_stored_without_copies_do_not_serve_a_run_with_them():
    # pylint: disable=protected-access
    before = {"teacher": "t", "outputs": ["logits"]}  # a stamp written before augmentation
    assert teacher_cache._covers(before, {**before, "augment": 0})
    assert not teacher_cache._covers(before, {**before, "augment": [2, 1]})
