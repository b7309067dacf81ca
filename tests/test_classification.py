"""Sentence and sentence-pair classification: every distillation mode learns an easy synthetic
task from a tiny teacher; the pooled student ignores padding; pairs carry segment ids; bad
input names file and line."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import tiny_config
from xtremedistil import options as options_lib
from xtremedistil import pipeline, students, tasks
from xtremedistil.data import DataError, TextExample
from xtremedistil.students import bilstm
from xtremedistil.synthetic import write_classification_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each mode runs once, on one of the tasks (the recipes do not depend on the task): a
# stagewise run per task would double the slowest fixture of the suite.
MODES = {"classification": ("stagewise", "soft"), "pairs": ("hard",)}
# The stage after which the student has learnt from the teacher alone, before any label.
TRANSFER_ONLY_STAGE = {"stagewise": "logits_4", "hard": "teacher_labels",
                       "soft": "teacher_logits"}
CHANCE = {"classification": 1 / 3, "pairs": 0.5}


def classification_config(tmp, pairwise, mode, **overrides):
    task = tmp / "task"
    if not task.exists():
        write_classification_task(task, pairwise=pairwise, transfer=400)
    return tiny_config(tmp, task=str(task), transfer_file=str(task / "transfer.txt"),
                       do_NER=False, do_pairwise=pairwise, distil_mode=mode,
                       model_dir=str(tmp / mode), strategy="default", distil_epochs=2,
                       seq_len=24 if pairwise else 16,
                       baseline=mode == "stagewise" and not pairwise,  # one baseline suffices
                       **overrides)


# Runs a list of Options (as dicts) in order, in a process of its own.
RUN_IN_ORDER = """
import json, os, shutil, sys
from xtremedistil import options, pipeline
for values, teacher in json.loads(sys.stdin.read()):
    if teacher:
        shutil.copytree(teacher, os.path.join(values["model_dir"], "teacher"))
    pipeline.run(options.Options.from_dict(values))
