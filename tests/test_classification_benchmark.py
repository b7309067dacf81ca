"""benchmarks/classification.py without training: the labeled/transfer split, the derived task
files (read back by the library's readers), the summary JSON, Markdown and RESULTS.md line from
hand-made metrics, the transfer sweep's table and plot, the teacher sharing between runs, and
the demo sets of data/make_classification_demo.py."""

import json
import os
import subprocess
import sys
import types

import pytest
from absl import app

from benchmarks import classification
from xtremedistil import data as data_lib
from xtremedistil import options as options_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "data", "demo_classification")
PAIRS = os.path.join(ROOT, "data", "demo_pairs")


def example(text, label="positive", language="en", text_b=None, line=1):
    return data_lib.TextExample(text, text_b, label, language, f"t.tsv:{line}")


def train_set(n):
    return [example(f"sentence number {i}", ("positive", "negative")[i % 2], line=i)
            for i in range(n)]


# === Splitting train ===

def test_split_takes_the_first_labeled_then_the_next_transfer_without_labels():
    train = train_set(10)
    labeled, transfer = classification.split_train(train, 4, 3)
    assert labeled == train[:4]
    assert [e.text for e in transfer] == [e.text for e in train[4:7]]
    assert all(e.label is None for e in transfer)
    assert [e.language for e in transfer] == ["en"] * 3


def test_split_minus_one_takes_the_rest_and_zero_the_labeled_texts():
    train = train_set(10)
    _, rest = classification.split_train(train, 4, -1)
    assert [e.text for e in rest] == [e.text for e in train[4:]]
    _, itself = classification.split_train(train, 4, 0)
    assert [e.text for e in itself] == [e.text for e in train[:4]]
    assert all(e.label is None for e in itself)
    _, short = classification.split_train(train, 4, 100)  # fewer than asked: what there is
    assert len(short) == 6


@pytest.mark.parametrize("labeled, transfer, message", [
    (0, -1, "--labeled=0"), (11, -1, "--labeled=11"), (4, -2, "--transfer=-2"),
    (9, -1, "at least 2"), (1, 0, "at least 2")])
def test_split_refuses_sizes_no_run_can_use(labeled, transfer, message):
    with pytest.raises(ValueError, match=message):
        classification.split_train(train_set(10), labeled, transfer)


# === Derived files ===

def test_example_line_keeps_the_language_prefix_and_drops_it_for_the_default():
    assert classification.example_line(example("Great film.")) == "Great film.\ten:positive"
    assert classification.example_line(
        example("a", "match", data_lib.DEFAULT_LANGUAGE, text_b="b")) == "a\tb\tmatch"
    assert classification.example_line(example("Great film.", label=None)) == "Great film."
    with pytest.raises(ValueError, match="t.tsv:1"):
        classification.example_line(example("tab\tinside"))


@pytest.mark.parametrize("folder, pairwise", [(DEMO, False), (PAIRS, True)])
def test_derived_files_read_back_as_the_source_split(tmp_path, folder, pairwise):
    splits, labels = classification.read_folder(folder, pairwise)
    labeled, transfer = classification.split_train(splits["train"], 150, 100)
    derived = {"train": labeled, "dev": classification.first(splits["dev"], 0),
               "test": classification.first(splits["test"], 50)}
    classification.write_task(tmp_path, derived, transfer, labels)

    assert data_lib.read_labels(tmp_path / "labels.tsv") == labels
    for split, expected in derived.items():
        read = data_lib.read_text_file(tmp_path / f"{split}.tsv", pairwise=pairwise,
                                       labels=labels).sentences
        assert [(e.text, e.text_b, e.label, e.language) for e in read] == [
            (e.text, e.text_b, e.label, e.language) for e in expected]
    assert len(derived["test"]) == 50 and len(derived["dev"]) == len(splits["dev"])
    read = list(data_lib.iter_text_transfer_file(tmp_path / "transfer.txt", pairwise))
    assert [(e.text, e.text_b) for e in read] == [
        (e.text, e.text_b) for e in splits["train"][150:250]]
    with open(tmp_path / "train.tsv", encoding="utf-8") as f:  # byte for byte: first lines
        written = f.read().splitlines()
    with open(os.path.join(folder, "train.tsv"), encoding="utf-8") as f:
        assert written == f.read().splitlines()[:150]


def test_pair_file_read_as_single_sentences_names_the_flag():
    with pytest.raises(app.UsageError, match="give --pairwise"):
        classification.read_folder(PAIRS, pairwise=False)


