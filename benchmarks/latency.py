"""Parameters, size on disk and CPU latency: teachers against the student and its exports.

  python benchmarks/latency.py --model_dir=models/demo --output=benchmarks/out/latency.json

Rows, all at --seq_len word pieces:
  teacher (fine-tuned)   model_dir/teacher, transformers TF, called through tf.function
  mBERT-base (random)    BertConfig of bert-base-multilingual-cased (vocab 119547, hidden 768,
                         12 layers, 12 heads, intermediate 3072), random weights, built locally,
                         with the task's head (token or sequence classification)
  student (Keras)        the tf-keras BiLSTM student, through tf.function
  SavedModel student_ids / SavedModel sentences   the exported signatures (the second
                         tokenises raw sentences in the graph); for WordPiece and
                         SentencePiece teachers, the ones export writes a SavedModel for
  TFLite fp32/fp16/int8  ai_edge_litert, fixed batch 1: batch figures run the batch sentence
                         by sentence (variables reset before each, as apps must)
  ONNX (onnxruntime)     export/onnx/student.onnx in onnxruntime's CPU provider, 2 intra-op
                         threads, whole batches at once (dynamic batch); skipped without
                         tf2onnx and onnxruntime
A classification run (config.json's task) times the same rows on its test texts: the
teachers read a text (a pair: both texts, with segment ids, in --seq_len pieces), the student
and its exports a text's --seq_len pieces (a pair: 2 x --seq_len, each text on its own), the
SavedModel 'sentences' row raw texts (pairs: 'sentences' and 'sentences_b').
Latency is the median of timed calls after a warm-up call; batch figures are milliseconds per
sentence at each --batch_sizes (32 and 256), online figures milliseconds for one sentence
(batch 1). TF runs with its default threads (all cores), LiteRT with num_threads=2. The
speed-up ratios use the largest batch size.
Writes the JSON to --output and a bar chart beside it (same name, .png).
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# pylint: disable=wrong-import-position
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
import transformers
from absl import app
from absl import flags
from absl import logging

from xtremedistil import export, predict, students, tasks
from xtremedistil import teacher as teacher_lib
from xtremedistil import teacher_zoo
from xtremedistil.export import onnx
from xtremedistil.export import tflite
from xtremedistil.manifest import Manifest
# pylint: enable=wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", "models/demo", "A trained model_dir (exported when needed).")
flags.DEFINE_string("output", "benchmarks/out/latency.json",
                    "JSON file to write; the chart goes beside it with a .png suffix.")
flags.DEFINE_integer("seq_len", 32, "Word pieces per sentence; must be the model's seq_len "
                     "for the SavedModel and TFLite rows (they have it built in).")
flags.DEFINE_integer("repeats", 10, "Timed calls per figure after the warm-up (fewer for slow "
                     "calls, see --budget_seconds).")
flags.DEFINE_float("budget_seconds", 60.0,
                   "Stop timing a figure after this many seconds (at least 2 timed calls), so "
                   "mBERT-base at batch 256 stays within a few minutes on 2 cores.")
flags.DEFINE_list("batch_sizes", ["32", "256"],
                  "Batch sizes of the batch figures; the largest gives the speed-up ratios "
                  "(tradeoff.py reads batch 32).")
flags.register_validator("batch_sizes", lambda sizes: sizes and all(
    size.isdigit() and int(size) > 0 for size in sizes), "--batch_sizes: positive integers")
MBERT_BASE = dict(vocab_size=119547, hidden_size=768, num_hidden_layers=12,
                  num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512)
TARGETS = {"params": 35.0, "batch_speedup": 51.0, "int8_bytes": 5 * 2**20}


def median_ms(call, repeats, budget_seconds):
    """Median milliseconds of call() after one warm-up call; stops early past the budget."""
    call()
    times, started = [], time.perf_counter()
    while len(times) < repeats and (len(times) < 2
                                    or time.perf_counter() - started < budget_seconds):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return 1000 * statistics.median(times)


def batch_sizes():
    """--batch_sizes as ints, in increasing order."""
    return sorted(int(size) for size in FLAGS.batch_sizes)


def timings(run_batch, inputs_for, repeats, budget_seconds):
    """{"batch_ms_per_sentence": {"32": x, "256": y}, "online_ms": z} of run_batch(inputs)."""
    batch = {}
    for size in batch_sizes():
        inputs = inputs_for(size)
        batch[str(size)] = median_ms(lambda: run_batch(inputs), repeats, budget_seconds) / size
    online = inputs_for(1)
    return {"batch_ms_per_sentence": batch,
            "online_ms": median_ms(lambda: run_batch(online), max(repeats, 20), budget_seconds)}


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


# === Inputs ===

class Inputs:
    """Test sentences of the task tiled to any batch size: raw text, teacher and student ids.

    The run's test split, read with its own data options and encoded as training did.
    text: the serving signature's inputs, {"sentences": [N] (NER: the words joined by spaces;
    classification: the text)} and for pairs "sentences_b"; teacher_inputs: input_ids,
    attention_mask (and token_type_ids for pairs), [N, T] each.
    """

    def __init__(self, manifest, seq_len):
        task = tasks.get(manifest.task)
        examples = task.read_labeled(manifest.options).test
        self.student_ids, encoded = export.encode(manifest, examples, seq_len)
        self.teacher_inputs = encoded.teacher_inputs()
        if task.student_output == "tokens":
            self.text = {"sentences": [" ".join(s.tokens) for s in examples]}
        else:
            self.text = {"sentences": [e.text for e in examples]}
            if task.student_output == "pair":
                self.text["sentences_b"] = [e.text_b for e in examples]
        self.text = {name: np.asarray(texts, object) for name, texts in self.text.items()}

    def rows(self, size):
        return np.arange(size) % len(self.student_ids)

    def teacher(self, size):
        rows = self.rows(size)
        return tuple(ids[rows] for ids in self.teacher_inputs)

    def student(self, size):
        return self.student_ids[self.rows(size)]

    def sentences(self, size):
        rows = self.rows(size)
        return {name: list(texts[rows]) for name, texts in self.text.items()}


# === Models ===

def teacher_row(name, hf_model, inputs, seq_len, file_bytes):
    spec = tf.TensorSpec([None, seq_len], tf.int32)
    # The run's teacher ids may lie past a smaller vocabulary (multilingual-e5-small's 250k
    # pieces into mBERT's 119,547): folded into it, since only the time is measured.
    vocab_size = hf_model.config.vocab_size
    names = ("input_ids", "attention_mask", "token_type_ids")[:len(inputs.teacher_inputs)]

    @tf.function(input_signature=[spec] * len(names))
    def logits(input_ids, *rest):
        return hf_model(input_ids=input_ids % vocab_size, **dict(zip(names[1:], rest)),
                        training=False).logits

    params = students.count_params(hf_model)
    figures = timings(lambda x: logits(*x).numpy(), inputs.teacher, FLAGS.repeats,
                      FLAGS.budget_seconds)
    return dict(model=name, params=params, file_bytes=file_bytes or 4 * params, **figures)


def mbert_base(num_labels, task):
    """mBERT-base's shape with random weights and the task's head."""
    config = transformers.BertConfig(num_labels=num_labels, **MBERT_BASE)
    model = task.teacher_class("TFBertModel")(config)
    model(model.dummy_inputs, training=False)
    return model


def student_rows(manifest, inputs, seq_len):
    student = export.load_student(manifest, seq_len=seq_len)
    params = students.count_params(student)
    input_len = export.student_dims(manifest, seq_len).input_len  # pairs: 2 * seq_len
    logits = tf.function(lambda ids: student(ids, training=False),
                         input_signature=[tf.TensorSpec([None, input_len], tf.int32)])
    rows = [dict(model="student (Keras)", params=params,
                 file_bytes=os.path.getsize(manifest.student_weights),
                 **timings(lambda ids: logits(ids).numpy(), inputs.student, FLAGS.repeats,
                           FLAGS.budget_seconds))]
    return rows, params


def saved_model_rows(saved_model, inputs, params):
    loaded = tf.saved_model.load(saved_model)
    by_ids = loaded.signatures[export.STUDENT_IDS_SIGNATURE]
    by_text = loaded.signatures[export.SERVING_SIGNATURE]
    output = "tags" if "tags" in by_text.structured_outputs else "label"  # NER / classification
    size = folder_bytes(saved_model)

    def run_by_text(text):
        return by_text(**{name: tf.constant(texts) for name, texts in text.items()})[
            output].numpy()

    return [
        dict(model="SavedModel student_ids", params=params, file_bytes=size,
             **timings(lambda ids: by_ids(student_ids=tf.constant(ids))["logits"].numpy(),
                       inputs.student, FLAGS.repeats, FLAGS.budget_seconds)),
        dict(model="SavedModel sentences", params=params, file_bytes=size,
             **timings(run_by_text, inputs.sentences, FLAGS.repeats, FLAGS.budget_seconds)),
    ]


def exported_rows(manifest, inputs, params):
    tflite_dir = os.path.join(manifest.model_dir, "export", "tflite")
    if not os.path.exists(os.path.join(tflite_dir, tflite.SIDECAR)):
        export.export_all(manifest.model_dir)
    saved_model = predict.latest_saved_model(manifest.model_dir)
    if saved_model:
        rows = saved_model_rows(saved_model, inputs, params)
    else:  # export said why (a BPE teacher: no in-graph tokenizer)
        rows = []
        logging.warning("latency: no SavedModel in %s/export: its rows are skipped",
                        manifest.model_dir)
    for key, name in tflite.TFLITE_FILES.items():
        path = os.path.join(tflite_dir, name)
        # A 2-thread LiteRT interpreter with its default delegate (XNNPACK), as apps run it.
        interpreter = tflite.tflite_interpreter(path, num_threads=2, default_delegates=True)
        rows.append(dict(model=f"TFLite {key}", params=params, file_bytes=os.path.getsize(path),
                         **timings(lambda ids, i=interpreter: tflite.tflite_logits(i, ids),
                                   inputs.student, FLAGS.repeats, FLAGS.budget_seconds)))
    return rows + onnx_rows(manifest, inputs, params)


def onnx_rows(manifest, inputs, params):
    """The ONNX row (exported first when missing), or none without tf2onnx and onnxruntime."""
    path = os.path.join(manifest.model_dir, "export", "onnx", onnx.ONNX_FILE)
    if not os.path.exists(path) and not onnx.missing_packages():
        export.export_all(manifest.model_dir)
    if not os.path.exists(path):
        logging.warning("latency: no %s (%s not installed): the ONNX row is skipped", path,
                        ", ".join(onnx.missing_packages()))
        return []
    session = onnx.onnx_session(path, num_threads=2)
    return [dict(model="ONNX (onnxruntime)", params=params, file_bytes=os.path.getsize(path),
                 **timings(lambda ids: onnx.onnx_logits(session, ids), inputs.student,
                           FLAGS.repeats, FLAGS.budget_seconds))]


# === Report ===

def largest_batch(rows):
    """The largest batch size of the rows' figures, as their key ("256")."""
    return str(max(int(size) for size in rows[0]["batch_ms_per_sentence"]))


