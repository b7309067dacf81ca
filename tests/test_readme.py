"""The README's deployment examples run as written, on a trained run's export.

Blocks after a `<!-- README test: ner -->` line run against the tiny trained NER run (its path
in place of models/demo), from a fresh folder holding links to the script and the package, as
a user's checkout would; the TF Serving request's JSON goes through the signature in a fresh
process that imports only TensorFlow and tensorflow-text, as the model server would.
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from xtremedistil import data as data_lib
from xtremedistil import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
MARKER = "<!-- README test: {} -->"


def readme_blocks(kind):
    """[(language, code)] of the fenced blocks right after the marker of `kind`."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    pattern = re.escape(MARKER.format(kind)) + r"\n```(\w+)\n(.*?)```"
    return re.findall(pattern, text, flags=re.DOTALL)


def user_checkout(folder):
    """A folder with the script and the package linked in, as a checkout's root."""
    for name in ("run_xtreme_distil.py", "xtremedistil"):
        os.symlink(os.path.join(ROOT, name), os.path.join(folder, name))
    with open(os.path.join(folder, "sentences.txt"), "w", encoding="utf-8") as f:
        f.write("alice met bob smith in paris.\n\nthe acme people, in rome!\n")
    return folder


def run_block(language, code, model_dir, cwd):
    code = code.replace("models/demo", model_dir)
    command = [sys.executable, "-c", code] if language == "python" else ["bash", "-c", code]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    env.pop("PYTHONPATH", None)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_readme_ner_examples_run_as_written(exported, tmp_path):
    manifest, _ = exported
    blocks = readme_blocks("ner")
    assert [language for language, _ in blocks].count("python") >= 3, blocks
    assert any(language == "bash" for language, _ in blocks)
    cwd = user_checkout(str(tmp_path))
    # The Python blocks one after the other in one process, as in a notebook.
    python = "\n".join(code for language, code in blocks if language == "python")
    for language, code in [("python", python)] + [b for b in blocks if b[0] == "bash"]:
        result = run_block(language, code, manifest.model_dir, cwd)
        assert result.returncode == 0, (code, result.stderr[-3000:])
    with open(tmp_path / "entities.jsonl", encoding="utf-8") as f:
        assert json.loads(f.read())["text"] == "Angela Merkel visited Paris."
    with open(tmp_path / "tagged.conll", encoding="utf-8") as f:
        lines = f.read().split("\n")[:-1]
    assert lines.count("") == 3  # a blank line ends each of the 3 input lines


SERVING_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenisation ops the SavedModel uses
request = json.loads(sys.stdin.read())
signature = tf.saved_model.load(sys.argv[1]).signatures[request["signature_name"]]
# TF Serving's row format: one input, so each instance is that input's value.
(name,) = signature.structured_input_signature[1]
outputs = signature(**{name: tf.constant(request["instances"])})
rows = [{k: v.numpy()[i].tolist() for k, v in outputs.items()}
        for i in range(len(request["instances"]))]
for row in rows:
    for key, value in row.items():
        row[key] = (value.decode() if isinstance(value, bytes)
                    else [v.decode() if isinstance(v, bytes) else v for v in value]
                    if isinstance(value, list) else value)
