"""--student=transformer: a small BERT-style encoder trained by the same recipes as the BiLSTM."""

import dataclasses
import json
import os
import shutil
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
import transformers

from tests.conftest import tiny_config
from tests.test_classification import CHANCE, classification_config
from xtremedistil import export, losses, pipeline, recipes, students, synthetic, tasks
from xtremedistil import teacher as teacher_lib
from xtremedistil.data import Sentence
from xtremedistil.export import tflite
from xtremedistil.manifest import Manifest
from xtremedistil.options import Options
from xtremedistil.students import transformer
from xtremedistil.students import vocab as vocab_lib

SHAPE = dict(student="transformer", num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
             intermediate_size=64)


@pytest.fixture(scope="module")
def transformer_run(trained_run, tmp_path_factory):
    """The tiny task distilled stage-wise into a 2-layer transformer, its layers' attention
    and states learning the teacher's (uniform map), on the trained run's teacher; exported."""
    trained, _ = trained_run
    config = tiny_config(os.path.dirname(trained.model_dir), **SHAPE, baseline=False,
                         distil_epochs=1, strategy="default", distil_multi_hidden_states=True,
                         distil_attention=True, attention_layers="all",
                         model_dir=str(tmp_path_factory.mktemp("transformer") / "model"))
    for folder in ("teacher", "teacher_outputs"):
        shutil.copytree(os.path.join(trained.model_dir, folder),
                        os.path.join(config.model_dir, folder))
    metrics = pipeline.run(config)
    return config, metrics, export.export_all(config.model_dir)


def test_transformer_student_learns_the_task_unfreezing_layer_by_layer(transformer_run):
    config, metrics, _ = transformer_run
    assert metrics["student_type"] == "transformer"
    names = [s["name"] for s in metrics["stages"]]
    # Five groups from the top: logits, projection, layer_2, layer_1, embeddings.
    assert names[2:] == ["attention", "layers", "representation"] + [
        f"logits_{i}" for i in range(1, 6)] + [f"labels_{i}" for i in range(1, 6)]
    layers_stage = next(s for s in metrics["stages"] if s["name"] == "layers")
    assert layers_stage["best_val_loss"] < 1.0  # the mapped states came near the teacher's
    # Each stage scored on dev says its score; the best of them is the student kept.
    scored = {s["name"]: s["dev_score"] for s in metrics["stages"] if "dev_score" in s}
    assert set(scored) == {n for n in names if n.startswith(("logits_", "labels_"))}
    assert metrics["best_stage"] == max(scored, key=scored.get)
    with open(os.path.join(config.model_dir, "teacher_outputs", "stamp.json"),
              encoding="utf-8") as f:
        assert json.load(f)["layers"] == [1, 2]  # the tiny teacher's 2 layers, uniform map
    assert metrics["student"]["mean_f1"] >= metrics["teacher"]["mean_f1"] - 0.1


def test_transformer_tflite_logits_equal_keras_with_builtin_ops(transformer_run):
    config, _, paths = transformer_run
    manifest = Manifest.read(config.model_dir)
    examples = tasks.get("tagging").read_labeled(manifest.options).test[:16]
    ids, _ = export.encode(manifest, examples)
    keras_logits = export.load_student(manifest).predict(ids, verbose=0)
    interpreter = tflite.tflite_interpreter(os.path.join(paths["tflite_dir"],
                                                         export.TFLITE_FILES["fp32"]))
    np.testing.assert_allclose(tflite.tflite_logits(interpreter, ids), keras_logits, atol=1e-4)
    ops = {op["op_name"]
           for op in interpreter._get_ops_details()}  # pylint: disable=protected-access
    assert "BATCH_MATMUL" in ops and "SOFTMAX" in ops and not any("FLEX" in op or "CUSTOM" in op
                                                                  for op in ops)


def test_real_pieces_do_not_see_the_padding():
    layer = transformer.EncoderLayer(hidden_size=16, num_heads=4, intermediate_size=32)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 10, 16)).astype(np.float32)
    mask = np.ones((2, 10), np.float32)
    mask[0, 6:] = 0  # 6 real pieces, then padding
    changed = x.copy()
    changed[0, 6:] = rng.normal(size=(4, 16)) * 10  # anything at the padding
    before, after = layer([x, mask])[0].numpy(), layer([changed, mask])[0].numpy()
    np.testing.assert_allclose(after[0, :6], before[0, :6], atol=1e-5)
    assert not np.allclose(after[0, 6:], before[0, 6:])  # (padding rows do change)
    attention = layer([x, mask])[1].numpy()  # [B, N, T, T]
    np.testing.assert_allclose(attention.sum(-1), 1, rtol=1e-5)
    assert attention[0, :, :, 6:].max() < 1e-6
    # Sentence tasks pool the real pieces alone.
    np.testing.assert_allclose(transformer.masked_mean(after, mask).numpy()[0],
                               after[0, :6].mean(0), rtol=1e-5)


def test_transformer_student_classifies_pairs(tmp_path):
    config = classification_config(tmp_path, True, "soft", **SHAPE)
    metrics = pipeline.run(config)
    assert metrics["task"] == "pairs" and metrics["student_type"] == "transformer"
    assert metrics["student"]["mean_accuracy"] >= CHANCE["pairs"] + 0.3


