"""The recipes 'ours' and 'paper' (the original code's choices): every option that switches one
difference changes what it should, the paper preset sets them and leaves given options alone,
and --recipe=paper trains end to end."""

import json
import os
import time

import numpy as np
import pytest
from absl import flags

from tests.conftest import tiny_config
from xtremedistil import options as options_lib
from xtremedistil import pipeline, recipes, schedules, students, tasks, training
from xtremedistil.data import Sentence
from xtremedistil.options import Options
from xtremedistil.students import vocab as vocab_lib

DIMS = students.Dims(vocab_size=12, seq_len=6, num_labels=5, teacher_hidden_size=8)


# === The paper preset ===

def test_paper_preset_sets_the_original_choices_and_given_options_win():
    paper = recipes.apply_preset(Options(recipe="paper"))
    assert (paper.teacher_layer, paper.head_init, paper.student_dropout, paper.dropout_rate,
            paper.lr_schedule, paper.patience, paper.distil_epochs, paper.label_stage_sizes,
            paper.label_stage_monitor, paper.pca_rescale, paper.teacher_recipe,
            paper.ft_learning_rate, paper.student_vocab) == (
        6, "random", "paper", 0.2, "sgdr", 10, 80, "fine_tuning", "accuracy", False, "paper",
        1e-5, "seen")
    # Given options keep their values, also when that value is Options' default.
    given = recipes.apply_preset(Options(recipe="paper", distil_epochs=3, patience=2),
                                 given={"distil_epochs", "patience"})
    assert (given.distil_epochs, given.patience, given.lr_schedule) == (3, 2, "sgdr")
    # Built in code (given=None): options that differ from the defaults count as given.
    in_code = recipes.apply_preset(Options(recipe="paper", distil_epochs=3, patience=2))
    assert (in_code.distil_epochs, in_code.patience) == (3, 10)
    # 'ours' (and its old name) presets nothing: today's defaults.
    for name in ("ours", "xtremedistil"):
        assert recipes.apply_preset(Options(recipe=name)) == Options(recipe=name)
    assert Options().recipe == "ours"
    assert recipes.get("paper")  # registered; its stages are ours'
    assert {f.name for f in options_lib.fields()} >= set(recipes.preset("paper"))


def test_the_transformer_student_chooses_its_learning_rate_unless_given():
    rate = recipes.apply_preset(Options(student="transformer")).distil_learning_rate
    assert rate == 3e-4 != Options().distil_learning_rate
    assert recipes.apply_preset(Options()).distil_learning_rate == 1e-3  # the BiLSTM: default
    given = recipes.apply_preset(Options(student="transformer"), given={"distil_learning_rate"})
    assert given.distil_learning_rate == 1e-3
    # Under 'paper' too (it leaves the rate), and in a benchmark's recipe options.
    paper = recipes.apply_preset(Options(student="transformer", recipe="paper"))
    assert (paper.distil_learning_rate, paper.lr_schedule) == (3e-4, "sgdr")
    from benchmarks import harness, panx  # pylint: disable=import-outside-toplevel
    flag_values = flags.FlagValues()
    options_lib.define_flags(flag_values, names=harness.RECIPE_OPTIONS,
                             defaults=panx.RECIPE_DEFAULTS)
    flag_values(["panx.py", "--student=transformer"])
    assert harness.recipe_options(flag_values)["distil_learning_rate"] == 3e-4


def test_given_flags_are_those_on_the_command_line():
    flag_values = flags.FlagValues()
    options_lib.define_flags(flag_values)
    flag_values(["prog", "--recipe=paper", "--patience=2"])
    assert options_lib.given_flags(flag_values) == {"recipe", "patience"}
    options = options_lib.from_flags(flag_values)
    paper = recipes.apply_preset(options, options_lib.given_flags(flag_values))
    assert (paper.patience, paper.distil_epochs) == (2, 80)


def test_benchmark_recipe_options_keep_the_benchmark_sizes_under_paper():
    from benchmarks import harness, panx  # pylint: disable=import-outside-toplevel
    flag_values = flags.FlagValues()
    options_lib.define_flags(flag_values, names=harness.RECIPE_OPTIONS,
                             defaults=panx.RECIPE_DEFAULTS)
    flag_values(["panx.py", "--recipe=paper", "--patience=2"])
    recipe = harness.recipe_options(flag_values)
    # Given (patience) and sized by the benchmark (ft_epochs 2, distil_epochs 3) win.
    assert (recipe["patience"], recipe["ft_epochs"], recipe["distil_epochs"]) == (2, 2, 3)
    assert (recipe["lr_schedule"], recipe["bilstm_hidden_size"], recipe["teacher_layer"]) == (
        "sgdr", 600, 6)
    flag_values.unparse_flags()
    flag_values(["panx.py"])
    assert harness.recipe_options(flag_values)["lr_schedule"] == "constant"


