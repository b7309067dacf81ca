"""The benchmark scripts end to end: benchmarks/panx.py on a tiny PAN-X-format folder with a tiny
random BERT teacher, and the CoNLL adapter's derived task files."""

import json
import os
import random
import subprocess
import sys

import pytest
from absl import app

from benchmarks import conll
from benchmarks import harness
from benchmarks import panx
from xtremedistil import options as options_lib
from xtremedistil import synthetic
from xtremedistil import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANGUAGES = ("xx", "yy")
SIZES = {"train": 100, "dev": 20, "test": 20}  # train: 60 labeled, the next 40 transfer
# --languages=all: the languages with all three files; 50 transfer sentences asked, 40 there.
DATA_FLAGS = ["--languages=all", "--train_per_language=60", "--transfer_per_language=50",
              "--dev_per_language=20", "--test_per_language=0"]
TINY_RECIPE = ["--seq_len=16", "--word_emb_dim=16", "--bilstm_hidden_size=16", "--ft_epochs=3",
               "--ft_learning_rate=3e-3", "--ft_batch_size=8", "--distil_epochs=1",
               "--distil_batch_size=8", "--distil_learning_rate=3e-3"]


def write_columns(path, sentences):
    """PAN-X files: 'token<TAB>tag' a line, a blank line after every sentence."""
    with open(path, "w", encoding="utf-8") as f:
        for tokens, tags in sentences:
            f.write("".join(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags)) + "\n")


def run_panx(tmp, *extra):
    command = [sys.executable, "benchmarks/panx.py", f"--data_dir={tmp / 'panx'}",
               f"--pt_teacher_checkpoint={tmp / 'tiny_bert'}", f"--model_dir={tmp / 'model'}",
               f"--output={tmp / 'out' / 'panx.json'}"] + DATA_FLAGS + TINY_RECIPE + list(extra)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.fixture(scope="module")
def panx_run(tmp_path_factory):
    """One benchmarks/panx.py run: (tmp folder, completed process, summary JSON)."""
    tmp = tmp_path_factory.mktemp("panx")
    rng = random.Random(0)
    os.makedirs(tmp / "panx")
    for language in LANGUAGES:
        for split, count in SIZES.items():
            write_columns(tmp / "panx" / f"{split}-{language}.tsv",
                          [synthetic.synthetic_sentence(rng) for _ in range(count)])
    write_columns(tmp / "panx" / "train-zz.tsv", [synthetic.synthetic_sentence(rng)])  # no dev
    synthetic.write_tiny_bert(tmp / "tiny_bert")
    process = run_panx(tmp)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-5000:]
    with open(tmp / "out" / "panx.json", encoding="utf-8") as f:
        return tmp, process, json.load(f)


def test_panx_reports_every_language_with_consistent_scores(panx_run):
    tmp, process, summary = panx_run
    assert sorted(summary["languages"]) == sorted(LANGUAGES)
    for row in summary["languages"].values():
        for key in ("teacher_f1", "student_f1", "baseline_f1"):
            assert 0.0 <= row[key] <= 1.0
        expected = row["student_f1"] / row["teacher_f1"] if row["teacher_f1"] else 0.0
        assert row["retention"] == pytest.approx(expected)
    for who in ("teacher", "student", "baseline"):
        assert summary[f"mean_{who}_f1"] == pytest.approx(
            sum(r[f"{who}_f1"] for r in summary["languages"].values()) / len(LANGUAGES))
    assert summary["mean_retention"] == pytest.approx(
        summary["mean_student_f1"] / summary["mean_teacher_f1"]
        if summary["mean_teacher_f1"] else 0.0)
    assert summary["params"]["teacher"] > 0 and summary["params"]["student"] > 0
    assert summary["seconds"] > 0

    with open(tmp / "out" / "panx.md", encoding="utf-8") as f:
        table = f.read()
    assert "| **mean** |" in table
    for language in LANGUAGES:
        assert f"| {language} | {SIZES['test']} |" in table
    assert "Dev mean F1 (model selection): student " in table
    assert "| **total (benchmark)** |" in table
    assert "Fewer sentences than that: xx (transfer 40); yy (transfer 40)." in table
    # The RESULTS.md line: command, languages, the three F1s and retention in %.
    line = process.stdout.split("RESULTS.md line (fill in # and what changed):\n")[1]
    line = line.splitlines()[0]
    assert line.startswith("| # | `python benchmarks/panx.py --data_dir=")
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2] == ",".join(sorted(LANGUAGES))
    assert cells[3:7] == [f"{100 * summary[k]:.1f}" for k in (
        "mean_teacher_f1", "mean_student_f1", "mean_baseline_f1")] + [
        f"{100 * summary['mean_retention']:.1f}%"]
    assert " / " in cells[7] and "-" not in cells[7]  # dev scores from progress.json