def test_run_options_are_valid_classification_options(tmp_path):
    settings = {"seq_len": 48, "do_pairwise": True, "student_vocab": "seen"}
    options = classification.run_options(str(tmp_path / "data"), str(tmp_path / "hard"), "hard",
                                          True, settings).validate()
    assert (options.do_NER, options.do_pairwise, options.distil_mode, options.baseline) == (
        False, True, "hard", True)
    assert options.transfer_file == str(tmp_path / "data" / "transfer.txt")
    assert options.seq_len == 48 and options.model_dir == str(tmp_path / "hard")


def test_every_option_is_a_flag_or_set_per_run():
    names = {f.name for f in options_lib.fields()}
    covered = (set(classification.PASS_THROUGH) | set(classification.READ_OPTIONS)
               | set(classification.SET_PER_RUN) | set(classification.harness.RECIPE_OPTIONS)
               | set(classification.harness.RUN_OPTIONS))
    assert names == covered
    assert not set(classification.PASS_THROUGH) & set(classification.SET_PER_RUN)
    assert not set(classification.PASS_THROUGH) & set(classification.harness.RUN_OPTIONS)


# === Report from hand-made metrics ===

def scores(accuracy, f1, languages=("en", "es")):
    return {"per_language": {l: {"accuracy": accuracy, "macro_f1": f1, "examples": 10}
                             for l in languages},
            "mean_accuracy": accuracy, "mean_macro_f1": f1}


def fake_metrics(student_accuracy, baseline=None, student_params=1_000_000):
    metrics = {"task": "classification", "teacher": scores(0.8, 0.78),
               "student": scores(student_accuracy, student_accuracy - 0.02),
               "params": {"teacher": 100_000_000, "student": student_params},
               "stages": [{"name": "teacher_fine_tuning", "seconds": 30.0},
                          {"name": "labels", "seconds": 5.0}],
               "seconds": 60.0}
    if baseline is not None:
        metrics["baseline"] = scores(baseline, baseline - 0.1)
    return metrics


@pytest.fixture(name="summary")
def fixture_summary():
    metrics = {"hard": fake_metrics(0.72, baseline=0.6), "soft": fake_metrics(0.76),
               "stagewise": fake_metrics(0.8, student_params=500_000)}
    summary = classification.summarise("demo", 200, 1000, metrics, 123.45)
    return summary, metrics


def test_summary_json_has_the_issue_schema_and_consistent_numbers(summary):
    summary, _ = summary
    assert {"task", "labeled", "transfer", "teacher", "baseline", "modes", "params",
            "seconds"} <= set(summary)
    assert (summary["task"], summary["labeled"], summary["transfer"]) == ("demo", 200, 1000)
    assert summary["teacher"]["accuracy"] == 0.8 and summary["teacher"]["macro_f1"] == 0.78
    assert summary["baseline"]["accuracy"] == 0.6
    assert summary["baseline"]["retention"] == pytest.approx(0.75)
    assert list(summary["modes"]) == ["hard", "soft", "stagewise"]
    hard, stagewise = summary["modes"]["hard"], summary["modes"]["stagewise"]
    assert set(hard) >= {"accuracy", "macro_f1", "retention", "seconds"}
    assert hard["retention"] == pytest.approx(0.72 / 0.8)
    assert stagewise["retention"] == pytest.approx(1.0)
    assert stagewise["compression"] == pytest.approx(200.0)
    assert stagewise["compression_bert_base"] == pytest.approx(220.0)
    assert summary["params"] == {"teacher": 100_000_000, "student": 1_000_000}
    assert summary["seconds"] == 123.5
    json.dumps(summary)  # serialisable


def test_markdown_and_results_line(summary):
    summary, metrics = summary
    dev = {"hard": {"student": 0.7, "baseline": 0.55}, "soft": {"student": 0.74}, "stagewise": {}}
    table = classification.markdown(summary, metrics, dev, "python x.py", "Sizes.")
    assert "| student, hard | 72.0 | 70.0 | 90.0% | 1,000,000 | 100.0 | 110.0 | 1.0 |" in table
    assert "| baseline (labels only) | 60.0 | 50.0 | 75.0% |" in table
    assert "| en | 10 | 80.0 | 60.0 | 72.0 | 76.0 | 80.0 |" in table  # per-language table
    assert "hard 70.0, soft 74.0, stagewise -; baseline 55.0." in table
    line = classification.results_line(summary, dev, "python x.py")
    with open(os.path.join(ROOT, "benchmarks", "RESULTS.md"), encoding="utf-8") as f:
        header = next(l for l in f if l.startswith("| # |"))
    assert line.count(" | ") == header.count(" | ")  # the RESULTS.md columns
    cells = [c.strip() for c in line.strip("|").split(" | ")]
    assert cells[3] == "80.0" and cells[4] == "hard 72.0 / soft 76.0 / stagewise 80.0"
    assert cells[5] == "60.0" and cells[7] == "70.0 / 74.0 / - / 55.0"


