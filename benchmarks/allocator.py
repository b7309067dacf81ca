"""TensorFlow's CPU allocator: the default one against BFC (TF_CPU_ALLOCATOR_USE_BFC).

  python benchmarks/allocator.py       # ~2 minutes on 2 cores
  python benchmarks/allocator.py --steps=50 --output=benchmarks/out/allocator.json

Each setting runs in a fresh process: training steps of the multilingual teacher's largest
piece, its 250,002 x 384 word embedding (with a dense layer on it), under Adam, at the teacher's
fine-tuning batch (16 x 32 pieces). Reported per setting: ms a step, user and kernel CPU seconds
and minor page faults over the timed steps, peak resident memory. Importing xtremedistil sets
BFC unless the variable is set (xtremedistil/__init__.py); this measures why.
"""

import json
import os
import subprocess
import sys

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_integer("steps", 20, "Timed steps per setting (after one untimed warm-up step).")
flags.DEFINE_string("output", os.path.join(ROOT, "benchmarks", "out", "allocator.json"),
                    "JSON file for the figures.")
FLAGS = flags.FLAGS
SETTINGS = ("false", "true")  # TF_CPU_ALLOCATOR_USE_BFC

# The child: no xtremedistil import, so the variable is exactly what the parent set.
STEPS = """
import json, resource, sys, time
import tensorflow as tf
import tf_keras
vocab, width, batch, seq_len, steps = 250002, 384, 16, 32, int(sys.argv[1])
embedding = tf_keras.layers.Embedding(vocab, width)
dense = tf_keras.layers.Dense(width)
ids = tf.random.stateless_uniform((batch, seq_len), (1, 2), 0, vocab, dtype=tf.int32)
optimizer = tf_keras.optimizers.Adam(1e-4)

@tf.function
def step():
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(dense(embedding(ids)) ** 2)
    variables = embedding.trainable_variables + dense.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

step()
before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(steps):
    step()
seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"ms_per_step": round(1000 * seconds / steps, 1),
                  "user_seconds": round(after.ru_utime - before.ru_utime, 2),
                  "kernel_seconds": round(after.ru_stime - before.ru_stime, 2),
                  "minor_page_faults": after.ru_minflt - before.ru_minflt,
                  "peak_rss_mib": round(after.ru_maxrss / 1024)}))
"""


def measure(use_bfc, steps):
    env = dict(os.environ, TF_CPU_ALLOCATOR_USE_BFC=use_bfc, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", STEPS, str(steps)], env=env, cwd=ROOT,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"TF_CPU_ALLOCATOR_USE_BFC={use_bfc} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    rows = []
    for use_bfc in SETTINGS:
        row = {"TF_CPU_ALLOCATOR_USE_BFC": use_bfc, **measure(use_bfc, FLAGS.steps)}
        rows.append(row)
        print(f"TF_CPU_ALLOCATOR_USE_BFC={use_bfc:5}: {row['ms_per_step']:7.1f} ms a step, "
              f"CPU user {row['user_seconds']:.1f} s, kernel {row['kernel_seconds']:.1f} s, "
              f"{row['minor_page_faults']:,} minor page faults, peak {row['peak_rss_mib']} MiB",
              flush=True)
    default, bfc = rows
    speedup = default["ms_per_step"] / bfc["ms_per_step"]
    print(f"BFC: {speedup:.2f}x faster a step")
    summary = {"steps": FLAGS.steps, "load_average": os.getloadavg()[0], "rows": rows,
               "bfc_speedup": round(speedup, 2)}
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