def ratios(rows):
    by_name = {row["model"]: row for row in rows}
    student = by_name["student (Keras)"]
    batch = largest_batch(rows)

    def over_student(name):
        row = by_name[name]
        return {"params": row["params"] / student["params"],
                "batch_speedup": (row["batch_ms_per_sentence"][batch]
                                  / student["batch_ms_per_sentence"][batch])}

    teacher_name = next(name for name in by_name if name.startswith("teacher ("))
    mbert, teacher = over_student("mBERT-base (random)"), over_student(teacher_name)
    return {"params_mbert_over_student": mbert["params"],
            "batch_speedup_mbert_over_student": mbert["batch_speedup"],
            "params_teacher_over_student": teacher["params"],
            "batch_speedup_teacher_over_student": teacher["batch_speedup"]}


def table(rows):
    sizes = list(rows[0]["batch_ms_per_sentence"])
    lines = ["| model | params | size MB | " + " | ".join(f"ms/sentence @{size}" for size in sizes)
             + " | online ms |", "|---|---:|---:|" + "---:|" * len(sizes) + "---:|"]
    for row in rows:
        batch = " | ".join(f"{row['batch_ms_per_sentence'][size]:.3f}" for size in sizes)
        lines.append(f"| {row['model']} | {row['params']:,} | {row['file_bytes'] / 2**20:.2f} | "
                     f"{batch} | {row['online_ms']:.2f} |")
    return "\n".join(lines)


