"""The engine's seams: a student registered from outside trains end to end; teacher outputs
stored by name and stamped with the teacher; the masks distilled; shared initialisation;
start-up checks on resume; clear errors for runs that are not trained."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tests.conftest import tiny_config
from xtremedistil import console, pipeline, students, tasks, teacher_cache, training
from xtremedistil.data import Sentence
from xtremedistil.students import vocab as vocab_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LSTMStudent(students.Student):
    """A trivial second student: one left-to-right LSTM, no projection activation."""
    name = "lstm"
    layer_groups = {"logits": ("logits",), "encoder": ("lstm", "projection"),
                    "word_embeddings": ("word_embeddings",)}

    def build(self, dims, embeddings=None, batch_size=None):
        ids = tf_keras.Input((dims.seq_len,), batch_size=batch_size, dtype=tf.int32,
                             name="student_ids")
        init = (tf_keras.initializers.Constant(embeddings) if embeddings is not None
                else "uniform")
        x = tf_keras.layers.Embedding(dims.vocab_size, self.options.word_emb_dim,
                                      embeddings_initializer=init, name="word_embeddings")(ids)
        x = tf_keras.layers.LSTM(self.options.bilstm_hidden_size, return_sequences=True,
                                 name="lstm")(x)
        hidden = tf_keras.layers.Dense(dims.teacher_hidden_size, name="projection")(x)
        logits = tf_keras.layers.Dense(dims.num_labels, name="logits")(hidden)
        return tf_keras.Model(ids, {"hidden": hidden, "logits": logits}, name="lstm_student")


def test_a_registered_student_runs_end_to_end(trained_run, tmp_path, monkeypatch):
    students.STUDENTS.register("lstm", LSTMStudent)
    trained, _ = trained_run
    # The same task and teacher: the fine-tuned teacher and its outputs are reused.
    config = tiny_config(os.path.dirname(trained.model_dir), model_dir=str(tmp_path / "model"),
                         student="lstm", baseline=False, distil_epochs=2, strategy="default")
    for folder in ("teacher", "teacher_outputs"):
        shutil.copytree(os.path.join(trained.model_dir, folder),
                        os.path.join(config.model_dir, folder))
    steps, progress_class = {}, console.EpochProgress

    def progress(name, epochs, steps_per_epoch=None):
        # Each stage's progress line knows its epoch's batches: "120/150, ~3 min left".
        steps[name] = steps_per_epoch
        return progress_class(name, epochs, steps_per_epoch)
    monkeypatch.setattr(console, "EpochProgress", progress)
    metrics = pipeline.run(config)
    task = tasks.get("tagging")
    transfer = sum(1 for _ in task.transfer_examples(config))
    held_out = len(range(0, transfer, teacher_cache.validation_every(transfer)))
    assert steps["logits_1"] == steps["representation"] == -(-(transfer - held_out) // 8)
    assert steps["labels_1"] == -(-len(task.read_labeled(config).train) // 8)
    assert metrics["student_type"] == "lstm"
    names = [s["name"] for s in metrics["stages"]]
    # Its three layer groups give three logit and three label sub-stages.
    assert names[2:] == ["representation", "logits_1", "logits_2", "logits_3", "labels_1",
                         "labels_2", "labels_3"]
    assert metrics["student"]["mean_f1"] > 0.6
    model = LSTMStudent(tiny_config(tmp_path)).build(students.Dims(10, 8, 3, 4))
    assert "lstm" in [layer.name for layer in model.layers]


def _fake_distiller(seq_len, value):
    """A 'teacher' whose hidden output is `value` everywhere: [B, T, 2] and logits [B, T, 3]."""
    ids = tf_keras.Input((seq_len,), dtype=tf.int32)
    mask = tf_keras.Input((seq_len,), dtype=tf.int32)
    ones = tf_keras.layers.Lambda(lambda t: tf.ones(tf.concat([tf.shape(t), [1]], 0)))(ids)
    return tf_keras.Model([ids, mask], {"hidden": tf_keras.layers.Lambda(
        lambda t: tf.tile(t, [1, 1, 2]) * value)(ones), "logits": tf_keras.layers.Lambda(
        lambda t: tf.tile(t, [1, 1, 3]) * value)(ones)})


def _sentences(n):
    return [Sentence(("alice", "met", "bob", "smith"), None, "xx", f"t:{i}") for i in range(n)]


def _store(folder, tokenizer, value, stamp, share=(0, 1), sentences=30):
    task = tasks.get("tagging")
    return teacher_cache.store_outputs(iter(_sentences(sentences)), task, tokenizer, 8,
                                       _fake_distiller(8, value), str(folder), 10, 8, stamp,
                                       share=share)


def _stored(folder, tokenizer, value, stamp):
    stored = _store(folder, tokenizer, value, stamp)
    return stored.train_paths, stored.val_paths


def test_workers_compute_and_read_only_their_share_of_the_chunks(tmp_path, tiny_tokenizer):
    folder = tmp_path / "outputs"
    # 95 sentences: 10 to validation, 85 in training chunks of 10 (indexes 0..8, the last 5).
    shares = [_store(folder, tiny_tokenizer, 1.0, {"teacher": "a"}, (k, 2), 95) for k in (0, 1)]
    names = [[os.path.basename(p) for p in s.train_paths] for s in shares]
    assert names[0] == [f"train_{i:05d}.npz" for i in (0, 2, 4, 6, 8)]
    assert names[1] == [f"train_{i:05d}.npz" for i in (1, 3, 5, 7)]
    assert [s.train_count for s in shares] == [85, 85]
    assert [s.computed for s in shares] == [45 + 10, 40]  # the second found validation done
    assert [teacher_cache.count(s.train_paths) for s in shares] == [45, 40]
    assert [s.share_count for s in shares] == [45, 40]
    # One machine on the same folder: every chunk is there already.
    alone = _store(folder, tiny_tokenizer, 1.0, {"teacher": "a"}, (0, 1), 95)
    assert alone.computed == 0 and len(alone.train_paths) == 9
    # A worker's share read as exactly `rows` rows (going round again), as many on each worker.
    table = np.arange(1000, dtype=np.int32)
    for share in shares:
        batches = list(teacher_cache.dataset(share.train_paths, "logits", "tokens", 4, table,
                                             seed=1, epoch=0, rows=48))
        assert [len(b[0]) for b in batches] == [4] * 12
    with pytest.raises(ValueError, match="fewer chunks .* than there are workers"):
        _store(tmp_path / "few", tiny_tokenizer, 1.0, {"teacher": "a"}, (2, 3), 20)


def test_stored_outputs_are_recomputed_for_another_teacher(tmp_path, tiny_tokenizer):
    folder = tmp_path / "outputs"
    train, _ = _stored(folder, tiny_tokenizer, 1.0, {"teacher": "a"})
    with np.load(train[0]) as chunk:
        assert float(chunk["out_hidden"].max()) == 1.0
    before = os.path.getmtime(train[0])
    _stored(folder, tiny_tokenizer, 1.0, {"teacher": "a"})  # same teacher: reused
    assert os.path.getmtime(train[0]) == before
    train, _ = _stored(folder, tiny_tokenizer, 2.0, {"teacher": "b"})  # another: recomputed
    with np.load(train[0]) as chunk:
        assert float(chunk["out_hidden"].max()) == 2.0
        assert set(chunk) >= {"input_ids", "mask_tokens", "mask_words", "out_logits"}


def test_stored_outputs_serve_a_run_that_needs_fewer_of_them(tmp_path, tiny_tokenizer):
    folder = tmp_path / "outputs"
    both = {"teacher": "a", "outputs": ["hidden", "logits"], "seq_len": 8}
    train, _ = _stored(folder, tiny_tokenizer, 1.0, both)
    before = os.path.getmtime(train[0])
    _stored(folder, tiny_tokenizer, 2.0, dict(both, outputs=["logits"]))  # a subset: reused
    assert os.path.getmtime(train[0]) == before
    # A transformer run's layer map is a setting of outputs the BiLSTM does not read: reused.
    transformer_stamp = dict(both, outputs=["hidden", "layers", "logits"], layers=[1, 2])
    with open(os.path.join(folder, "stamp.json"), "w", encoding="utf-8") as f:
        json.dump(transformer_stamp, f)
    _stored(folder, tiny_tokenizer, 2.0, both)
    assert os.path.getmtime(train[0]) == before
    # A stamp from before the validation split was recorded: every 10th example, reused.
    _stored(folder, tiny_tokenizer, 2.0, dict(both, val_every=10))
    assert os.path.getmtime(train[0]) == before
    _stored(folder, tiny_tokenizer, 2.0, dict(both, outputs=["logits"], seq_len=9))
    with np.load(train[0]) as chunk:  # other settings: recomputed
        assert float(chunk["out_logits"].max()) == 2.0
    _stored(folder, tiny_tokenizer, 3.0, dict(both, seq_len=9))  # hidden not stored: recomputed
    with np.load(train[0]) as chunk:
        assert float(chunk["out_logits"].max()) == 3.0


def test_transfer_masks_weight_the_positions_they_name(tmp_path, tiny_tokenizer):
    train, _ = _stored(tmp_path / "outputs", tiny_tokenizer, 1.0, {"teacher": "a"})
    table = np.arange(1000, dtype=np.int32)
    pieces = tiny_tokenizer.convert_ids_to_tokens(
        next(iter(teacher_cache.dataset(train, "logits", "tokens", 1, table)))[0][0].numpy())
    assert pieces[:7] == ["[CLS]", "alice", "met", "bob", "smith", "[SEP]", "[PAD]"]
    _, _, tokens = next(iter(teacher_cache.dataset(train, "logits", "tokens", 1, table)))
    _, _, words = next(iter(teacher_cache.dataset(train, "logits", "words", 1, table)))
    assert tokens.numpy()[0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]  # [CLS] .. [SEP]
    assert words.numpy()[0].tolist() == [0, 1, 1, 1, 1, 0, 0, 0]  # first pieces only


def test_student_and_baseline_share_the_initialisation(trained_run):
    config, _ = trained_run
    student_dir = os.path.join(config.model_dir, "student")
    initial = os.path.join(student_dir, "initial.h5")
    assert os.path.exists(initial)
    manifest = pipeline.manifest_lib.Manifest.read(config.model_dir)
    model = students.get(manifest.options).build(students.Dims(
        len(manifest.student_vocab), config.seq_len, len(manifest.labels),
        manifest.teacher_hidden_size))
    model.load_weights(initial)
    teacher = pipeline.teacher_lib.load_teacher(manifest.teacher_dir, len(manifest.labels))
    # The last teacher layer is distilled, so both start from the teacher's classifier.
    for got, want in zip(model.get_layer("logits").get_weights(),
                         teacher.classifier.get_weights()):
        np.testing.assert_allclose(got, want)


def test_resume_checks_disk_space(trained_run, monkeypatch):
    config, _ = trained_run
    usage = shutil.disk_usage(config.model_dir)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=2**20))
    with pytest.raises(ValueError, match="MiB free"):
        pipeline.run(config)


def test_export_of_an_unfinished_run_says_not_trained(tmp_path):
    model_dir = tmp_path / "model"
    pipeline.check_model_dir(tiny_config(tmp_path, model_dir=str(model_dir)))  # config.json only
    result = subprocess.run([sys.executable, "run_xtreme_distil.py", "--mode=export",
                             f"--model_dir={model_dir}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert "not trained yet" in result.stderr and "Traceback" not in result.stderr


def test_student_vocab_maps_and_factorises():
    vocab = vocab_lib.StudentVocab.from_ids([np.array([[0, 7, 3]])], pad_id=0, unk_id=1)
    embeddings = vocab_lib.factorise_embeddings(
        np.random.default_rng(0).normal(size=(10, 6)), vocab.teacher_ids, 3)
    assert embeddings.shape == (4, 3) and abs(float(embeddings.std()) - 1) < 1e-3


def test_metrics_record_the_engine_parts(trained_run):
    config, metrics = trained_run
    with open(os.path.join(config.model_dir, "metrics.json"), encoding="utf-8") as f:
        written = json.load(f)
    assert (written["task"], written["student_type"], written["recipe"]) == (
        "tagging", "bilstm", "ours")
    with open(os.path.join(config.model_dir, "teacher_outputs", "stamp.json"),
              encoding="utf-8") as f:
        stamp = json.load(f)
    teacher = pipeline.teacher_lib.load_teacher(os.path.join(config.model_dir, "teacher"), 7)
    assert stamp["teacher"] == training.weights_fingerprint(teacher)
    assert stamp["outputs"] == ["hidden", "logits"]


def test_validation_examples_come_from_the_whole_transfer_stream():
    # 100 examples, at most 5 for validation: every 20th, not the first five 10ths.
    every = teacher_cache.validation_every(100, val_max=5)
    parts = list(teacher_cache.split_stream(range(100), 30, every, val_max=5))
    assert parts[-1] == ("val", 0, [0, 20, 40, 60, 80])
    assert sum(len(chunk) for split, _, chunk in parts if split == "train") == 95
    assert teacher_cache.validation_every(500) == 10  # small streams: every 10th, as before
