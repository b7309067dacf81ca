"""Peak memory and time of a whole distillation run as the transfer set grows.

  python benchmarks/memory.py                       # 10k and 100k transfer sentences
  python benchmarks/memory.py --sizes=10000,100000 --output=benchmarks/out/memory.json

Each run is a fresh `run_xtreme_distil.py` process on the synthetic task with a tiny random
BERT teacher (memory and time of the streaming do not depend on the teacher's quality). The
peak resident memory of each process comes from os.wait4. Target: the peak at 100k within 1.3x
of the peak at 10k, i.e. memory does not grow with the transfer set.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from xtremedistil import synthetic  # pylint: disable=wrong-import-position

flags.DEFINE_list("sizes", ["10000", "100000"], "Transfer set sizes (sentences) to run.")
flags.DEFINE_string("output", os.path.join(ROOT, "benchmarks", "out", "memory.json"),
                    "JSON file for the figures.")
flags.DEFINE_integer("distil_chunk_size", 5000, "Transfer sentences per stored chunk.")
FLAGS = flags.FLAGS
TARGET_RATIO = 1.3


def run_once(folder, transfer_sentences):
    """Runs the pipeline in a child process; returns (peak RSS in MiB, seconds)."""
    task = synthetic.write_task(os.path.join(folder, "task"), transfer=transfer_sentences)
    teacher = synthetic.write_tiny_bert(os.path.join(folder, "teacher"))
    command = [sys.executable, "run_xtreme_distil.py", f"--task={task}",
               f"--transfer_file={task / 'transfer.txt'}", f"--model_dir={folder}/model",
               f"--pt_teacher_checkpoint={teacher}", "--seq_len=16", "--word_emb_dim=16",
               "--bilstm_hidden_size=16", "--ft_epochs=2", "--ft_learning_rate=3e-3",
               "--distil_epochs=1", f"--distil_chunk_size={FLAGS.distil_chunk_size}",
               "--strategy=default"]
    started = time.time()
    with open(os.path.join(folder, "run.log"), "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        with open(os.path.join(folder, "run.log"), encoding="utf-8") as log:
            tail = log.read()[-3000:]
        raise RuntimeError(f"run with {transfer_sentences} transfer sentences failed:\n{tail}")
    return usage.ru_maxrss / 1024, time.time() - started  # ru_maxrss is in KiB on Linux


def main(argv):
    del argv
    runs = []
    for size in (int(s) for s in FLAGS.sizes):
        with tempfile.TemporaryDirectory() as folder:
            peak_mib, seconds = run_once(folder, size)
        runs.append({"transfer_sentences": size, "peak_rss_mib": round(peak_mib, 1),
                     "seconds": round(seconds, 1)})
        print(f"{size:>9,} transfer sentences: peak RSS {peak_mib:8.1f} MiB, {seconds:7.1f} s",
              flush=True)
    ratio = runs[-1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]
    result = {"runs": runs, "peak_ratio_largest_over_smallest": round(ratio, 3),
              "target_ratio": TARGET_RATIO, "target_holds": ratio <= TARGET_RATIO}
    print(f"peak memory ratio {runs[-1]['transfer_sentences']:,} / "
          f"{runs[0]['transfer_sentences']:,}: {ratio:.2f}x "
          f"(target <= {TARGET_RATIO}x: {'holds' if ratio <= TARGET_RATIO else 'MISSED'})")
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    app.run(main)