def _verdict(value, target, at_least=True):
    return "holds" if (value >= target if at_least else value < target) else "MISSED"


def targets(rows, ratio):
    """The paper's claims as measured figures: >= 35x fewer params, >= 51x faster batch."""
    params = ratio["params_mbert_over_student"]
    speedup = ratio["batch_speedup_mbert_over_student"]
    lines = [f"params: mBERT-base / student = {params:.1f}x (target >= {TARGETS['params']:.0f}x: "
             f"{_verdict(params, TARGETS['params'])})",
             f"batch speed ({largest_batch(rows)}): mBERT-base / student = {speedup:.1f}x "
             f"(target >= "
             f"{TARGETS['batch_speedup']:.0f}x: {_verdict(speedup, TARGETS['batch_speedup'])})"]
    for row in rows:
        if row["model"] == "TFLite int8":
            size = row["file_bytes"]
            lines.append(f"int8 TFLite: {size / 2**20:.2f} MB (target < 5 MB: "
                         f"{_verdict(size, TARGETS['int8_bytes'], at_least=False)})")
    return "\n".join(lines)


def chart(rows, path):
    names, batch = [row["model"] for row in rows], largest_batch(rows)
    panels = [("size on disk, MB", [row["file_bytes"] / 2**20 for row in rows]),
              (f"ms per sentence at batch {batch}\n(TFLite: one sentence at a time)",
               [row["batch_ms_per_sentence"][batch] for row in rows]),
              ("online ms (batch 1)", [row["online_ms"] for row in rows])]
    figure, axes = plt.subplots(1, len(panels), figsize=(16, 5))
    for axis, (title, values) in zip(axes, panels):
        axis.barh(names, values, color="tab:blue")
        axis.set_xscale("log")
        axis.set_title(title + ", log scale")
        axis.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run_teacher(manifest, num_labels, teacher_class):
    """(row name, model, weights bytes) of the run's teacher: the fine-tuned one, or for a run
    that fine-tuned none (--distil_mode=none) the pre-trained one (same shape, random head)."""
    if manifest.options.distil_mode != "none":
        return ("teacher (fine-tuned)",
                teacher_lib.load_teacher(manifest.teacher_dir, num_labels, teacher_class),
                os.path.getsize(os.path.join(manifest.teacher_dir, teacher_lib.FINETUNED_WEIGHTS)))
    checkpoint = teacher_zoo.resolve_checkpoint(manifest.options.pt_teacher_checkpoint)
    return ("teacher (pre-trained; the run fine-tuned none)",
            teacher_lib.load_teacher(checkpoint, num_labels, teacher_class), None)


