"""--strategy=multi_worker: two worker processes on 127.0.0.1, configured by TF_CONFIG."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

from conftest import script_flags, tiny_config, write_task
from xtremedistil.distribute import free_ports

ROOT = pathlib.Path(__file__).resolve().parents[1]


def start_workers(config):
    """Starts the script as the 2 workers of one cluster (stderr to a file each)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        log = open(f"{config.model_dir}.log{index}", "w+", encoding="utf-8")
        workers.append((subprocess.Popen(
            [sys.executable, "run_xtreme_distil.py", *script_flags(config)], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=log, text=True), log))
    return workers


def finish(workers):
    """Waits for the workers; returns their (returncode, stderr)."""
    results = []
    for worker, _ in workers:
        try:
            worker.wait(timeout=900)
        finally:
            for other, _ in workers:
                if other.poll() is None and worker.returncode not in (None, 0):
                    other.kill()  # one failed: the other would wait for it forever
    for worker, log in workers:
        log.seek(0)
        results.append((worker.returncode, log.read()))
        log.close()
    return results


def run_workers(config):
    return finish(start_workers(config))


def fingerprint(stderr):
    return re.findall(r"weights fingerprint (\w+)", stderr)


def chunks_written(stderr, worker):
    """Indexes of the training chunks the worker's teacher computed, from its log."""
    return [int(i) - 1 for i in re.findall(
        rf"teacher outputs: worker {worker} of 2: train chunk (\d+) \(\d+ examples\) written",
        stderr)]


def stored_chunks(folder):
    """Indexes of the training chunks in `folder` (not the temporary files being written)."""
    return [int(p.name[6:11]) for p in folder.glob("train_?????.npz")]


def test_two_workers_share_the_teacher_pass_resume_it_and_train_the_same_student(tmp_path):
    write_task(tmp_path / "task", transfer=1500)  # 150 validation, 1350 in 45 chunks of 30
    config = tiny_config(tmp_path, strategy="multi_worker", ft_epochs=3, distil_epochs=2,
                         distil_chunk_size=30, baseline=False, distil_mode="soft")
    model_dir = pathlib.Path(config.model_dir)
    outputs = model_dir / "teacher_outputs"
    scratch = pathlib.Path(f"{model_dir}.worker1")

    # Killed (SIGKILL, both workers) during the teacher pass, once each has written 3 chunks.
    workers = start_workers(config)
    deadline = time.time() + 600
    while not all(len([i for i in stored_chunks(outputs) if i % 2 == k]) >= 3 for k in (0, 1)):
        assert time.time() < deadline and all(w.poll() is None for w, _ in workers), \
            "the workers ended before the teacher pass"
        time.sleep(0.02)
    for worker, _ in workers:
        worker.send_signal(signal.SIGKILL)
    killed = finish(workers)
    before = {p.name: p.stat().st_mtime_ns for p in outputs.glob("train_?????.npz")}
    assert 6 <= len(before) < 45, "killed after the teacher pass: not a test of its resume"

    (chief_rc, chief_log), (worker_rc, worker_log) = run_workers(config)
    assert chief_rc == 0, chief_log[-3000:]
    assert worker_rc == 0, worker_log[-3000:]
    assert "multi_worker strategy, 2 replicas" in chief_log
    assert "multi_worker strategy, 2 replicas" in worker_log
    # Each worker's teacher ran on exactly the chunks of its share (index = worker mod 2),
    # each chunk once over the killed run and its resume.
    for k, log in enumerate((chief_log, worker_log)):
        before_kill, resumed = chunks_written(killed[k][1], k), chunks_written(log, k)
        assert sorted(before_kill + resumed) == list(range(k, 45, 2))
        assert not {f"train_{i:05d}.npz" for i in resumed} & set(before)
    assert all((outputs / name).stat().st_mtime_ns == mtime for name, mtime in before.items())
    # The chief's metrics list both shares: each worker ran the teacher on its remaining
    # chunks of 30 and on the validation chunk (150), which every worker computes.
    metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    shares = metrics["teacher_outputs_per_worker"]
    assert [s["worker"] for s in shares] == [0, 1]
    for k, share in enumerate(shares):
        resumed = chunks_written((chief_log, worker_log)[k], k)
        # 150 more unless the other worker had written the validation chunk already.
        assert share["sentences"] in (30 * len(resumed), 30 * len(resumed) + 150)
        assert share["seconds"] > 0
    # Synchronous training: both workers end with the same weights.
    assert len(fingerprint(chief_log)) == 1
    assert fingerprint(chief_log) == fingerprint(worker_log)
    # The chief wrote the outputs; the other worker wrote only to its private folder, now gone.
    assert metrics["replicas"] == 2 and metrics["student"]["mean_f1"] > 0.5
    assert (model_dir / "export" / "tflite" / "student_fp32.tflite").exists()
    assert f"private folder {scratch}" in worker_log
    assert not scratch.exists()
    assert "export: SavedModel" in chief_log and "export:" not in worker_log

    # Rerun on the finished model_dir: both workers resume from the chief's files alike.
    (chief_rc, chief_log), (worker_rc, worker_log) = run_workers(config)
    assert chief_rc == 0 and worker_rc == 0, (chief_log + worker_log)[-3000:]
    for log in (chief_log, worker_log):
        assert "fine-tuned in an earlier run" in log
        assert log.count("done in an earlier run") == 2  # soft: transfer, then labels
        assert re.search(r": 0 examples run through the teacher", log)
    assert fingerprint(chief_log) == fingerprint(worker_log)
    assert "is of this student already" in chief_log  # not exported again
