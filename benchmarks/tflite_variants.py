"""TFLite quantisation variants of a trained student: size, ops, agreement with Keras, latency.

  python benchmarks/tflite_variants.py --model_dir=models/demo   # ~1.5 min on 2 cores

Variants, all from the run's batch-1 student (seq_len T built in), builtin ops only:
  fp32                    no quantisation
  fp16                    float16 weights (dequantised once at load)
  dynamic_range           int8 weights, float32 activations (per-channel weight scales)
  dynamic_range_per_tensor  the same with one scale per weight tensor
  full_integer            int8 weights and activations, calibrated on transfer sentences
  int16x8                 int16 activations, int8 weights (the 16x8 mode)
  int16x8_float_fallback  16x8 where it has kernels, float32 elsewhere
A variant that does not convert or does not run says why and is not timed.

Agreement: share of held-out transfer words (classification: texts) whose tag (label) the
variant picks as Keras does: the int8 check set export uses (tflite.split_check_set).
Latency: milliseconds a sentence, batch 1 online (variables reset before each sentence, as
apps must), for every combination of op resolver (AUTO: the default delegate, XNNPACK, as
apps run; BUILTIN_WITHOUT_DEFAULT_DELEGATES: TFLite's own kernels) and --threads. Other jobs
share the CPU, so the variants are timed round-robin: each of --rounds rounds times every
(variant, resolver, threads) cell once on --sentences held-out sentences, in a shuffled order,
and a cell's figure is the median of its rounds. Noise is reported as each cell's spread
((p75 - p25) / median over rounds) and the load average; "x fp32" is the median over rounds
of the variant's time over fp32's in the same round and cell, which cancels load shared by
both.
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# pylint: disable=wrong-import-position
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags
from absl import logging

from xtremedistil import export, tasks
from xtremedistil.export import tflite
from xtremedistil.manifest import Manifest
# pylint: enable=wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", "models/demo", "A trained model_dir with a transfer file.")
flags.DEFINE_string("output", "benchmarks/out/tflite_variants.json", "JSON file to write.")
flags.DEFINE_integer("rounds", 30, "Round-robin rounds; every cell is timed once a round.")
flags.DEFINE_integer("sentences", 50, "Held-out sentences timed per cell and round.")
flags.DEFINE_list("threads", ["1", "2"], "Interpreter num_threads values to time.")
flags.DEFINE_integer("seed", 0, "Seed of the rounds' shuffled cell order.")

RESOLVERS = {"xnnpack": True, "builtin": False}  # name -> tflite_interpreter's default_delegates
MAX_INT8_BYTES = 5 * 2**20  # the int8 file's size target (the issue)


# === Variants ===

def _converter(static, calibrate, ops_sets):
    converter = tf.lite.TFLiteConverter.from_saved_model(static)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([row[None, :]] for row in calibrate)
    converter.target_spec.supported_ops = ops_sets
    return converter


def _dynamic_range_per_tensor(static, _):
    converter = tf.lite.TFLiteConverter.from_saved_model(static)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter._experimental_disable_per_channel = True  # pylint: disable=protected-access
    return converter.convert()


_INT16X8 = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
VARIANTS = {  # name -> (static SavedModel, calibration ids [N, T]) -> flatbuffer bytes
    "fp32": lambda static, _: tflite.convert_tflite(static, "fp32"),
    "fp16": lambda static, _: tflite.convert_tflite(static, "fp16"),
    "dynamic_range": lambda static, _: tflite.convert_tflite(static, "dynamic_range"),
    "dynamic_range_per_tensor": _dynamic_range_per_tensor,
    "full_integer": lambda static, ids: tflite.convert_tflite(static, "full_integer", ids),
    "int16x8": lambda static, ids: _converter(static, ids, [_INT16X8]).convert(),
    "int16x8_float_fallback": lambda static, ids: _converter(
        static, ids, [_INT16X8, tf.lite.OpsSet.TFLITE_BUILTINS]).convert(),
}


def _first_line(error):
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(error).__name__


def lstm_dtypes(interpreter):
    """'activations/weights' dtypes of the first fused LSTM (its input and input weights)."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    for op in interpreter._get_ops_details():  # pylint: disable=protected-access
        if op["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM":
            activations, weights = (np.dtype(tensors[i]["dtype"]).name for i in op["inputs"][:2])
            return f"{activations}/{weights}"
    return "-"


def describe_variant(name, static, check_set, keras_logits, agreement_key):
    """{"variant", "bytes", "ops", "lstm", agreement_key} of a variant that converts and runs,
    else {"variant", "error"}; the flatbuffer beside it (None when it failed)."""
    calibrate, held_out, weights = check_set
    try:
        flat = VARIANTS[name](static, calibrate)
    except Exception as error:  # pylint: disable=broad-except
        return {"variant": name, "error": f"conversion failed: {_first_line(error)}"}, None
    row = {"variant": name, "bytes": len(flat)}
    try:
        interpreter = tflite.tflite_interpreter(model_content=flat)
        logits = tflite.tflite_logits(interpreter, held_out)
    except RuntimeError as error:
        row["error"] = f"does not run: {_first_line(error)}"
        return row, None
    row.update(ops=tflite.tflite_ops(interpreter), lstm=lstm_dtypes(interpreter))
    row[agreement_key] = round(tflite.tag_agreement(logits, keras_logits, weights), 4)
    return row, flat


# === Timing ===

def time_round_robin(flats, sentences, threads, rounds, seed):
    """{(variant, resolver, threads): [ms a sentence, one per round]}: every cell timed once a
    round in a shuffled order, so load from other jobs falls on all cells alike."""
    interpreters = {}
    for name, flat in flats.items():
        for resolver, default_delegates in RESOLVERS.items():
            for num_threads in threads:
                interpreter = tflite.tflite_interpreter(
                    model_content=flat, num_threads=num_threads,
                    default_delegates=default_delegates)
                tflite.tflite_logits(interpreter, sentences[:5])  # warm-up
                interpreters[(name, resolver, num_threads)] = interpreter
    cells = list(interpreters)
    times = {cell: [] for cell in cells}
    order = np.random.default_rng(seed)
    for round_index in range(rounds):
        for position in order.permutation(len(cells)):
            cell = cells[position]
            begin = time.perf_counter()
            tflite.tflite_logits(interpreters[cell], sentences)
            times[cell].append(1000 * (time.perf_counter() - begin) / len(sentences))
        logging.info("tflite_variants: round %d/%d done", round_index + 1, rounds)
    return times


def summarise(times):
    """{cell: {"ms", "spread", "x_fp32"}}: median ms a sentence, (p75 - p25) / median, and the
    median over rounds of the cell's time over fp32's in the same round (same resolver and
    threads)."""
    summary = {}
    for (name, resolver, num_threads), values in times.items():
        values = np.asarray(values)
        fp32 = np.asarray(times[("fp32", resolver, num_threads)])
        p25, median, p75 = np.percentile(values, [25, 50, 75])
        summary[(name, resolver, num_threads)] = {
            "ms": round(float(median), 3), "spread": round(float((p75 - p25) / median), 3),
            "x_fp32": round(float(np.median(values / fp32)), 2)}
    return summary


# === Report ===

def table(rows, threads, agreement_key, figure="ms"):
    """Markdown table of the variants: size, LSTM dtypes, agreement and, for every resolver
    and thread count, figure: "ms" (a sentence) or "x_fp32" (time over fp32's)."""
    cells = [f"{resolver}_{n}t" for resolver in RESOLVERS for n in threads]
    unit = "ms" if figure == "ms" else "x fp32"
    head = " | ".join(f"{cell.replace('_', ' ')} {unit}" for cell in cells)
    lines = [f"| variant | size MB | LSTM act/weights | {agreement_key} | {head} |",
             "|---|---:|---|---:|" + "---:|" * len(cells)]
    for row in rows:
        size = f"{row['bytes'] / 2**20:.2f}" if "bytes" in row else "-"
        if "error" in row:
            lines.append(f"| {row['variant']} | {size} | {row['error']} |")
            continue
        timed = " | ".join(f"{row['latency'][cell][figure]:.2f}" for cell in cells)
        lines.append(f"| {row['variant']} | {size} | {row['lstm']} | {row[agreement_key]:.4f} | "
                     f"{timed} |")
    return "\n".join(lines)


def meets_int8_rule(row, threads):
    """The issue's rule for student_int8.tflite: < 5 MB, agrees with Keras on >=
    MIN_INT8_AGREEMENT, and with the default delegate not slower than fp32 at any thread
    count."""
    agreement = row.get("tag_agreement", row.get("label_agreement", 0.0))
    return ("latency" in row and row["bytes"] < MAX_INT8_BYTES
            and agreement >= tflite.MIN_INT8_AGREEMENT
            and all(row["latency"][f"xnnpack_{n}t"]["x_fp32"] <= 1.0 for n in threads))


def convert_variants(manifest, check_set, agreement_key):
    """(rows, {variant: flatbuffer} of those that run): every VARIANTS entry described."""
    keras_logits = export.load_student(manifest).predict(check_set[1], verbose=0)
    static_student = export.load_student(manifest, batch_size=1)
    rows, flats = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        static = tflite.save_static_batch_student(
            static_student, int(static_student.input.shape[1]), tmp)
        for name in VARIANTS:
            row, flat = describe_variant(name, static, check_set, keras_logits, agreement_key)
            rows.append(row)
            if flat is not None:
                flats[name] = flat
            logging.info("tflite_variants: %s", row)
    return rows, flats


def add_latency(rows, times, threads):
    """Adds each timed row's "latency" ({cell: summarise's figures}) and "rounds_ms"; returns
    the noise: median and worst cell spread."""
    summary = summarise(times)
    for row in rows:
        cells = {f"{resolver}_{n}t": (row["variant"], resolver, n)
                 for resolver in RESOLVERS for n in threads}
        if cells and next(iter(cells.values())) in times:
            row["latency"] = {name: summary[cell] for name, cell in cells.items()}
            row["rounds_ms"] = {name: [round(t, 3) for t in times[cell]]
                                for name, cell in cells.items()}
    spreads = [cell["spread"] for cell in summary.values()]
    return {"cell_spread_median": round(float(np.median(spreads)), 3),
            "cell_spread_max": round(float(np.max(spreads)), 3)}


def main(argv):
    del argv
    threads = [int(n) for n in FLAGS.threads]
    manifest = Manifest.read(FLAGS.model_dir)
    transfer = export.calibration_set(
        manifest, tflite.CALIBRATION_SENTENCES + tflite.CHECK_SENTENCES)
    if transfer is None or len(transfer[0]) < 4:
        raise ValueError(f"{FLAGS.model_dir}: its transfer_file {manifest.options.transfer_file!r} "
                         "is missing or nearly empty; calibration needs its sentences.")
    check_set = tflite.split_check_set(transfer)
    agreement_key = ("tag_agreement" if tasks.get(manifest.task).student_output == "tokens"
                     else "label_agreement")
    rows, flats = convert_variants(manifest, check_set, agreement_key)
    sentences = check_set[1][:FLAGS.sentences]
    load_before = os.getloadavg()[0]
    times = time_round_robin(flats, sentences, threads, FLAGS.rounds, FLAGS.seed)
    noise = dict(add_latency(rows, times, threads),
                 load_average_1min_before_after=[load_before, os.getloadavg()[0]])
    passing = [row["variant"] for row in rows if meets_int8_rule(row, threads)]
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump({"model_dir": FLAGS.model_dir, "rounds": FLAGS.rounds,
                   "sentences_per_cell": len(sentences), "threads": threads, "noise": noise,
                   "meet_int8_rule": passing, "rows": rows}, f, indent=1)
    print(table(rows, threads, agreement_key))
    print(table(rows, threads, agreement_key, "x_fp32"))
    print(f"ms a sentence, batch 1, median of {FLAGS.rounds} round-robin rounds of "
          f"{len(sentences)} held-out sentences; noise: cell spread (p75-p25)/median "
          f"{noise['cell_spread_median']:.1%} median, {noise['cell_spread_max']:.1%} worst; "
          f"load average {load_before:.1f} before, {noise['load_average_1min_before_after'][1]:.1f}"
          f" after ({os.cpu_count()} CPUs)")
    print(f"< {MAX_INT8_BYTES / 2**20:.0f} MB, agree >= {tflite.MIN_INT8_AGREEMENT} and not "
          f"slower than fp32 with XNNPACK: {', '.join(passing) or 'none'}")
    print(f"written: {FLAGS.output}")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main)