def test_panx_writes_the_task_and_records_the_options(panx_run):
    tmp = panx_run[0]
    with open(tmp / "model" / "data" / "labels.tsv", encoding="utf-8") as f:
        assert f.read().split() == panx.PANX_TAGS
    with open(tmp / "model" / "data" / "transfer.txt", encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 40 * len(LANGUAGES)
    with open(tmp / "model" / "benchmark.json", encoding="utf-8") as f:
        recorded = json.load(f)
    assert set(recorded["recipe"]) == set(harness.RECIPE_OPTIONS)
    assert recorded["recipe"]["distil_epochs"] == 1
    assert recorded["recipe"]["student"] == options_lib.Options().student
    assert recorded["data"]["train_per_language"] == 60
    assert recorded["data"]["languages"] == list(LANGUAGES)


def test_panx_refuses_a_model_dir_with_other_options_and_a_teacher_from_other_data(panx_run):
    tmp = panx_run[0]
    process = run_panx(tmp, "--distil_epochs=2")
    assert process.returncode != 0
    assert "holds a run with other options" in process.stderr
    assert "distil_epochs" in process.stderr
    process = run_panx(tmp, f"--reuse_teacher_from={tmp / 'model'}", "--train_per_language=50",
                       f"--model_dir={tmp / 'other'}")
    assert process.returncode != 0
    assert "cannot reuse its teacher" in process.stderr
    assert "train_per_language" in process.stderr
    # A folder inside a run (a pipeline run of classification.py, say): said, no traceback.
    process = run_panx(tmp, f"--reuse_teacher_from={tmp / 'model' / 'data'}",
                       f"--model_dir={tmp / 'third'}")
    assert process.returncode != 0 and "Traceback" not in process.stderr
    assert "not a benchmark's --model_dir" in process.stderr


def test_conll_task_files_keep_misc(tmp_path):
    """CoNLL's four columns, IOB1, MISC: the derived task has MISC labels the pipeline reads."""
    lines = {"train": "EU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\n"
                      "call NN I-NP O\n\nPeter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\n",
             "testa": "BRUSSELS NNP I-NP I-LOC\nsays VBZ I-VP O\n",
             "testb": "Japanese JJ I-NP I-MISC\nfans NNS I-NP O\n"}
    folder = tmp_path / "conll"
    os.makedirs(folder)
    for suffix, text in lines.items():
        (folder / f"eng.{suffix}").write_text("-DOCSTART- -X- O O\n\n" + text, encoding="utf-8")
    splits, transfer, counts = conll.load_conll(folder, ["eng"], 0, 0, 0, 0)
    assert counts == {"en": {"train": 2, "dev": 1, "test": 1, "transfer": 2}}
    task_dir = tmp_path / "task"
    harness.write_task(task_dir, splits, transfer, conll.CONLL_TAGS)
    assert (task_dir / "labels.tsv").read_text(encoding="utf-8").split() == conll.CONLL_TAGS

    labeled = tasks.get("tagging").read_labeled(options_lib.Options(
        task=str(task_dir), data_format="xtremedistil"))
    assert "B-MISC" in labeled.labels and "I-MISC" in labeled.labels
    assert labeled.train[0].tags == ("B-ORG", "O", "B-MISC", "O")  # IOB1 -> IOB2
    assert labeled.test[0].tags == ("B-MISC", "O")
    assert {s.language for s in labeled.train} == {"en"}


def test_conll_transfer_files_add_unlabeled_sentences(tmp_path):
    """--transfer_files: sentences of column files (tags ignored) and plain text files join the
    transfer set after the CoNLL ones; a missing file is a usage error naming it."""
    folder = tmp_path / "conll"
    os.makedirs(folder)
    for suffix in ("train", "testa", "testb"):
        (folder / f"eng.{suffix}").write_text("Peter NNP I-NP I-PER\nsays VBZ I-VP O\n",
                                              encoding="utf-8")
    panx = tmp_path / "train-en.tsv"
    panx.write_text("Rome\tB-LOC\nfell\tO\n\nHe\tO\nleft\tO\n", encoding="utf-8")
    text = tmp_path / "more.txt"
    text.write_text("one more sentence\n", encoding="utf-8")
    _, transfer, counts = conll.load_conll(folder, ["eng"], 0, 0, 0, 0,
                                           transfer_files=[str(panx), str(text)])
    assert [s.tokens for s in transfer] == [("Peter", "says"), ("Rome", "fell"), ("He", "left"),
                                            ("one", "more", "sentence")]
    assert counts["extra transfer"] == {str(panx): 2, str(text): 1}
    with pytest.raises(app.UsageError, match="missing.txt"):
        conll.load_conll(folder, ["eng"], 0, 0, 0, 0,
                         transfer_files=[str(tmp_path / "missing.txt")])