def main(argv):
    del argv
    if FLAGS.repeats < 2:
        raise ValueError("--repeats must be at least 2.")
    manifest = Manifest.read(FLAGS.model_dir)
    inputs = Inputs(manifest, FLAGS.seq_len)
    num_labels = len(manifest.labels)
    task = tasks.get(manifest.task)
    teacher_class = task.teacher_class(manifest.options.pt_teacher)
    name, teacher, file_bytes = run_teacher(manifest, num_labels, teacher_class)
    rows = [teacher_row(name, teacher, inputs, FLAGS.seq_len, file_bytes)]
    logging.info("latency: %s done", rows[-1]["model"])
    rows.append(teacher_row("mBERT-base (random)", mbert_base(num_labels, task), inputs,
                            FLAGS.seq_len, None))
    logging.info("latency: %s done", rows[-1]["model"])
    student, params = student_rows(manifest, inputs, FLAGS.seq_len)
    rows += student
    if FLAGS.seq_len == manifest.options.seq_len:
        rows += exported_rows(manifest, inputs, params)
    else:
        logging.warning("--seq_len=%d differs from the model's %d: SavedModel and TFLite rows "
                        "skipped (their seq_len is built in).", FLAGS.seq_len,
                        manifest.options.seq_len)
    ratio = ratios(rows)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "ratios": ratio}, f, indent=1)
    chart(rows, os.path.splitext(FLAGS.output)[0] + ".png")
    print(table(rows))
    print(targets(rows, ratio))
    print(f"written: {FLAGS.output} and {os.path.splitext(FLAGS.output)[0]}.png")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main)
