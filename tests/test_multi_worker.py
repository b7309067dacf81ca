"""--strategy=multi_worker: two worker processes on 127.0.0.1, configured by TF_CONFIG."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

from conftest import script_flags, tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(config):
    """Runs the script as 2 workers of one cluster; returns their (returncode, stderr)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(
            [sys.executable, "run_xtreme_distil.py", *script_flags(config)], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for worker in workers:
        try:
            _, stderr = worker.communicate(timeout=900)
        finally:
            for other in workers:
                if other.poll() is None and worker.returncode not in (None, 0):
                    other.kill()  # one failed: the other would wait for it forever
        results.append((worker.returncode, stderr))
    return results


def fingerprint(stderr):
    return re.findall(r"weights fingerprint (\w+)", stderr)


def test_two_workers_train_the_same_student_and_only_the_chief_writes(tmp_path):
    config = tiny_config(tmp_path, strategy="multi_worker", ft_epochs=3, distil_epochs=2,
                         baseline=False)
    model_dir = pathlib.Path(config.model_dir)
    scratch = pathlib.Path(f"{model_dir}.worker1")

    (chief_rc, chief_log), (worker_rc, worker_log) = run_workers(config)
    assert chief_rc == 0, chief_log[-3000:]
    assert worker_rc == 0, worker_log[-3000:]
    assert "multi_worker strategy, 2 replicas" in chief_log
    assert "multi_worker strategy, 2 replicas" in worker_log
    # Synchronous training: both workers end with the same weights.
    assert len(fingerprint(chief_log)) == 1
    assert fingerprint(chief_log) == fingerprint(worker_log)
    # The chief wrote the outputs; the other worker wrote only to its private folder, now gone.
    metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
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
        assert log.count("done in an earlier run") == 9
    assert fingerprint(chief_log) == fingerprint(worker_log)