# === Transfer sweep ===

def test_sweep_sizes_cap_and_drop_sizes_that_use_the_same_examples():
    assert classification.sweep_sizes(["0", "1000", "4000", "-1"], 3000) == [
        (0, 0), (1000, 1000), (4000, 3000)]
    assert classification.sweep_sizes(["-1", "500"], 300) == [(-1, 300)]
    with pytest.raises(ValueError):
        classification.sweep_sizes(["-2"], 10)


def test_sweep_table_and_plot(tmp_path):
    points = [{"transfer": t, "examples": n, "mode": m, "accuracy": a, "macro_f1": a - 0.01,
               "seconds": 10.0}
              for t, n, m, a in [(0, 0, "hard", 0.6), (0, 0, "stagewise", 0.62),
                                 (1000, 1000, "hard", 0.7), (1000, 1000, "stagewise", 0.75)]]
    teacher, baseline = (classification.scores(s) for s in (scores(0.8, 0.79), scores(0.55, 0.5)))
    curve = classification.sweep_summary("demo", 200, points, teacher, baseline,
                                         {"teacher": 1, "student": 1}, 9.0)
    assert curve["modes"] == ["hard", "stagewise"]
    assert [p["retention"] for p in curve["points"]] == pytest.approx(
        [0.75, 0.775, 0.875, 0.9375])
    assert curve["baseline"] == {"accuracy": 0.55, "macro_f1": 0.5}
    table = classification.sweep_markdown(curve, "python x.py")
    assert "| 0 (the 200 labeled texts) | 60.0 / 59.0 | 62.0 / 61.0 |" in table
    assert "| 1,000 | 70.0 / 69.0 | 75.0 / 74.0 |" in table
    assert table.index("| 0 (") < table.index("| 1,000 |")
    assert "Teacher 80.0 / 79.0; baseline (labels only) 55.0 / 50.0." in table
    path = tmp_path / "curve.png"
    classification.write_plot(curve, path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


# === Sharing the teacher between runs ===

def fake_module(monkeypatch, name, **attributes):
    """Replaces xtremedistil.<name> (importing the real one loads transformers)."""
    import xtremedistil  # pylint: disable=import-outside-toplevel
    fake = types.SimpleNamespace(**attributes)
    monkeypatch.setitem(sys.modules, f"xtremedistil.{name}", fake)
    monkeypatch.setattr(xtremedistil, name, fake, raising=False)
    return fake


@pytest.fixture(name="fake_teacher")
def fixture_fake_teacher(monkeypatch):
    # The real check: teacher.is_finetuned, tf_model.h5 exists.
    return fake_module(monkeypatch, "teacher", is_finetuned=lambda folder: os.path.exists(
        os.path.join(folder, "tf_model.h5")))


def test_share_teacher_links_a_fine_tuned_teacher_once(tmp_path, fake_teacher):
    del fake_teacher
    source, target = tmp_path / "hard", tmp_path / "soft"
    (source / "teacher").mkdir(parents=True)
    assert not classification.share_teacher(source, target)  # not fine-tuned yet
    (source / "teacher" / "tf_model.h5").write_bytes(b"weights")
    (source / "teacher_outputs").mkdir()
    (source / "teacher_outputs" / "stamp.json").write_text("{}")
    assert classification.share_teacher(source, target)
    assert os.path.samefile(source / "teacher" / "tf_model.h5", target / "teacher" / "tf_model.h5")
    assert not (target / "teacher_outputs").exists()
    classification.share_outputs(source, target)
    assert (target / "teacher_outputs" / "stamp.json").read_text() == "{}"
    assert not classification.share_teacher(source, target)  # has its own: left alone


# === The script's flags and the demo data ===

def test_missing_data_dir_is_one_clear_line():
    process = subprocess.run(
        [sys.executable, "benchmarks/classification.py", "--data_dir=no/such/folder"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode != 0
    message = [l for l in (process.stdout + process.stderr).splitlines() if "no/such" in l]
    assert len(message) == 1 and "--data_dir=data/demo_classification" in message[0]


def test_demo_sets_regenerate_byte_for_byte(tmp_path):
    folders = {"demo_classification": DEMO, "demo_pairs": PAIRS}
    copy = tmp_path / "data"
    copy.mkdir()
    script = os.path.join(ROOT, "data", "make_classification_demo.py")
    (copy / "make_classification_demo.py").write_bytes(open(script, "rb").read())
    subprocess.run([sys.executable, str(copy / "make_classification_demo.py"), "-q"],
                   check=True, timeout=60, env={**os.environ, "PYTHONHASHSEED": "7"})
    for name, folder in folders.items():
        files = sorted(os.listdir(folder))
        assert files == ["dev.tsv", "labels.tsv", "test.tsv", "train.tsv", "transfer.txt"]
        for file in files:
            with open(os.path.join(folder, file), "rb") as f, open(copy / name / file, "rb") as g:
                assert f.read() == g.read(), f"{name}/{file} differs from a fresh generation"


def test_one_teacher_fine_tuned_one_baseline_and_stagewise_outputs_shared(
        tmp_path, monkeypatch, fake_teacher):
    """run_modes with a pipeline that records what each run found in its model_dir: stagewise
    runs first, and the others find its stored outputs."""
    del fake_teacher
    runs = []

    def run(options, given=None):
        assert given == options.to_dict()
        teacher = os.path.join(options.model_dir, "teacher")
        fine_tunes = not os.path.exists(os.path.join(teacher, "tf_model.h5"))
        os.makedirs(teacher, exist_ok=True)
        with open(os.path.join(teacher, "tf_model.h5"), "a", encoding="utf-8"):
            pass
        outputs = os.path.join(options.model_dir, "teacher_outputs")
        found = sorted(os.listdir(outputs)) if os.path.isdir(outputs) else []
        os.makedirs(outputs, exist_ok=True)
        with open(os.path.join(outputs, f"{options.distil_mode}.npz"), "w", encoding="utf-8"):
            pass
        runs.append((options.distil_mode, options.baseline, fine_tunes, found))
        return fake_metrics(0.7, baseline=0.6 if options.baseline else None)

    fake_module(monkeypatch, "pipeline", run=run)
    settings = {"seq_len": 16}
    metrics, dev = classification.run_modes(str(tmp_path), str(tmp_path / "data"),
                                            ["hard", "stagewise", "soft"], settings)
    assert runs == [("stagewise", True, True, []), ("hard", False, False, ["stagewise.npz"]),
                    ("soft", False, False, ["stagewise.npz"])]
    assert list(metrics) == ["hard", "stagewise", "soft"] and dev == {m: {} for m in metrics}
    assert os.path.samefile(tmp_path / "stagewise" / "teacher" / "tf_model.h5",
                            tmp_path / "teacher" / "tf_model.h5")
    summary = classification.summarise("t", 1, 2, metrics, 1.0)
    assert summary["baseline"]["accuracy"] == 0.6


def test_a_teacher_is_reused_from_a_run_stopped_in_its_first_mode(tmp_path, fake_teacher,
                                                                   monkeypatch):
    """classification.py links its teacher up to --model_dir only after the first mode's run:
    --reuse_teacher_from finds it in <model_dir>/<mode>/ before then, with its outputs."""
    del fake_teacher
    from benchmarks import harness  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(harness, "FLAGS", types.SimpleNamespace(overwrite=False))
    recipe = {name: getattr(options_lib.Options(), name) for name in harness.RECIPE_OPTIONS}
    manifest = {"data": {"labeled": 10, "transfer_examples": 20}, "recipe": recipe}
    source, target = tmp_path / "stopped", tmp_path / "next"
    harness.prepare_model_dir(str(source), manifest, "")
    (source / "soft" / "teacher").mkdir(parents=True)
    with pytest.raises(app.UsageError, match="no fine-tuned teacher"):
        harness.prepare_model_dir(str(target), manifest, str(source))
    (source / "soft" / "teacher" / "tf_model.h5").write_bytes(b"weights")
    (source / "soft" / "teacher_outputs").mkdir()
    (source / "soft" / "teacher_outputs" / "stamp.json").write_text("{}")
    harness.prepare_model_dir(str(target), manifest, str(source))
    assert (target / "teacher" / "tf_model.h5").read_bytes() == b"weights"
    assert (target / "teacher_outputs" / "stamp.json").read_text() == "{}"
    # Linked, not copied: stored outputs can be tens of GB.
    assert os.path.samefile(target / "teacher_outputs" / "stamp.json",
                            source / "soft" / "teacher_outputs" / "stamp.json")
