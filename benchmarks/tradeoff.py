"""Students of one task side by side: test F1 against CPU latency, as one table and one plot.

  python benchmarks/latency.py --model_dir=<run> --seq_len=<its seq_len> --output=<run>.latency.json
  python benchmarks/tradeoff.py \\
      --run="BiLSTM=benchmarks/out/panx_quick64,benchmarks/out/panx_quick64.latency.json" \\
      --run="transformer 4x256=<run>,<run>.latency.json" --output=benchmarks/out/tradeoff.json

Each --run is label=model_dir,latency_json: a finished pipeline run (metrics.json: test F1 of
student and teacher, parameters) and what benchmarks/latency.py measured on it. The runs must
share a teacher (the same teacher F1 on the same test data) to be one trade-off; the teacher
is a row too, from the first run. Columns:

  test F1, retention (student / teacher F1), parameters,
  ms/sentence at batch 32 (latency.py's 'student (Keras)' row; the teacher's own row),
  speed-up at batch 32 over the teacher,
  online ms (batch 1: 'TFLite fp32' for the students, the teacher through TF),
  TFLite fp32 and int8 MB.

Writes --output (JSON), the same path with .md (the table) and .png (F1 against ms/sentence at
batch 32 and online, log scale), and prints the table.
"""

import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# pylint: disable=wrong-import-position
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from absl import app
from absl import flags

from benchmarks import harness

FLAGS = flags.FLAGS

TEACHER = "teacher (fine-tuned)"
STUDENT_BATCH, STUDENT_ONLINE = "student (Keras)", "TFLite fp32"


def parse_run(text):
    """(label, model_dir, latency_json) of one --run value."""
    label, sep, paths = text.partition("=")
    parts = paths.split(",")
    if not sep or not label.strip() or len(parts) != 2 or not all(p.strip() for p in parts):
        raise app.UsageError(f"--run={text}: expected label=model_dir,latency_json.")
    return label.strip(), harness.resolve(parts[0].strip()), harness.resolve(parts[1].strip())


def _read_json(path, what):
    if not os.path.exists(path):
        raise app.UsageError(f"{path}: no such file ({what}).")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _latency_rows(path):
    rows = {row["model"]: row for row in _read_json(path, "benchmarks/latency.py's output")["rows"]}
    missing = [name for name in (TEACHER, STUDENT_BATCH, STUDENT_ONLINE) if name not in rows]
    if missing:
        raise app.UsageError(f"{path}: no row {', '.join(missing)} (latency.py at the run's "
                             "own --seq_len gives every row).")
    return rows


def student_entry(label, model_dir, latency_json):
    """The figures of one student run, and its teacher's: (student row, teacher row)."""
    metrics = _read_json(os.path.join(model_dir, "metrics.json"), "a finished pipeline run")
    rows = _latency_rows(latency_json)
    teacher = {"label": "teacher", "f1": metrics["teacher"]["mean_f1"],
               "params": metrics["params"]["teacher"],
               "batch32_ms": rows[TEACHER]["batch_ms_per_sentence"]["32"],
               "online_ms": rows[TEACHER]["online_ms"]}
    # The measured model's count: runs before 245c570 recorded the training-only layer maps too.
    student = {"label": label, "model_dir": model_dir, "f1": metrics["student"]["mean_f1"],
               "params": rows[STUDENT_BATCH].get("params", metrics["params"]["student"]),
               "batch32_ms": rows[STUDENT_BATCH]["batch_ms_per_sentence"]["32"],
               "online_ms": rows[STUDENT_ONLINE]["online_ms"],
               "tflite_fp32_bytes": rows[STUDENT_ONLINE]["file_bytes"],
               "tflite_int8_bytes": rows.get("TFLite int8", {}).get("file_bytes")}
    student["retention"] = student["f1"] / teacher["f1"] if teacher["f1"] else None
    student["speedup_batch32"] = teacher["batch32_ms"] / student["batch32_ms"]
    return student, teacher


def summarise(entries):
    """{"teacher": row, "students": [rows]} of [(student, teacher)] sharing one teacher."""
    teacher = entries[0][1]
    for student, other in entries[1:]:
        if abs(other["f1"] - teacher["f1"]) > 1e-9:
            raise app.UsageError(
                f"--run={student['label']}: its teacher's test F1 {other['f1']:.4f} is not the "
                f"first run's {teacher['f1']:.4f}: another teacher or other test data.")
    return {"teacher": teacher, "students": [student for student, _ in entries]}


def _mb(value):
    return "-" if value is None else f"{value / 2**20:.2f}"


def markdown(summary, command):
    teacher = summary["teacher"]
    lines = [f"Command: `{command}`", "",
             "| model | test F1 | retention | parameters | ms/sentence @32 | speed-up @32 | "
             "online ms | TFLite fp32 MB | TFLite int8 MB |", "|---" * 9 + "|",
             f"| teacher | {100 * teacher['f1']:.1f} | - | {teacher['params']:,} | "
             f"{teacher['batch32_ms']:.3f} | 1.0x | {teacher['online_ms']:.2f} | - | - |"]
    for row in summary["students"]:
        retention = "-" if row["retention"] is None else f"{100 * row['retention']:.1f}%"
        lines.append(f"| {row['label']} | {100 * row['f1']:.1f} | {retention} | "
                     f"{row['params']:,} | {row['batch32_ms']:.3f} | "
                     f"{row['speedup_batch32']:.1f}x | {row['online_ms']:.2f} | "
                     f"{_mb(row['tflite_fp32_bytes'])} | {_mb(row['tflite_int8_bytes'])} |")
    lines += ["", "F1: entity-level (seqeval; classification: accuracy), mean over the test "
              "languages. ms/sentence @32: the Keras student (teacher: transformers TF) at batch "
              "32, 2 CPU cores. Online: one sentence, the student's TFLite fp32 file (2 threads)"
              ", the teacher through TF."]
    return "\n".join(lines) + "\n"


def plot(summary, path):
    rows = [summary["teacher"]] + summary["students"]
    figure, axes = plt.subplots(1, 2, figsize=(12, 5))
    for axis, key, title in ((axes[0], "batch32_ms", "ms/sentence at batch 32"),
                             (axes[1], "online_ms", "online ms (batch 1)")):
        for row in rows:
            axis.scatter(row[key], 100 * row["f1"],
                         color="tab:red" if row is rows[0] else "tab:blue")
            axis.annotate(row["label"], (row[key], 100 * row["f1"]), fontsize=8,
                          textcoords="offset points", xytext=(4, 4))
        axis.set_xscale("log")
        axis.set_xlabel(title + ", log scale")
        axis.set_ylabel("test F1")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv):
    del argv
    if not FLAGS.run:
        raise app.UsageError("Give at least one --run=label=model_dir,latency_json.")
    summary = summarise([student_entry(*parse_run(text)) for text in FLAGS.run])
    output = harness.resolve(FLAGS.output)
    harness.write_outputs(summary, markdown(summary, harness.command_line()), output)
    plot(summary, os.path.splitext(output)[0] + ".png")
    print(f"wrote {os.path.splitext(output)[0]}.png")


def define_flags():
    flags.DEFINE_multi_string("run", [], "label=model_dir,latency_json (repeat per student).")
    flags.DEFINE_string("output", "benchmarks/out/tradeoff.json",
                        "Result JSON; the table (.md) and the plot (.png) go beside it.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
