"""benchmarks/tradeoff.py: the trade-off table and plot from runs' metrics and latency JSON
(hand-made here; the scripts that write them are tested elsewhere)."""

import json

import pytest

from benchmarks import tradeoff


def _run(folder, student_f1, teacher_f1, student_ms, online_ms, params=1000):
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({
        "student": {"mean_f1": student_f1}, "teacher": {"mean_f1": teacher_f1},
        "params": {"student": params, "teacher": 100 * params}}))
    rows = [{"model": "teacher (fine-tuned)", "file_bytes": 400,
             "batch_ms_per_sentence": {"32": 20.0, "256": 19.0}, "online_ms": 40.0},
            {"model": "student (Keras)", "file_bytes": 4,
             "batch_ms_per_sentence": {"32": student_ms, "256": student_ms}, "online_ms": 9.0},
            {"model": "TFLite fp32", "file_bytes": 3 * 2**20,
             "batch_ms_per_sentence": {"32": 1.0, "256": 1.0}, "online_ms": online_ms},
            {"model": "TFLite int8", "file_bytes": 2**20,
             "batch_ms_per_sentence": {"32": 1.0, "256": 1.0}, "online_ms": online_ms / 2}]
    latency = folder.parent / f"{folder.name}.latency.json"
    latency.write_text(json.dumps({"rows": rows}))
    return f"{folder},{latency}"


def test_table_and_plot_of_students_sharing_a_teacher(tmp_path):
    bilstm = _run(tmp_path / "bilstm", 0.6, 0.8, 0.5, 1.0)
    transformer = _run(tmp_path / "transformer", 0.72, 0.8, 2.0, 3.0)
    entries = [tradeoff.student_entry(*tradeoff.parse_run(f"{label}={value}"))
               for label, value in (("BiLSTM", bilstm), ("transformer 4x256", transformer))]
    summary = tradeoff.summarise(entries)
    assert summary["teacher"]["f1"] == 0.8 and summary["teacher"]["batch32_ms"] == 20.0
    first, second = summary["students"]
    assert first["retention"] == pytest.approx(0.75) and second["retention"] == pytest.approx(0.9)
    assert first["speedup_batch32"] == pytest.approx(40) and second["speedup_batch32"] == 10
    assert first["online_ms"] == 1.0 and first["tflite_int8_bytes"] == 2**20
    table = tradeoff.markdown(summary, "cmd")
    assert "| teacher | 80.0 | - | 100,000 | 20.000 | 1.0x | 40.00 | - | - |" in table
    assert "| transformer 4x256 | 72.0 | 90.0% | 1,000 | 2.000 | 10.0x | 3.00 | 3.00 | 1.00 |" \
        in table
    tradeoff.plot(summary, str(tmp_path / "plot.png"))
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_parameters_are_the_measured_model_s(tmp_path):
    """A run's metrics.json may count training-only weights; latency.py's row counts the model
    it timed, and wins."""
    run = _run(tmp_path / "maps", 0.6, 0.8, 0.5, 1.0, params=1200)
    latency = run.split(",")[1]
    with open(latency, encoding="utf-8") as f:
        measured = json.load(f)
    measured["rows"][1]["params"] = 1000
    with open(latency, "w", encoding="utf-8") as f:
        json.dump(measured, f)
    student, _ = tradeoff.student_entry(*tradeoff.parse_run(f"maps={run}"))
    assert student["params"] == 1000


def test_refuses_runs_of_another_teacher_and_malformed_values(tmp_path):
    one = _run(tmp_path / "one", 0.6, 0.8, 0.5, 1.0)
    other = _run(tmp_path / "other", 0.6, 0.7, 0.5, 1.0)
    entries = [tradeoff.student_entry(*tradeoff.parse_run(f"{n}={v}"))
               for n, v in (("a", one), ("b", other))]
    with pytest.raises(tradeoff.app.UsageError, match="--run=b: its teacher's test F1 0.7000"):
        tradeoff.summarise(entries)
    for bad in ("no_equals", "label=only_one_path", "=a,b"):
        with pytest.raises(tradeoff.app.UsageError, match="label=model_dir,latency_json"):
            tradeoff.parse_run(bad)
    with pytest.raises(tradeoff.app.UsageError, match="no such file"):
        tradeoff.student_entry("x", str(tmp_path / "missing"), str(tmp_path / "x.json"))
