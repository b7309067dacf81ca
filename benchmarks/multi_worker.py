"""The teacher pass split over workers: one worker against N workers on the same data.

  python benchmarks/multi_worker.py --workers=2 --reuse_teacher_from=models/demo

Runs the main job (run_xtreme_distil.py on --task, default the demo data) twice with
--distil_epochs=1 and no baseline: once as one process (--strategy=default), once as --workers
processes of one cluster on 127.0.0.1 (--strategy=multi_worker), both with the same fine-tuned
teacher (--reuse_teacher_from, else the one the first run fine-tunes). Each process gets
--threads_per_worker CPU threads (TF_NUM_INTRAOP_THREADS, TF_NUM_INTEROP_THREADS), so the
cluster stands for N machines of that many cores, and the single run for one of them. Prints,
from each run's metrics.json ("teacher_outputs_per_worker"), the sentences and seconds of every
worker's teacher, their sum and the slowest (the pass's wall time), and writes them as JSON.
"""

import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position
from absl import app
from absl import flags

if REPO not in sys.path:
    sys.path.insert(0, REPO)
from xtremedistil import distribute  # pylint: disable=wrong-import-position
# pylint: enable=wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_integer("workers", 2, "Workers of the cluster run.")
flags.DEFINE_integer("threads_per_worker", 1, "CPU threads of each process (0: TF's default).")
flags.DEFINE_string("task", "data/demo", "Labeled data folder (train/dev/test.tsv).")
flags.DEFINE_string("transfer_file", "data/demo/transfer.txt", "Unlabeled transfer set.")
flags.DEFINE_integer("distil_chunk_size", 100, "Transfer examples per stored chunk (shares are "
                     "made of whole chunks).")
flags.DEFINE_string("reuse_teacher_from", "", "A model_dir trained on the same data whose "
                    "fine-tuned teacher both runs use (else the single run fine-tunes it).")
flags.DEFINE_string("model_dir", "benchmarks/out/multi_worker", "Folder of the two runs.")
flags.DEFINE_string("output", "benchmarks/out/multi_worker.json", "JSON file to write.")


def run_job(model_dir, strategy, workers):
    """Runs the script as `workers` processes (one cluster when > 1); returns its metrics."""
    argv = [sys.executable, "run_xtreme_distil.py", f"--task={FLAGS.task}",
            f"--transfer_file={FLAGS.transfer_file}", f"--model_dir={model_dir}",
            f"--strategy={strategy}", "--distil_epochs=1", "--baseline=false",
            f"--distil_chunk_size={FLAGS.distil_chunk_size}"]
    env = dict(os.environ)
    if FLAGS.threads_per_worker:
        env.update(TF_NUM_INTRAOP_THREADS=str(FLAGS.threads_per_worker),
                   TF_NUM_INTEROP_THREADS=str(FLAGS.threads_per_worker))
    cluster = {"worker": [f"127.0.0.1:{port}" for port in distribute.free_ports(workers)]}
    processes = []
    for index in range(workers):
        if workers > 1:
            env["TF_CONFIG"] = json.dumps({"cluster": cluster,
                                           "task": {"type": "worker", "index": index}})
        log = open(f"{model_dir}.log{index}", "w",  # pylint: disable=consider-using-with
                   encoding="utf-8")
        processes.append((subprocess.Popen(argv, cwd=REPO, env=dict(env), stdout=log,
                                           stderr=subprocess.STDOUT), log))
    for process, log in processes:
        if process.wait() != 0:
            for other, _ in processes:
                other.kill()
            raise RuntimeError(f"{' '.join(argv)} failed: see {log.name}")
        log.close()
    with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
        return json.load(f)


def summary(metrics):
    shares = metrics["teacher_outputs_per_worker"]
    return {"workers": len(shares), "per_worker": shares,
            "sentences": sum(s["sentences"] for s in shares),
            "sum_seconds": round(sum(s["seconds"] for s in shares), 2),
            "wall_seconds": max(s["seconds"] for s in shares)}


def main(_):
    os.chdir(REPO)
    single_dir = os.path.join(FLAGS.model_dir, "one")
    cluster_dir = os.path.join(FLAGS.model_dir, f"{FLAGS.workers}_workers")
    for folder in (single_dir, cluster_dir):
        shutil.rmtree(folder, ignore_errors=True)
        if FLAGS.reuse_teacher_from:
            shutil.copytree(os.path.join(FLAGS.reuse_teacher_from, "teacher"),
                            os.path.join(folder, "teacher"))
    single = summary(run_job(single_dir, "default", 1))
    if not FLAGS.reuse_teacher_from:
        shutil.copytree(os.path.join(single_dir, "teacher"), os.path.join(cluster_dir, "teacher"))
    cluster = summary(run_job(cluster_dir, "multi_worker", FLAGS.workers))
    result = {"task": FLAGS.task, "transfer_file": FLAGS.transfer_file,
              "threads_per_worker": FLAGS.threads_per_worker, "one_worker": single,
              "cluster": cluster,
              "wall_speedup": round(single["wall_seconds"] / cluster["wall_seconds"], 2),
              "sum_over_single": round(cluster["sum_seconds"] / single["sum_seconds"], 2)}
    print("| run | worker | sentences | teacher seconds |\n|---|---|---|---|")
    for name, run in (("one worker", single), (f"{FLAGS.workers} workers", cluster)):
        for share in run["per_worker"]:
            print(f"| {name} | {share['worker']} | {share['sentences']:,} | "
                  f"{share['seconds']:.1f} |")
    print(f"teacher pass: wall {single['wall_seconds']:.1f} s -> {cluster['wall_seconds']:.1f} s "
          f"({result['wall_speedup']}x); workers' seconds together {cluster['sum_seconds']:.1f} "
          f"s ({result['sum_over_single']}x the single run's)")
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    app.run(main)