project = sorted(m for m in sys.modules if m.startswith("xtremedistil"))
print(json.dumps({"predictions": rows, "project_modules": project}))
"""


def test_readme_serving_request_in_a_fresh_process(exported, tmp_path):
    """The README's curl body, turned into the signature's inputs as TF Serving does."""
    _, paths = exported
    with open(README, encoding="utf-8") as f:
        body = re.search(r"curl -s -d '(\{.*?\})'", f.read()).group(1)
    request = json.loads(body)
    request["instances"] += ["", "Привет Москва, 東京 🥰 alice x\u0301 [SEP]"]
    result = subprocess.run(
        [sys.executable, "-c", SERVING_PROCESS, os.path.abspath(paths["saved_model"])],
        input=json.dumps(request), capture_output=True, text=True, timeout=300, check=False,
        cwd=str(tmp_path), env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr[-3000:]
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["project_modules"] == []
    rows = response["predictions"]
    assert len(rows) == len(request["instances"])
    for text, row in zip(request["instances"], rows):
        count = row["num_words"]
        assert [text[s:e] for s, e in zip(row["word_start"][:count], row["word_end"][:count])
                ] == row["words"][:count]
        for k in range(row["num_entities"]):
            assert text[row["entity_start"][k]:row["entity_end"][k]] == row["entity_text"][k]


def test_latency_reads_the_runs_test_file_with_its_data_options(exported, tmp_path):
    """benchmarks/latency.py reads a run's test split as the run did: a run trained with
    --skip_bad_lines on a test file with a bad line gives its good sentences, not an error."""
    from benchmarks import latency  # pylint: disable=import-outside-toplevel
    from xtremedistil.manifest import Manifest  # pylint: disable=import-outside-toplevel
    manifest, _ = exported
    task = tmp_path / "task"
    shutil.copytree(manifest.options.task, task)
    with open(task / "test.tsv", "a", encoding="utf-8") as f:
        f.write("alice\t\n")  # a token without a tag: a bad line
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(manifest.teacher_dir, model_dir / "teacher")
    with open(os.path.join(manifest.model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    config["options"].update(task=str(task), skip_bad_lines=True)
    (model_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    run = Manifest.read(str(model_dir), require_trained=False)
    with pytest.raises(data_lib.DataError, match="test.tsv:"):
        tasks.get(run.task).read_labeled(run.options.replace(skip_bad_lines=False))
    inputs = latency.Inputs(run, manifest.options.seq_len)
    assert len(inputs.student_ids) == len(
        tasks.get(run.task).read_labeled(manifest.options).test)


def test_latency_script_times_every_row_of_an_exported_run(exported, tmp_path):
    """benchmarks/latency.py end to end on the tiny exported run (2 timed calls a figure): every
    row, the ratios, the chart; and the teacher of a run that fine-tuned none is the
    pre-trained one."""
    from benchmarks import latency  # pylint: disable=import-outside-toplevel
    manifest, _ = exported
    output = tmp_path / "latency.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/latency.py", f"--model_dir={manifest.model_dir}",
         f"--seq_len={manifest.options.seq_len}", "--repeats=2", "--budget_seconds=1",
         "--batch_sizes=32,64",  # mBERT-base at 256 would take most of the test's time
         f"--output={output}"], cwd=ROOT, capture_output=True, text=True, timeout=600,
        check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(output.read_text(encoding="utf-8"))
    assert [row["model"] for row in measured["rows"]] == [
        "teacher (fine-tuned)", "mBERT-base (random)", "student (Keras)",
        "SavedModel student_ids", "SavedModel sentences", "TFLite fp32", "TFLite fp16",
        "TFLite int8", "ONNX (onnxruntime)"]
    for row in measured["rows"]:
        assert row["online_ms"] > 0 and list(row["batch_ms_per_sentence"]) == ["32", "64"]
        assert all(v > 0 for v in row["batch_ms_per_sentence"].values())
    assert measured["ratios"]["params_mbert_over_student"] > 1
    assert (tmp_path / "latency.png").exists() and "| student (Keras) |" in result.stdout
    assert "ms/sentence @64 |" in result.stdout and "batch speed (64)" in result.stdout
    untrained = dataclasses.replace(manifest, options=manifest.options.replace(
        distil_mode="none", baseline=False))
    name, teacher, size = latency.run_teacher(untrained, len(manifest.labels),
                                              tasks.get(manifest.task).teacher_class(
                                                  manifest.options.pt_teacher))
    assert name.startswith("teacher (pre-trained") and size is None
    assert teacher.config.vocab_size > 0