# === One option per difference ===

def _lstm(model):
    return model.get_layer("bilstm").forward_layer


def test_student_dropout_paper_drops_out_where_the_original_does():
    ours = students.get(Options(word_emb_dim=4, bilstm_hidden_size=3)).build(DIMS)
    assert [l.name for l in ours.layers if "dropout" in l.name] == ["dropout"]
    assert (_lstm(ours).dropout, _lstm(ours).recurrent_dropout) == (0, 0)

    options = Options(word_emb_dim=4, bilstm_hidden_size=3, student_dropout="paper",
                      dropout_rate=0.2)
    paper = students.get(options).build(DIMS)
    dropouts = {l.name: l.rate for l in paper.layers if "dropout" in l.name}
    assert dropouts == {"embedding_dropout": 0.2, "dropout": 0.2, "output_dropout": 0.2}
    assert (_lstm(paper).dropout, _lstm(paper).recurrent_dropout) == (0.2, 0.2)
    # Before the output layer only: the 'hidden' output (stage 1's target) has none.
    assert paper.get_layer("logits").input.node.layer.name == "output_dropout"
    assert paper.get_layer("hidden").input.node.layer.name == "projection"
    # The static-batch (TFLite) build has no LSTM dropout, the same weights and outputs.
    static = students.get(options).build(DIMS, batch_size=1)
    assert (_lstm(static).dropout, _lstm(static).recurrent_dropout) == (0, 0)
    static.set_weights(paper.get_weights())
    ids = np.random.default_rng(0).integers(0, DIMS.vocab_size, (1, DIMS.seq_len))
    np.testing.assert_allclose(static(ids)["logits"], paper(ids, training=False)["logits"],
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(paper(ids, training=True)["logits"], paper(ids)["logits"])


def test_paper_dropout_student_converts_to_fused_tflite(tmp_path):
    from xtremedistil.export import tflite  # pylint: disable=import-outside-toplevel
    options = Options(word_emb_dim=4, bilstm_hidden_size=3, student_dropout="paper",
                      dropout_rate=0.2)
    static = students.output_model(students.get(options).build(DIMS, batch_size=1), "logits")
    folder = tflite.save_static_batch_student(static, DIMS.seq_len, str(tmp_path / "static"))
    interpreter = tflite.tflite_interpreter(model_content=tflite.convert_tflite(folder, "fp32"))
    ops = tflite.tflite_ops(interpreter)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and "WHILE" not in ops
    ids = np.random.default_rng(0).integers(0, DIMS.vocab_size, (2, DIMS.seq_len))
    np.testing.assert_allclose(tflite.tflite_logits(interpreter, ids),
                               static.predict(ids, batch_size=1, verbose=0), atol=1e-5)


def test_lr_schedules_cosine_and_the_originals_sgdr():
    assert schedules.student("constant", 1e-3, 10, 7) == 1e-3
    cosine = schedules.student("cosine", 1e-3, 10, 7)  # 70 steps
    rates = [float(cosine(step)) for step in range(71)]
    assert rates[0] == pytest.approx(1e-3)
    assert rates[-1] == pytest.approx(1e-8, rel=1e-3)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    # The original's per epoch: down to 1e-8 over 50 epochs, then a restart at 0.97 x 1e-3.
    sgdr = schedules.student("sgdr", 1e-3, 80, 4)
    by_epoch = {epoch: float(sgdr(epoch * 4 + 3)) for epoch in (0, 25, 50, 51, 79)}
    assert by_epoch[0] == pytest.approx(1e-3) and float(sgdr(0)) == by_epoch[0]
    assert by_epoch[25] == pytest.approx(0.5e-3, rel=1e-4)
    assert by_epoch[50] == pytest.approx(1e-8, rel=1e-3)
    assert by_epoch[51] == pytest.approx(0.97e-3)
    assert by_epoch[0] > by_epoch[25] > by_epoch[50] < by_epoch[79] < by_epoch[51]
    # The original teacher's: warm-up over 10 epochs to the peak, then decay toward peak / 100.
    teacher = schedules.paper_teacher(1e-5, 32, 5)
    assert float(teacher(0)) == pytest.approx(1e-6)
    assert float(teacher(9 * 5)) == pytest.approx(1e-5)
    assert 1e-7 < float(teacher(31 * 5)) < float(teacher(10 * 5)) < 1e-5


def test_pca_rescale_false_leaves_the_pca_output_unscaled():
    rng = np.random.default_rng(0)
    teacher_embeddings = 5 * rng.normal(size=(30, 6))
    ids = np.arange(30)
    rescaled = vocab_lib.factorise_embeddings(teacher_embeddings, ids, 6)
    raw = vocab_lib.factorise_embeddings(teacher_embeddings, ids, 6, rescale=False)
    assert float(rescaled.std()) == pytest.approx(1, abs=1e-3)
    assert float(raw.std()) > 3
    # All components kept: the PCA output is the centred embeddings rotated, distances kept.
    centred = teacher_embeddings - teacher_embeddings.mean(axis=0)
    np.testing.assert_allclose(np.linalg.norm(raw, axis=1), np.linalg.norm(centred, axis=1),
                               rtol=1e-4)
    np.testing.assert_allclose(rescaled * raw.std(), raw, rtol=1e-3, atol=1e-4)


def test_teacher_paper_recipe_weights_every_real_piece(tiny_tokenizer):
    labels = ["O", "B-PER", "I-PER"]
    sentence = Sentence(("zorro", "met", "alice"), ("B-PER", "O", "B-PER"), "xx", "test")
    task = tasks.get("tagging")
    encoded = task.encode([sentence], tiny_tokenizer, 12, labels)
    pieces = tiny_tokenizer.convert_ids_to_tokens(encoded.input_ids[0].tolist())
    assert pieces[:9] == ["[CLS]", "z", "##o", "##r", "##r", "##o", "met", "alice", "[SEP]"]
    ours_ids, ours_weights = task.teacher_targets(encoded)
    assert ours_weights[0].tolist() == [0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    ids, weights = task.teacher_targets(encoded, every_piece=True)
    assert weights[0].tolist() == [1] * 9 + [0] * 3
    assert [labels[i] for i in ids[0][:9]] == ["O", "B-PER"] + ["I-PER"] * 4 + [
        "O", "B-PER", "O"]
    assert ids[0][ours_weights[0] > 0].tolist() == ours_ids[0][ours_weights[0] > 0].tolist()


def test_keep_best_on_accuracy_keeps_the_highest(tmp_path):
    keep = training.KeepBest(1, str(tmp_path / "best.h5"), monitor="val_accuracy",
                             higher_is_better=True)
    keep.set_model(students.get(Options(word_emb_dim=2, bilstm_hidden_size=2)).build(DIMS))
    keep.on_epoch_end(0, {"val_accuracy": 0.5})
    keep.on_epoch_end(1, {"val_accuracy": 0.7})
    assert keep.best == 0.7 and not keep.model.stop_training
    keep.on_epoch_end(2, {"val_accuracy": 0.6})
    assert keep.best == 0.7 and keep.model.stop_training


# === --recipe=paper end to end ===

def test_paper_recipe_trains_end_to_end(tmp_path):
    started = time.time()
    # The preset sets the options left at Options' defaults; the tiny task keeps its own sizes
    # (teacher_layer 2: its teacher's last, so that head_init=random shows). One replica keeps
    # the 9 stages under 2 minutes.
    config = tiny_config(tmp_path, recipe="paper", teacher_layer=2, ft_epochs=8, patience=3,
                         distil_epochs=2, baseline=False, strategy="default")
    metrics = pipeline.run(config)
    assert metrics["recipe"] == "paper"
    assert metrics["student"]["mean_f1"] > 0.5, metrics["student"]
    with open(os.path.join(config.model_dir, "config.json"), encoding="utf-8") as f:
        used = Options.from_dict(json.load(f)["options"])
    assert (used.teacher_recipe, used.student_dropout, used.head_init, used.lr_schedule,
            used.label_stage_sizes, used.label_stage_monitor, used.pca_rescale,
            used.student_vocab, used.patience, used.distil_epochs) == (
        "paper", "paper", "random", "sgdr", "fine_tuning", "accuracy", False, "seen", 3, 2)
    stages = {s["name"]: s for s in metrics["stages"]}
    assert stages["labels_1"]["best_val_accuracy"] > 0.5
    assert stages["labels_1"]["best_val_loss"] is None
    assert stages["logits_1"]["best_val_loss"] is not None
    # head_init=random: the output layer did not start as the teacher's classifier.
    manifest = pipeline.manifest_lib.Manifest.read(config.model_dir)
    model = students.get(manifest.options).build(students.Dims(
        len(manifest.student_vocab), config.seq_len, len(manifest.labels),
        manifest.teacher_hidden_size))
    model.load_weights(os.path.join(config.model_dir, "student", "initial.h5"))
    teacher = pipeline.teacher_lib.load_teacher(manifest.teacher_dir, len(manifest.labels))
    assert not np.allclose(model.get_layer("logits").get_weights()[0],
                           teacher.classifier.get_weights()[0])
    print(f"paper recipe end to end: {time.time() - started:.0f} s")