"""


@pytest.fixture(scope="module")
def mode_runs(tmp_path_factory):
    """{(task name, mode): (config, metrics)}: one teacher per task, fine-tuned by the task's
    first run and copied to the others. The pair run goes in a subprocess while the sentence
    runs train here (tiny runs leave the second core mostly idle)."""
    plans = {}
    for pairwise, task_name in ((False, "classification"), (True, "pairs")):
        tmp = tmp_path_factory.mktemp(task_name)
        first = MODES[task_name][0]
        plans[pairwise] = [(classification_config(tmp, pairwise, mode),
                            None if mode == first else str(tmp / first / "teacher"))
                           for mode in MODES[task_name]]
    log = tmp_path_factory.mktemp("logs") / "pairs.log"
    with open(log, "w", encoding="utf-8") as log_file:
        pairs = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-c", RUN_IN_ORDER], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=log_file, stderr=subprocess.STDOUT, text=True)
        pairs.stdin.write(json.dumps([(c.to_dict(), t) for c, t in plans[True]]))
        pairs.stdin.close()
        try:
            runs = {}
            for config, teacher in plans[False]:
                if teacher:
                    shutil.copytree(teacher, os.path.join(config.model_dir, "teacher"))
                runs[tasks.name_for(config), config.distil_mode] = config, pipeline.run(config)
            pairs.wait(timeout=900)
        finally:
            if pairs.poll() is None:
                pairs.kill()
                pairs.wait()
    assert pairs.returncode == 0, log.read_text(encoding="utf-8")[-5000:]
    for config, _ in plans[True]:
        with open(os.path.join(config.model_dir, "metrics.json"), encoding="utf-8") as f:
            runs[tasks.name_for(config), config.distil_mode] = config, json.load(f)
    return runs


@pytest.mark.parametrize("task_name, mode", [(task_name, mode) for task_name, modes in
                                             MODES.items() for mode in modes])
def test_each_mode_learns_from_the_teacher(mode_runs, task_name, mode):
    config, metrics = mode_runs[task_name, mode]
    assert metrics["task"] == task_name and metrics["distil_mode"] == mode
    assert metrics["teacher"]["mean_accuracy"] >= CHANCE[task_name] + 0.3
    assert metrics["student"]["mean_accuracy"] >= CHANCE[task_name] + 0.3
    with open(os.path.join(config.model_dir, "student", "progress.json"),
              encoding="utf-8") as f:
        dev = {r["name"]: r.get("dev_score") for r in json.load(f)}
    # Before it saw a label, the teacher's outputs on the transfer set taught it the task.
    assert dev[TRANSFER_ONLY_STAGE[mode]] >= CHANCE[task_name] + 0.3
    scores = metrics["student"]["per_language"]
    assert sorted(scores) == ["xx", "yy", "zz"]
    assert all(s["examples"] == 30 and 0 <= s["macro_f1"] <= 1 for s in scores.values())


def test_the_baseline_is_reported_with_accuracy_and_macro_f1(mode_runs):
    _, metrics = mode_runs["classification", "stagewise"]
    assert {"mean_accuracy", "mean_macro_f1"} <= set(metrics["baseline"])
    assert metrics["params"]["student"] > 0


@pytest.mark.parametrize("output", ["sentence", "pair"])
def test_pooled_state_ignores_padding(output):
    options = options_lib.Options(word_emb_dim=8, bilstm_hidden_size=6)
    short, long = (students.Dims(30, seq_len, 3, 5, output) for seq_len in (6, 11))
    model = bilstm.BiLSTMStudent(options).build(short)
    padded = bilstm.BiLSTMStudent(options).build(long)
    padded.set_weights(model.get_weights())
    texts = [[5, 6, 7, 8], [9, 4]]
    ids = {dims.seq_len: np.asarray([sum((t + [0] * (dims.seq_len - len(t))
                                          for t in texts[:2 if output == "pair" else 1]), [])])
           for dims in (short, long)}
    np.testing.assert_allclose(model.predict(ids[6], verbose=0)["logits"],
                               padded.predict(ids[11], verbose=0)["logits"], atol=1e-5)
    other = ids[6].copy()
    other[0, 1] = 3  # a real piece changed does change the logits
    assert not np.allclose(model.predict(ids[6], verbose=0)["logits"],
                           model.predict(other, verbose=0)["logits"])


def test_pairs_are_encoded_with_segment_ids(tiny_tokenizer):
    task = tasks.get("pairs")
    example = TextExample("alice met bob", "the city", "both", "xx", "t:1")
    encoded = task.encode([example], tiny_tokenizer, 12, ["both", "not"])
    pieces = tiny_tokenizer.convert_ids_to_tokens(encoded.input_ids[0].tolist())
    assert pieces[:8] == ["[CLS]", "alice", "met", "bob", "[SEP]", "the", "city", "[SEP]"]
    assert encoded.token_type_ids[0].tolist()[:9] == [0, 0, 0, 0, 0, 1, 1, 1, 0]
    # The student reads each text alone: [CLS] a [SEP] padded to 12, then [CLS] b [SEP].
    alone = [tiny_tokenizer(t, max_length=12, padding="max_length")["input_ids"]
             for t in ("alice met bob", "the city")]
    assert encoded.student_pieces[0].tolist() == alone[0] + alone[1]
    assert encoded.label_ids.tolist() == [0] and encoded.truncated == 0
    assert len(encoded.teacher_inputs()) == 3
    single = tasks.get("classification").encode([example], tiny_tokenizer, 4, ["both", "not"])
    assert single.token_type_ids is None and single.truncated == 1


def write_split_files(folder, train, dev="a b\tyes\n", test="a b\tyes\n"):
    folder.mkdir(exist_ok=True)
    for name, text in (("train", train), ("dev", dev), ("test", test)):
        (folder / f"{name}.tsv").write_text(text, encoding="utf-8")
    (folder / "labels.tsv").write_text("yes\nno\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("pairwise, train, fault", [
    (False, "good text\tyes\nonly one field\n",
     "train.tsv:2: expected 2 TAB-separated fields (text<TAB>label), found 1"),
    (False, "good text\tmaybe\n", "train.tsv:1: unknown label 'maybe'; allowed: yes, no"),
    (False, "  \tyes\n", "train.tsv:1: empty text"),
    (True, "a\tb\tyes\nonly a\tyes\n",
     "train.tsv:2: expected 3 TAB-separated fields (text_a<TAB>text_b<TAB>label), found 2"),
    (True, "a\t \tno\n", "train.tsv:1: empty text_b"),
])
def test_bad_lines_name_file_and_line(tmp_path, pairwise, train, fault):
    pair = "a\tb\tyes\n"
    folder = write_split_files(tmp_path / "task", train, *(2 * [pair] if pairwise else []))
    config = options_lib.Options(task=str(folder), do_NER=False, do_pairwise=pairwise)
    task = tasks.get(tasks.name_for(config))
    with pytest.raises(DataError, match=fault.replace("(", r"\(").replace(")", r"\)")):
        task.read_labeled(config)


def test_skip_bad_lines_skips_and_counts(tmp_path):
    folder = write_split_files(tmp_path / "task", "good text\tyes\none field\n\tno\nok\tno\n")
    config = options_lib.Options(task=str(folder), do_NER=False, skip_bad_lines=True)
    labeled = tasks.get("classification").read_labeled(config)
    assert labeled.skipped == 2
    assert [(e.text, e.label) for e in labeled.train] == [("good text", "yes"), ("ok", "no")]


def test_transfer_lines_must_hold_the_texts_alone(tmp_path):
    path = tmp_path / "transfer.txt"
    path.write_text("one text\nsecond text\tpositive\n", encoding="utf-8")
    config = options_lib.Options(do_NER=False, transfer_file=str(path))
    with pytest.raises(DataError, match="transfer.txt:2: expected 1 TAB-separated field "
                       r"\(text\), found 2 \(a labeled file given as transfer text\?\)"):
        list(tasks.get("classification").transfer_examples(config))
    pairs = tasks.get("pairs").transfer_examples(config.replace(do_pairwise=True))
    with pytest.raises(DataError, match="transfer.txt:1: expected 2 TAB-separated fields"):
        list(pairs)