def test_layer_maps():
    assert teacher_lib.layer_map("", 4, 6) == (1, 3, 4, 6)  # the last learns the last
    assert teacher_lib.layer_map("", 2, 12) == (6, 12)
    assert teacher_lib.layer_map("", 3, 3) == (1, 2, 3)
    assert teacher_lib.layer_map("2:5,1:0", 2, 6) == (0, 5)
    for bad, message in (("1:2", "each student layer"), ("1:2,2:7", "layers 0..6"),
                         ("1-2,2:3", "pairs"), ("1:2,1:3", "each student layer")):
        with pytest.raises(ValueError, match=message):
            teacher_lib.layer_map(bad, 2, 6)


def test_layers_loss_by_hand():
    teacher = np.zeros((1, 2, 1, 2), np.float32)  # [B, L, T, H]
    student = np.array([[[[1.0, 1.0]], [[3.0, 1.0]]]], np.float32)
    # Layer 1: (1 + 1) / 2 = 1; layer 2: (9 + 1) / 2 = 5; their mean 3, per position [B, T].
    np.testing.assert_allclose(losses.layers_mse(teacher, student).numpy(), [[3.0]])


def test_teacher_layers_output_stacks_the_mapped_hidden_states(tiny_tokenizer, tmp_path):
    from tests.conftest import write_tiny_bert  # pylint: disable=import-outside-toplevel
    hf_model = teacher_lib.load_teacher(str(write_tiny_bert(tmp_path / "bert")), 3,
                                        tasks.get("tagging").teacher_class("auto"))
    _, distiller = teacher_lib.keras_models(hf_model, tasks.get("tagging"), -1,
                                            ("hidden", "layers"), layers=(2, 0))
    encoded = tiny_tokenizer(["alice met bob", "paris"], padding="max_length", max_length=8,
                             return_tensors="np")
    inputs = [encoded["input_ids"], encoded["attention_mask"]]
    layers = distiller.predict_on_batch(inputs)["layers"]
    states = hf_model(input_ids=inputs[0], attention_mask=inputs[1],
                      output_hidden_states=True).hidden_states
    assert layers.shape == (2, 2, 8, hf_model.config.hidden_size)
    np.testing.assert_allclose(layers[:, 0], states[2].numpy(), atol=1e-5)
    np.testing.assert_allclose(layers[:, 1], states[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("output", ["tokens", "sentence", "pair"])
def test_layers_output_has_each_layer_in_the_teachers_width(tmp_path, output):
    options = tiny_config(tmp_path, **SHAPE, distil_multi_hidden_states=True)
    dims = students.Dims(vocab_size=30, seq_len=10, num_labels=3, teacher_hidden_size=8,
                         output=output)
    model = students.get(options).build(dims)
    ids = np.random.default_rng(0).integers(2, 30, size=(4, dims.input_len)).astype(np.int32)
    outputs = model(ids)
    per_example = (10,) if output == "tokens" else ()
    assert outputs["layers"].shape == (4, 2) + per_example + (8,)
    assert outputs["hidden"].shape == (4,) + per_example + (8,)
    assert "layers" not in students.get(tiny_config(tmp_path, **SHAPE)).build(dims).output


def test_exported_checkpoint_loads_in_transformers_with_equal_outputs(transformer_run):
    config, _, paths = transformer_run
    manifest = Manifest.read(config.model_dir)
    examples = tasks.get("tagging").read_labeled(manifest.options).test[:8]
    ids, _ = export.encode(manifest, examples)
    student = export.load_student(manifest)
    encoder = tf_keras.Model(student.input, transformer.layer_states(student, 2))
    bert = transformers.TFBertModel.from_pretrained(paths["checkpoint"])
    states = bert(input_ids=ids, attention_mask=(ids != 0).astype(np.int32)).last_hidden_state
    np.testing.assert_allclose(states.numpy(), encoder.predict(ids, verbose=0), atol=1e-4)
    # Its tokenizer gives the student's ids.
    tokenizer = transformers.AutoTokenizer.from_pretrained(paths["checkpoint"])
    pieces = tokenizer([list(e.tokens) for e in examples], is_split_into_words=True,
                       truncation=True, max_length=manifest.options.seq_len,
                       padding="max_length")["input_ids"]
    np.testing.assert_array_equal(np.asarray(pieces), ids)


def test_the_student_s_parameters_leave_out_the_training_only_layer_maps(transformer_run):
    config, metrics, _ = transformer_run
    manifest = Manifest.read(config.model_dir)
    model = students.get(manifest.options).build(export.student_dims(manifest))
    maps = sum(students.count_params(layer) for layer in model.layers
               if layer.name.startswith("layer_map_"))
    assert maps > 0  # --distil_multi_hidden_states: one map a student layer
    assert metrics["params"]["student"] == students.count_params(model) - maps
    assert metrics["params"]["student"] == students.count_params(export.load_student(manifest))


def test_a_stage_of_the_student_exports_as_its_own_checkpoint(transformer_run):
    """harness.export_checkpoint (task_transfer.py --source_stage): the folder holds the encoder
    as that stage left it."""
    from benchmarks import harness  # pylint: disable=import-outside-toplevel
    config, _, paths = transformer_run
    folder = harness.export_checkpoint(config.model_dir, "layers")
    assert os.path.basename(folder) == "checkpoint_layers"
    manifest = Manifest.read(config.model_dir)
    ids, _ = export.encode(manifest, tasks.get("tagging").read_labeled(manifest.options).test[:8])
    mask = (ids != 0).astype(np.int32)
    stage = export.load_student(manifest, weights=os.path.join(config.model_dir, "student",
                                                               "layers.h5"))
    expected = tf_keras.Model(stage.input, transformer.layer_states(stage, 2)).predict(ids,
                                                                                     verbose=0)
    states = transformers.TFBertModel.from_pretrained(folder)(
        input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    np.testing.assert_allclose(states, expected, atol=1e-4)
    best = transformers.TFBertModel.from_pretrained(paths["checkpoint"])(
        input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    assert np.abs(best - states).max() > 1e-2  # the later stages moved the encoder
    with pytest.raises(harness.app.UsageError, match="no stage nowhere there"):
        harness.export_checkpoint(config.model_dir, "nowhere")


def test_panx_continues_from_a_finished_run_s_best_student(transformer_run, tmp_path,
                                                          monkeypatch):
    """panx.py --pt_student_checkpoint=<a run's model_dir>: its best student is exported and
    becomes the start; options at their defaults are not recorded (older runs compare equal)."""
    from benchmarks import panx  # pylint: disable=import-outside-toplevel
    config = transformer_run[0]
    run = tmp_path / "finished"
    shutil.copytree(config.model_dir, run, ignore=shutil.ignore_patterns("export"))

    def given(**values):
        monkeypatch.setattr(panx, "FLAGS", {name: types.SimpleNamespace(
            value=values.get(name, getattr(Options(), name))) for name in panx.CONTINUE_OPTIONS})
        return panx.continue_options()

    assert given() == {}
    continued = given(pt_student_checkpoint=str(run), distil_mode="soft")
    assert continued == {"pt_student_checkpoint": str(run / "export" / "checkpoint"),
                         "distil_mode": "soft"}
    with open(run / "export" / "checkpoint" / "config.json", encoding="utf-8") as f:
        assert json.load(f)["num_hidden_layers"] == config.num_hidden_layers
    assert given(init_student_from=str(run)) == {"init_student_from": str(run)}


def test_a_new_run_starts_from_the_exported_checkpoint(transformer_run, trained_run, tmp_path):
    config, _, paths = transformer_run
    trained, _ = trained_run
    new = tiny_config(os.path.dirname(trained.model_dir), **SHAPE, word_emb_dim=32,
                      pt_student_checkpoint=paths["checkpoint"], distil_mode="soft",
                      distil_epochs=1, baseline=False, strategy="default",
                      model_dir=str(tmp_path / "model"))
    for folder in ("teacher", "teacher_outputs"):
        shutil.copytree(os.path.join(trained.model_dir, folder),
                        os.path.join(new.model_dir, folder))
    metrics = pipeline.run(new)
    assert metrics["student"]["mean_f1"] > 0.6
    # Its initialisation is the checkpoint's encoder.
    manifest = Manifest.read(new.model_dir)
    model = students.get(new).build(export.student_dims(manifest))
    model.load_weights(os.path.join(new.model_dir, "student", "initial.h5"))
    ids, _ = export.encode(manifest, tasks.get("tagging").read_labeled(new).test[:8])
    encoder = tf_keras.Model(model.input, transformer.layer_states(model, 2))
    bert = transformers.TFBertModel.from_pretrained(paths["checkpoint"])
    states = bert(input_ids=ids, attention_mask=(ids != 0).astype(np.int32)).last_hidden_state
    np.testing.assert_allclose(encoder.predict(ids, verbose=0), states.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="--word_emb_dim=32"):
        students.get(new.replace(word_emb_dim=16)).load_checkpoint(
            model, paths["checkpoint"], manifest.student_vocab)


def test_a_new_run_continues_a_finished_student_every_layer(transformer_run, tmp_path):
    """--init_student_from=<a finished run>: its best student, output layer included, is the
    new run's start (its layer maps, which this run lacks, left out); a student of another
    vocabulary or labels is refused."""
    config = transformer_run[0]
    new = config.replace(distil_multi_hidden_states=False, distil_attention=False,
                         distil_mode="soft", lr_schedule="cosine",
                         init_student_from=config.model_dir, model_dir=str(tmp_path / "model"))
    for folder in ("teacher", "teacher_outputs"):
        shutil.copytree(os.path.join(config.model_dir, folder),
                        os.path.join(new.model_dir, folder))
    metrics = pipeline.run(new)
    assert metrics["student"]["mean_f1"] > 0.6
    source, manifest = Manifest.read(config.model_dir), Manifest.read(new.model_dir)
    finished = students.get(source.options).build(export.student_dims(source))
    finished.load_weights(source.student_weights)
    started = students.get(new).build(export.student_dims(manifest))
    started.load_weights(os.path.join(new.model_dir, "student", "initial.h5"))
    layers = [layer for layer in started.layers if layer.weights]
    assert {"logits", "projection", "layer_2"} <= {layer.name for layer in layers}
    for layer in layers:
        for ours, theirs in zip(layer.get_weights(),
                                finished.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    student = students.get(new)
    with pytest.raises(ValueError, match="student vocabulary"):
        pipeline.start_from_run(started, config.model_dir, student, "tagging",
                                manifest.labels, manifest.student_vocab[:-1])
    with pytest.raises(ValueError, match="not tagging over"):
        pipeline.start_from_run(started, config.model_dir, student, "tagging",
                                manifest.labels[::-1], manifest.student_vocab)
    with pytest.raises(ValueError, match="both start the student"):
        new.replace(pt_student_checkpoint="somewhere").validate()
    with pytest.raises(ValueError, match="this run's own --model_dir"):
        new.replace(init_student_from=new.model_dir).validate()


# === Attention distillation (--distil_attention) ===

def test_attention_loss_by_hand():
    teacher = np.array([[[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]],
                       np.float32)  # [B, L, T, T]; the last query row padded (all 0)
    student = np.array([[[[0.25, 0.75, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]]], np.float32)
    # Row 1: 0.5 ln(0.5 / 0.25) + 0.5 ln(0.5 / 0.75); row 2: ln(1 / 0.5); the padded row 0.
    row_1, row_2 = 0.5 * np.log(2) + 0.5 * np.log(2 / 3), np.log(2)
    np.testing.assert_allclose(losses.attention_kl(teacher, student).numpy(),
                               [[row_1, row_2, 0.0]], rtol=1e-5)
    # Per example (sentence tasks): the mean over the real pieces (keys 1 and 2).
    np.testing.assert_allclose(losses.attention_loss("kl", per_position=False)(
        teacher, student).numpy(), [(row_1 + row_2) / 2], rtol=1e-5)
    # MSE: row 1 (0.0625 + 0.0625 + 0) / 3, row 2 (0.25 + 0.25 + 0) / 3.
    np.testing.assert_allclose(losses.attention_mse(teacher, student).numpy()[0, :2],
                               [0.125 / 3, 0.5 / 3], rtol=1e-5)
    # Two layers: their mean.
    two = losses.attention_kl(np.concatenate([teacher, teacher], 1),
                              np.concatenate([student, teacher], 1)).numpy()
    np.testing.assert_allclose(two, [[row_1 / 2, row_2 / 2, 0.0]], rtol=1e-5)


def attention_val_loss(model, chunk, ids):
    """The student's mean attention KL against a stored chunk's maps, over real pieces."""
    predicted = model.predict(ids, verbose=0)["attention"]
    per_piece = losses.attention_kl(chunk["out_attention"].astype(np.float32), predicted).numpy()
    return float((per_piece * chunk["mask_tokens"]).sum() / chunk["mask_tokens"].sum())


def test_attention_stage_learns_the_teachers_stored_maps(transformer_run):
    config, metrics, _ = transformer_run
    outputs = os.path.join(config.model_dir, "teacher_outputs")
    with open(os.path.join(outputs, "stamp.json"), encoding="utf-8") as f:
        assert json.load(f)["attention_layers"] == [1, 2]
    with np.load(os.path.join(outputs, "val_00000.npz")) as stored:
        chunk = dict(stored)
    n = len(chunk["input_ids"])
    assert chunk["out_attention"].shape == (n, 2, 16, 16)  # [N, L_a, T, T], heads averaged
    assert chunk["out_attention"].dtype == np.float16
    real = chunk["mask_tokens"].astype(bool)
    row_sums = chunk["out_attention"].astype(np.float32).sum(-1)  # [N, L_a, T]
    np.testing.assert_allclose(row_sums.transpose(0, 2, 1)[real], 1, atol=3e-3)
    assert not row_sums.transpose(0, 2, 1)[~real].any()  # padding queries' rows are 0
    assert "online_teacher" not in metrics  # stored: far below --attention_cache_mb
    manifest = Manifest.read(config.model_dir)
    model = students.get(config).build(export.student_dims(manifest))
    ids = pipeline_student_ids(manifest, chunk["input_ids"])
    model.load_weights(os.path.join(config.model_dir, "student", "initial.h5"))
    before = attention_val_loss(model, chunk, ids)
    model.load_weights(os.path.join(config.model_dir, "student", "attention.h5"))
    after = attention_val_loss(model, chunk, ids)
    assert after < 0.8 * before, (before, after)


def pipeline_student_ids(manifest, teacher_ids):
    """Student ids of stored teacher pieces, with the run's vocabulary."""
    tokenizer = teacher_lib.load_tokenizer(manifest.teacher_dir)
    vocab = vocab_lib.StudentVocab(
        np.asarray(tokenizer.convert_tokens_to_ids(manifest.student_vocab), np.int32))
    return vocab.to_student_ids(teacher_ids, max(manifest.teacher_vocab_size, len(tokenizer)))


def attention_then_labels(task, student, options):
    """A recipe of two stages: the attention, then the labels."""
    labels = recipes.Objective(recipes.LABELS, "logits", task.label_loss)
    return [recipes.attention_stage(task, student, options),
            recipes.Stage("labels", labels, student.groups_top_down(), score_on_dev=True)]


def test_attention_beyond_the_cache_budget_runs_the_teacher_online(transformer_run, trained_run,
                                                                    tmp_path):
    recipes.RECIPES.register("attention_then_labels", attention_then_labels)
    trained, _ = trained_run
    config = tiny_config(os.path.dirname(trained.model_dir), **SHAPE, baseline=False,
                         distil_epochs=1, strategy="default", recipe="attention_then_labels",
                         distil_attention=True, attention_layers="all", attention_cache_mb=0,
                         distil_batch_size=32, model_dir=str(tmp_path / "model"))
    for folder in ("teacher", "teacher_outputs"):
        shutil.copytree(os.path.join(trained.model_dir, folder),
                        os.path.join(config.model_dir, folder))
    metrics = pipeline.run(config)
    assert [s["name"] for s in metrics["stages"]][2:] == ["attention", "labels"]
    online = metrics["online_teacher"]["attention"]
    assert online["seconds"] > 0 and online["batches"] >= 540 // 32  # every training batch
    with np.load(os.path.join(config.model_dir, "teacher_outputs", "val_00000.npz")) as chunk:
        assert "out_attention" not in chunk  # nothing stored
    # The online maps are the ones a run within the budget stores.
    hf_model = teacher_lib.load_teacher(os.path.join(trained.model_dir, "teacher"), 7,
                                        tasks.get("tagging").teacher_class("auto"))
    _, distiller = teacher_lib.keras_models(hf_model, tasks.get("tagging"), -1, ("attention",),
                                            attention_layers=(1, 2))
    teacher = teacher_lib.OnlineTeacher(distiller, "attention", 0, 16)
    stored = os.path.join(transformer_run[0].model_dir, "teacher_outputs", "val_00000.npz")
    with np.load(stored) as chunk:
        np.testing.assert_allclose(teacher(chunk["input_ids"][:8]),
                                   chunk["out_attention"][:8].astype(np.float32), atol=2e-3)


def test_teacher_attention_output_averages_the_heads_of_the_mapped_layers(tiny_tokenizer,
                                                                          tmp_path):
    from tests.conftest import write_tiny_bert  # pylint: disable=import-outside-toplevel
    hf_model = teacher_lib.load_teacher(str(write_tiny_bert(tmp_path / "bert")), 3,
                                        tasks.get("tagging").teacher_class("auto"))
    _, distiller = teacher_lib.keras_models(hf_model, tasks.get("tagging"), -1, ("attention",),
                                            attention_layers=(2, 1))
    encoded = tasks.get("tagging").encode(
        [Sentence(tuple(words.split()), None, "xx", "") for words in ("alice met bob", "bob")],
        tiny_tokenizer, 16)
    maps = teacher_lib.predict(distiller, encoded, 2)["attention"]  # cut to 8 pieces, padded
    attentions = hf_model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask,
                          output_attentions=True).attentions
    assert maps.shape == (2, 2, 16, 16)
    queries = encoded.attention_mask[:, :8, np.newaxis]  # rows of padding queries are 0
    np.testing.assert_allclose(maps[:, 0, :8, :8],
                               attentions[1].numpy().mean(1)[:, :8, :8] * queries, atol=1e-5)
    np.testing.assert_allclose(maps[:, 1, :8, :8],
                               attentions[0].numpy().mean(1)[:, :8, :8] * queries, atol=1e-5)
    assert not maps[:, :, 8:].any() and not maps[:, :, :, 8:].any()  # both position axes
    assert not maps[1, :, 3:].any() and maps[1, :, :3].any()  # "bob": 3 pieces
    with pytest.raises(ValueError, match="embeddings"):
        teacher_lib.attention_layer_map("1:0,2:2", 2, (1,), 2)


def test_student_attention_output_is_each_distilled_layers_head_mean(tmp_path):
    options = tiny_config(tmp_path, **SHAPE, distil_attention=True, attention_layers="all")
    dims = students.Dims(vocab_size=30, seq_len=10, num_labels=3, teacher_hidden_size=8)
    model = students.get(options).build(dims)
    ids = np.random.default_rng(0).integers(2, 30, size=(2, 10)).astype(np.int32)
    ids[0, 6:] = 0
    maps = model(ids)["attention"].numpy()
    assert maps.shape == (2, 2, 10, 10)
    np.testing.assert_allclose(maps.sum(-1), 1, rtol=1e-5)
    assert maps[0, :, :, 6:].max() < 1e-6  # padding gets no attention
    last = students.get(options.replace(attention_layers="last")).build(dims)
    assert last.output["attention"].shape[1] == 1
    with pytest.raises(ValueError, match="pair"):
        students.get(options).build(dataclasses.replace(dims, output="pair"))



def test_matched_heads_learn_their_own_teacher_head_groups(trained_run, tmp_path):
    recipes.RECIPES.register("attention_then_labels", attention_then_labels)
    trained, _ = trained_run
    shape = {**SHAPE, "num_attention_heads": 2}  # the tiny teacher's 2: one each
    config = tiny_config(os.path.dirname(trained.model_dir), **shape, baseline=False,
                         distil_epochs=2, strategy="default", recipe="attention_then_labels",
                         distil_attention=True, attention_layers="all", attention_heads="match",
                         model_dir=str(tmp_path / "model"))
    shutil.copytree(os.path.join(trained.model_dir, "teacher"),
                    os.path.join(config.model_dir, "teacher"))
    metrics = pipeline.run(config)
    folder = os.path.join(config.model_dir, "teacher_outputs")
    with open(os.path.join(folder, "stamp.json"), encoding="utf-8") as f:
        assert json.load(f)["attention_maps_per_layer"] == 2
    with np.load(os.path.join(folder, "val_00000.npz")) as chunk:
        maps, ids = chunk["out_attention"].astype(np.float32), chunk["input_ids"]
        weights = chunk["mask_tokens"].astype(np.float32)  # the attention stage's mask
    assert maps.shape[1:] == (4, 16, 16)  # 2 layers x 2 heads
    # The student's held-out loss against that of uniform attention over the real pieces,
    # about where an untrained student starts (its loss as Keras weighs it: mean over [B, T]).
    real = (ids != 0).sum(1)[:, np.newaxis, np.newaxis, np.newaxis]
    uniform = (losses.attention_kl(maps, np.where(maps > 0, 1.0 / real, 0.0).astype(np.float32))
               .numpy() * weights).mean()
    attention = next(s for s in metrics["stages"] if s["name"] == "attention")
    assert attention["best_val_loss"] < 0.25 * uniform
    ids = ids[:4]
    # Each stored map is one teacher head's, not their mean.
    hf_model = teacher_lib.load_teacher(os.path.join(trained.model_dir, "teacher"), 7,
                                        tasks.get("tagging").teacher_class("auto"))
    attentions = hf_model(input_ids=ids, attention_mask=(ids != 0).astype(np.int32),
                          output_attentions=True).attentions
    queries = (ids != 0)[:, :, np.newaxis]
    for layer in range(2):
        for head in range(2):
            np.testing.assert_allclose(maps[:4, 2 * layer + head],
                                       attentions[layer].numpy()[:, head] * queries, atol=2e-3)
    assert not np.allclose(maps[:4, 0], maps[:4, 1], atol=1e-2)  # the heads differ


def test_grouped_heads_average_consecutive_teacher_heads():
    attention = tf.random.uniform((2, 6, 5, 5), seed=1)
    heads = attention.numpy()
    np.testing.assert_allclose(teacher_lib.grouped_heads(attention, 6), heads, atol=1e-6)
    np.testing.assert_allclose(teacher_lib.grouped_heads(attention, 1),
                               heads.mean(1, keepdims=True), atol=1e-6)
    two = teacher_lib.grouped_heads(attention, 2).numpy()  # heads 0-2 and 3-5
    np.testing.assert_allclose(two[:, 0], heads[:, 0:3].mean(1), atol=1e-6)
    np.testing.assert_allclose(two[:, 1], heads[:, 3:6].mean(1), atol=1e-6)
    with pytest.raises(ValueError, match="6 attention heads cannot be shared among the "
                                         "student's 4"):
        teacher_lib.grouped_heads(attention, 4)


def test_student_matched_attention_output_is_every_head(tmp_path):
    options = tiny_config(tmp_path, **SHAPE, distil_attention=True, attention_layers="all",
                          attention_heads="match")
    dims = students.Dims(vocab_size=30, seq_len=10, num_labels=3, teacher_hidden_size=8)
    matched = students.get(options).build(dims)
    averaged = students.get(options.replace(attention_heads="average")).build(dims)
    averaged.set_weights(matched.get_weights())
    ids = np.random.default_rng(0).integers(2, 30, size=(2, 10)).astype(np.int32)
    heads = matched(ids)["attention"].numpy()
    assert heads.shape == (2, 2 * 4, 10, 10)  # 2 layers x 4 heads
    np.testing.assert_allclose(heads.sum(-1), 1, rtol=1e-5)
    means = averaged(ids)["attention"].numpy()
    for layer in range(2):
        np.testing.assert_allclose(means[:, layer], heads[:, 4 * layer:4 * layer + 4].mean(1),
                                   atol=1e-6)

# === Word embeddings, task transfer (--distil_mode=none), shorter inputs, checkpoints ===

def test_compressed_and_frozen_word_embeddings(tmp_path):
    options = tiny_config(tmp_path, **SHAPE, word_emb_dim=32)
    hf_model = teacher_lib.load_teacher(os.path.join(tmp_path, "tiny_bert"), 3,
                                        tasks.get("tagging").teacher_class("auto"))
    vocab = vocab_lib.StudentVocab.full(hf_model.config.vocab_size, 0, 1)
    table = pipeline.initial_word_embeddings(options, hf_model, vocab)
    assert table.shape == (len(vocab), 32)  # PCA of the teacher's to --hidden_size
    assert pipeline.initial_word_embeddings(
        options.replace(compress_word_embedding=False), hf_model, vocab) is None
    dims = students.Dims(len(vocab), 16, 3, 32)
    student = students.get(options.replace(freeze_word_embedding=True))
    model = student.build(dims, table)
    # As wide as the encoder: the projection starts as the identity.
    kernel, bias = model.get_layer("embedding_projection").get_weights()
    np.testing.assert_array_equal(kernel, np.eye(32))
    assert not bias.any()
    student.set_trainable(model, student.groups_top_down())
    assert not model.get_layer("word_embeddings").trainable
    assert model.get_layer("embedding_projection").trainable
    with pytest.raises(ValueError, match="freeze"):
        options.replace(freeze_word_embedding=True, compress_word_embedding=False).validate()


def test_task_transfer_fine_tunes_without_a_teacher(transformer_run, tmp_path, capsys):
    _, _, paths = transformer_run
    config = tiny_config(tmp_path, **SHAPE, word_emb_dim=32, distil_mode="none",
                         pt_student_checkpoint=paths["checkpoint"], freeze_word_embedding=True,
                         transfer_file="", distil_epochs=1, baseline=False, strategy="default")
    metrics = pipeline.run(config)
    assert metrics["teacher"] == {"trained": False}
    assert [s["name"] for s in metrics["stages"]] == ["labels"]
    assert metrics["student"]["mean_f1"] > 0.6
    assert "not trained" in capsys.readouterr().out
    # No teacher fine-tuned or run: its tokenizer alone, no transfer outputs.
    assert not teacher_lib.is_finetuned(os.path.join(config.model_dir, "teacher"))
    assert not os.path.exists(os.path.join(config.model_dir, "teacher_outputs"))
    student_dir = os.path.join(config.model_dir, "student")
    manifest = Manifest.read(config.model_dir)
    model = students.get(config).build(export.student_dims(manifest))
    model.load_weights(os.path.join(student_dir, "initial.h5"))
    initial = model.get_layer("word_embeddings").get_weights()[0]
    model.load_weights(os.path.join(student_dir, "best.h5"))
    np.testing.assert_array_equal(model.get_layer("word_embeddings").get_weights()[0], initial)
    # The export reads the student's pieces with the teacher's tokenizer.
    ids, _ = export.encode(manifest, tasks.get("tagging").read_labeled(config).test[:4])
    assert export.load_student(manifest).predict(ids, verbose=0).shape == (4, 16, 7)
    with pytest.raises(ValueError, match="--baseline"):
        config.replace(baseline=True).validate()


def test_exported_student_reads_any_length_up_to_its_positions(transformer_run):
    config, _, _ = transformer_run
    manifest = Manifest.read(config.model_dir)
    examples = tasks.get("tagging").read_labeled(manifest.options).test[:8]
    ids, _ = export.encode(manifest, examples, seq_len=8)
    short = export.load_student(manifest, seq_len=8).predict(ids, verbose=0)
    full = export.load_student(manifest).predict(np.pad(ids, [(0, 0), (0, 8)]), verbose=0)
    np.testing.assert_allclose(short, full[:, :8], atol=1e-5)
    with pytest.raises(ValueError, match="at most 16 pieces"):
        export.load_student(manifest, seq_len=17)


def test_checkpoint_of_a_bpe_teacher_carries_the_teachers_tokenizer(tmp_path):
    options = Options(**SHAPE, seq_len=16, model_dir=str(tmp_path / "model"))
    teacher_dir = synthetic.write_tiny_roberta(tmp_path / "model" / "teacher")
    tokenizer = teacher_lib.load_tokenizer(teacher_dir)
    # A student vocabulary of a few pieces: the others read as its unknown piece.
    kept = sorted(set(tokenizer(["alice met bob"])["input_ids"][0]) - {tokenizer.pad_token_id,
                                                                       tokenizer.unk_token_id})
    vocab = vocab_lib.StudentVocab(np.asarray([tokenizer.pad_token_id, tokenizer.unk_token_id]
                                              + kept, np.int32))
    manifest = Manifest(options, task="tagging", labels=["O"],
                        student_vocab=tokenizer.convert_ids_to_tokens(vocab.teacher_ids.tolist()),
                        teacher_hidden_size=32, teacher_vocab_size=len(tokenizer))
    model = students.get(options).build(students.Dims(len(vocab), 16, 1, 32))
    folder = transformer.save_checkpoint(model, manifest, str(tmp_path / "checkpoint"))
    loaded = transformers.AutoTokenizer.from_pretrained(folder)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    pieces = loaded(["alice met bob", "paris bob"], padding="max_length", max_length=16,
                    return_tensors="np")
    bert = transformers.TFBertModel.from_pretrained(folder)
    states = bert(input_ids=pieces["input_ids"], attention_mask=pieces["attention_mask"])
    encoder = tf_keras.Model(model.input, transformer.layer_states(model, 2))
    student_ids = vocab.to_student_ids(pieces["input_ids"], len(tokenizer))
    real = pieces["attention_mask"].astype(bool)
    np.testing.assert_allclose(states.last_hidden_state.numpy()[real],
                               encoder.predict(student_ids, verbose=0)[real], atol=1e-4)


def test_checkpoint_rows_of_pieces_the_student_lacks_follow_the_teachers_embeddings(tmp_path):
    options = Options(**SHAPE, seq_len=16, word_emb_dim=32, model_dir=str(tmp_path / "model"))
    teacher_dir = synthetic.write_tiny_roberta(tmp_path / "model" / "teacher")
    tokenizer = teacher_lib.load_tokenizer(teacher_dir)
    hf_model = teacher_lib.load_teacher(teacher_dir, 1, tasks.get("tagging").teacher_class("auto"))
    teacher_lib.save(hf_model, tokenizer, teacher_dir)  # as a fine-tuned teacher is saved
    teacher_table = teacher_lib.word_embeddings(hf_model)
    np.testing.assert_array_equal(teacher_lib.saved_word_embeddings(teacher_dir), teacher_table)
    # The student keeps 100 of the pieces; its rows, a linear function of the teacher's.
    vocab = vocab_lib.StudentVocab(np.asarray(
        [tokenizer.pad_token_id, tokenizer.unk_token_id] + list(range(5, 105)), np.int32))
    rng = np.random.default_rng(0)
    linear, offset = rng.normal(size=(32, 32)), rng.normal(size=32)
    model = students.get(options).build(students.Dims(len(vocab), 16, 1, 32))
    student_table = model.get_layer("word_embeddings").get_weights()[0]
    student_table[2:] = teacher_table[5:105] @ linear + offset
    model.get_layer("word_embeddings").set_weights([student_table])
    manifest = Manifest(options, task="tagging", labels=["O"],
                        student_vocab=tokenizer.convert_ids_to_tokens(vocab.teacher_ids.tolist()),
                        teacher_hidden_size=32, teacher_vocab_size=len(tokenizer))
    folder = transformer.save_checkpoint(model, manifest, str(tmp_path / "checkpoint"))
    bert = transformers.TFBertModel.from_pretrained(folder)
    rows = bert.get_input_embeddings().weight.numpy()  # the table times the projection
    kernel = model.get_layer("embedding_projection").get_weights()[0]
    np.testing.assert_allclose(rows[5:105], student_table[2:] @ kernel, atol=1e-4)  # its own
    lacking = np.arange(105, len(tokenizer))  # through the map the student's rows follow
    np.testing.assert_allclose(rows[lacking], (teacher_table[lacking] @ linear + offset) @ kernel,
                               atol=1e-3)
    assert np.abs(rows[lacking] - rows[tokenizer.unk_token_id]).max() > 0.1  # not unknown
    # Without a fine-tuned teacher the pieces it lacks read as unknown.
    table = transformer.checkpoint_table(student_table, vocab, len(tokenizer))
    np.testing.assert_array_equal(table[lacking], np.broadcast_to(
        student_table[1], (len(lacking), 32)))


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_soft_and_hard_modes_start_with_the_layer_wise_stages(mode):
    options = Options(task="t", **SHAPE, word_emb_dim=32, distil_mode=mode,
                      distil_attention=True, distil_multi_hidden_states=True)
    task, student = tasks.get("tagging"), students.get(options)
    stages = recipes.get(recipes.name_for(options))(task, student, options)
    stagewise = recipes.get("ours")(task, student, options.replace(distil_mode="stagewise"))
    assert [s.name for s in stages] == ["attention", "layers",
                                        {"soft": "teacher_logits", "hard": "teacher_labels"}[mode],
                                        "labels"]
    assert stages[:2] == stagewise[:2]
    plain = options.replace(distil_attention=False, distil_multi_hidden_states=False)
    assert len(recipes.get(mode)(task, student, plain)) == 2


def test_encoder_states_keep_apart_under_the_representation_loss():
    """The representation stage (masked MSE to teacher states with a shared component) on a
    student starting from informative embeddings: with Keras' default initialisation the
    encoder collapses the pieces towards one state (it predicts worse than the shared offset
    alone after these steps; with PAN-X and the e5 teacher the distilled student had dev F1
    0); BERT's initialisation learns the pieces' own states."""
    tf_keras.utils.set_random_seed(0)
    vocab, width, teacher_width, seq_len = 2000, 64, 96, 24
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(vocab, width)).astype(np.float32)
    # Teacher states: a linear function of the piece plus one offset shared by all pieces.
    targets = (0.2 * embeddings @ rng.normal(size=(width, teacher_width)) / np.sqrt(width)
               + 0.3 * rng.normal(size=(1, teacher_width))).astype(np.float32)
    options = Options(task="t", student="transformer", num_hidden_layers=2, hidden_size=width,
                      num_attention_heads=4, intermediate_size=4 * width, word_emb_dim=width,
                      seq_len=seq_len)
    model = students.get(options).build(students.Dims(vocab, seq_len, 7, teacher_width),
                                        embeddings=embeddings)
    encoder = tf_keras.Model(model.input, model.get_layer("projection").input)
    variables = [v for v in model.trainable_variables if not v.name.startswith("logits")]
    optimizer = tf_keras.optimizers.Adam(1e-3)

    def batch(size):
        ids = np.zeros((size, seq_len), np.int32)
        for row, length in zip(ids, rng.integers(5, seq_len, size)):
            row[:length] = rng.integers(1, vocab, length)
        return ids, targets[ids], (ids > 0).astype(np.float32)

    @tf.function
    def step(ids, wanted, mask):
        with tf.GradientTape() as tape:
            per_piece = losses.hidden_mse(wanted, model(ids, training=True)["hidden"])
            loss = tf.reduce_sum(per_piece * mask) / tf.reduce_sum(mask)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(150):
        step(*batch(32))
    ids, wanted, mask = batch(200)
    real = mask.astype(bool)
    states = encoder(ids).numpy()[real]
    assert states.std(0).mean() > 0.4  # Keras' default: 0.17
    hidden, wanted = model(ids)["hidden"].numpy()[real], wanted[real]
    assert ((hidden - wanted) ** 2).mean() < ((wanted - wanted.mean(0)) ** 2).mean()


def test_student_scores_compute_the_logits_alone():
    """Scoring a split computes no other output of the student: a transformer's layer and
    attention outputs over the PAN-X test split once took over 24 GB."""
    ids = tf_keras.Input((4,), dtype="int32")
    states = tf_keras.layers.Embedding(10, 3)(ids)

    def refuse(value):
        raise AssertionError("an output other than the logits was computed")

    layers = tf_keras.layers.Lambda(lambda x: tf.numpy_function(refuse, [x], tf.float32))(states)
    model = tf_keras.Model(ids, {"logits": tf_keras.layers.Dense(2)(states), "layers": layers})

    class ShapeTask:
        def score(self, logits, encoded, examples, labels):
            return {"shape": logits.shape}

    data = types.SimpleNamespace(encoded={"dev": None},
                                 labeled=types.SimpleNamespace(dev=None, labels=None))
    student_ids = np.arange(20, dtype=np.int32).reshape(5, 4) % 10
    scores = pipeline.student_score(ShapeTask(), model, student_ids, data, "dev", batch_size=2)
    assert scores == {"shape": (5, 4, 2)}


def test_student_scores_trace_the_logits_once(monkeypatch):
    """Scoring after every stage reuses one logits view of the student: a new view would trace
    its predict function again on each call, and the new weights must still be read."""
    ids = tf_keras.Input((4,), dtype="int32")
    model = tf_keras.Model(ids, {"logits": tf_keras.layers.Embedding(10, 2)(ids)})
    views = []
    build = students.output_model

    def counted_build(*args):
        views.append(build(*args))
        return views[-1]

    monkeypatch.setattr(students, "output_model", counted_build)

    class LogitsTask:
        def score(self, logits, encoded, examples, labels):
            return logits

    data = types.SimpleNamespace(encoded={"dev": None},
                                 labeled=types.SimpleNamespace(dev=None, labels=None))
    student_ids = np.arange(8, dtype=np.int32).reshape(2, 4)
    first = pipeline.student_score(LogitsTask(), model, student_ids, data, "dev", batch_size=2)
    model.set_weights([w + 1 for w in model.get_weights()])
    second = pipeline.student_score(LogitsTask(), model, student_ids, data, "dev", batch_size=2)
    assert len(views) == 1
    np.testing.assert_allclose(second, first + 1, rtol=1e-6)
