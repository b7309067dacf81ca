"""The XtremeDistil NER pipeline: data -> teacher -> student -> three stages -> evaluation.

Everything a run writes lives in `model_dir`:
  config.json       every option, the tag list, the student vocabulary
  teacher/          the fine-tuned teacher (reused when present)
  teacher_outputs/  teacher hidden states and logits on the transfer set, per chunk
  student/          weights per sub-stage, progress.json, best.h5
  metrics.json      scores per language, sizes, stage times
"""

import dataclasses
import hashlib
import itertools
import json
import os
import shutil
import time

import tensorflow as tf
import tf_keras
from absl import logging

from xtremedistil import data as data_lib
from xtremedistil import distribute
from xtremedistil import evaluate
from xtremedistil import features
from xtremedistil import losses
from xtremedistil import stages
from xtremedistil import student as student_lib
from xtremedistil import teacher as teacher_lib
from xtremedistil import teacher_cache
from xtremedistil import training

# Options that may change when a run resumes in an existing model_dir; all others must match.
MAY_CHANGE_ON_RESUME = ("model_dir", "strategy", "baseline", "checkpoint_steps")


@dataclasses.dataclass
class Config:
    """Options of a run; run_xtreme_distil.py fills them from its flags."""
    task: str = "data/demo"
    transfer_file: str = "data/demo/transfer.txt"
    model_dir: str = "models/demo"
    train_file: str = ""
    dev_file: str = ""
    test_file: str = ""
    data_format: str = "auto"
    tag_scheme: str = "iob2"
    encoding: str = "utf-8"
    language: str = ""
    skip_bad_lines: bool = False
    max_transfer: int = 0
    seq_len: int = 32
    pt_teacher: str = "auto"
    pt_teacher_checkpoint: str = ""
    teacher_layer: int = -1
    student_vocab: str = "full"
    word_emb_dim: int = 100
    bilstm_hidden_size: int = 128
    dropout_rate: float = 0.1
    ft_batch_size: int = 16
    ft_epochs: int = 10
    ft_learning_rate: float = 1e-4
    distil_batch_size: int = 32
    distil_epochs: int = 10
    distil_chunk_size: int = 10000
    distil_learning_rate: float = 1e-3
    logits_loss: str = "mse"
    temperature: float = 1.0
    patience: int = 2
    checkpoint_steps: int = 1000
    baseline: bool = False
    strategy: str = "mirrored"
    opt_policy: str = "float32"
    seed: int = 42


@dataclasses.dataclass
class Data:
    train: list
    dev: list
    test: list
    transfer_count: int  # the transfer sentences are streamed: see transfer_sentences
    tags: list
    skipped: int


def transfer_sentences(config):
    """A fresh iterator over the transfer sentences (at most --max_transfer)."""
    if not config.transfer_file:
        return iter(())
    sentences = data_lib.iter_transfer_file(config.transfer_file, encoding=config.encoding,
                                            language=config.language or None)
    return itertools.islice(sentences, config.max_transfer or None)


def _split_paths(config, split):
    explicit = getattr(config, f"{split}_file")
    if explicit:
        return explicit.split(",")
    return [str(p) for p in data_lib.find_split_files(config.task, split)]


def _read_split(config, split, labels):
    sentences, skipped = [], 0
    for path in _split_paths(config, split):
        loaded = data_lib.read_labeled_file(
            path, data_format=config.data_format, labels=labels,
            skip_bad_lines=config.skip_bad_lines, encoding=config.encoding,
            tag_scheme=config.tag_scheme, language=config.language or None)
        sentences += loaded.sentences
        skipped += loaded.skipped
    return sentences, skipped


def load_data(config):
    """Reads train/dev/test, the tag set and the transfer sentences; logs what was skipped."""
    labels_path = os.path.join(config.task, "labels.tsv") if config.task else ""
    labels = data_lib.read_labels(labels_path) if labels_path and os.path.exists(labels_path) else None
    train, skipped = _read_split(config, "train", labels)
    tags = labels or data_lib.derive_labels(train)
    if "O" in tags:
        tags = ["O"] + [t for t in tags if t != "O"]
    dev, dev_skipped = _read_split(config, "dev", tags)
    test, test_skipped = _read_split(config, "test", tags)
    # A first streaming pass counts the transfer set and finds undecodable bytes early.
    transfer_count = sum(1 for _ in transfer_sentences(config))
    if transfer_count < 2:
        raise ValueError(f"--transfer_file={config.transfer_file}: distillation needs unlabeled "
                         f"sentences; found {transfer_count}.")
    skipped += dev_skipped + test_skipped
    logging.info("data: %d train, %d dev, %d test, %d transfer sentences; %d tags; "
                 "%d bad sentences skipped", len(train), len(dev), len(test), transfer_count,
                 len(tags), skipped)
    return Data(train, dev, test, transfer_count, tags, skipped)


def check_model_dir(config):
    """Fails early on an unwritable model_dir or one trained with other options."""
    probe = os.path.join(config.model_dir, ".write_test")
    try:
        os.makedirs(config.model_dir, exist_ok=True)
        with open(probe, "w", encoding="utf-8") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ValueError(f"--model_dir={config.model_dir} is not writable: {error}") from error
    path = os.path.join(config.model_dir, "config.json")
    options = dataclasses.asdict(config)
    if not os.path.exists(path):
        training.write_json_atomically(path, {"options": options})  # before any training, so a resume can check
        return
    with open(path, encoding="utf-8") as f:
        previous = json.load(f)["options"]
    changed = [k for k in options
               if k not in MAY_CHANGE_ON_RESUME and previous.get(k) != options[k]]
    if changed:
        raise ValueError(
            f"--model_dir={config.model_dir} holds a run with other options "
            f"({', '.join(f'--{k}={previous.get(k)!r}' for k in changed)}); "
            "use those options to resume, or a new --model_dir.")


def _needed_bytes(config, hf_model, transfer_sentences):
    """Disk a run needs: teacher copies (fine-tuned + 2 checkpoints) and stored outputs."""
    teacher_bytes = 3 * 4 * student_lib.count_params(hf_model)
    width = hf_model.config.hidden_size + hf_model.config.num_labels
    outputs_bytes = transfer_sentences * config.seq_len * (2 * width + 8)
    return teacher_bytes + outputs_bytes + 100 * 2**20


def check_disk_space(model_dir, needed):
    free = shutil.disk_usage(model_dir).free
    if free < needed:
        raise ValueError(f"--model_dir={model_dir}: {free / 2**20:.0f} MiB free, the run needs "
                         f"about {needed / 2**20:.0f} MiB (teacher checkpoints and teacher "
                         "outputs on the transfer set). Free space or choose another folder.")


def _labels_dataset(student_ids, encoded, batch_size, seed=None):
    dataset = tf.data.Dataset.from_tensor_slices(
        (student_ids, encoded.label_ids, encoded.label_mask))
    if seed is not None:
        dataset = dataset.shuffle(len(student_ids), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size)


def _fine_tuned_teacher(config, data, encoded, tokenizer, strategy, replicas):
    """Loads the fine-tuned teacher from model_dir, or fine-tunes and saves it."""
    folder = os.path.join(config.model_dir, "teacher")
    checkpoint = folder if teacher_lib.is_finetuned(folder) else config.pt_teacher_checkpoint
    with strategy.scope():
        hf_model = teacher_lib.load_teacher(checkpoint, len(data.tags), config.pt_teacher)
        tagger, distiller = teacher_lib.keras_models(hf_model, config.seq_len,
                                                     config.teacher_layer)
    if checkpoint == folder:
        logging.info("teacher: fine-tuned in an earlier run, loaded from %s", folder)
        return hf_model, tagger, distiller, 0.0
    started = time.time()

    def dev_f1():
        return _scores(tagger.predict, encoded["dev"], data.dev, data.tags,
                       config.ft_batch_size * replicas)["mean_f1"]

    check_disk_space(config.model_dir, _needed_bytes(config, hf_model, data.transfer_count))
    checkpoints = os.path.join(config.model_dir, "teacher_checkpoints")
    teacher_lib.fine_tune(tagger, encoded["train"], dev_f1, strategy,
                          epochs=config.ft_epochs, batch_size=config.ft_batch_size * replicas,
                          learning_rate=config.ft_learning_rate, patience=config.patience,
                          folder=checkpoints, checkpoint_steps=config.checkpoint_steps,
                          seed=config.seed)
    teacher_lib.save(hf_model, tokenizer, folder)
    teacher_lib.finish_fine_tuning(checkpoints)
    return hf_model, tagger, distiller, time.time() - started


def _scores(predict, encoded, sentences, tags, batch_size):
    return evaluate.evaluate_tagger(
        lambda e: predict([e.input_ids, e.attention_mask], batch_size=batch_size, verbose=0),
        encoded, sentences, tags)


def _student_scores(student, student_ids, encoded, sentences, tags, batch_size):
    return evaluate.evaluate_tagger(
        lambda _: student.predict(student_ids, batch_size=batch_size, verbose=0),
        encoded, sentences, tags)


def weights_fingerprint(model):
    """A short hash of the model's weights: equal on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]


def run(config):
    """Trains teacher and student, evaluates both per language, writes model_dir; returns metrics."""
    config = dataclasses.replace(
        config, pt_teacher_checkpoint=config.pt_teacher_checkpoint or teacher_lib.default_checkpoint())
    strategy = distribute.make_strategy(config.strategy)  # first: multi_worker must precede ops
    with distribute.worker_model_dir(config.model_dir, strategy) as model_dir:
        config = dataclasses.replace(config, model_dir=model_dir)
        check_model_dir(config)
        tf_keras.utils.set_random_seed(config.seed)
        tf_keras.mixed_precision.set_global_policy(config.opt_policy)
        try:
            return _run(config, strategy)
        finally:
            tf_keras.mixed_precision.set_global_policy("float32")


def _run(config, strategy):
    started = time.time()
    data = load_data(config)
    replicas = strategy.num_replicas_in_sync
    logging.info("strategy: %s with %d replicas", config.strategy, replicas)

    # === Data to word pieces ===
    tokenizer = teacher_lib.load_tokenizer(config.pt_teacher_checkpoint)
    tag_to_id = {tag: i for i, tag in enumerate(data.tags)}
    encoded = {name: features.encode(sentences, tokenizer, config.seq_len, tag_to_id)
               for name, sentences in (("train", data.train), ("dev", data.dev),
                                       ("test", data.test))}

    # === Teacher ===
    hf_model, tagger, distiller, teacher_seconds = _fine_tuned_teacher(
        config, data, encoded, tokenizer, strategy, replicas)
    eval_batch = config.distil_batch_size * replicas
    teacher_scores = _scores(tagger.predict, encoded["test"], data.test, data.tags, eval_batch)
    logging.info("teacher: test mean F1 %.4f", teacher_scores["mean_f1"])

    # === Teacher outputs on the transfer set, once, streamed chunk by chunk ===
    outputs_started = time.time()
    train_paths, val_paths = teacher_cache.store_outputs(
        transfer_sentences(config), tokenizer, config.seq_len, distiller,
        os.path.join(config.model_dir, "teacher_outputs"), config.distil_chunk_size, eval_batch)
    outputs_seconds = time.time() - outputs_started
    truncated = {name: e.truncated for name, e in encoded.items()}
    truncated["transfer"] = teacher_cache.truncated_count(train_paths + val_paths)
    logging.info("sentences longer than --seq_len=%d word pieces (truncated for the model, "
                 "scored in full): %s", config.seq_len, truncated)

    # === Student ===
    teacher_vocab_size = hf_model.config.vocab_size
    if config.student_vocab == "full":
        vocab = features.StudentVocab.full(teacher_vocab_size, tokenizer.pad_token_id,
                                           tokenizer.unk_token_id)
    else:
        vocab = features.StudentVocab.from_ids(
            itertools.chain([encoded["train"].input_ids],
                            teacher_cache.read_field(train_paths + val_paths, "input_ids")),
            tokenizer.pad_token_id, tokenizer.unk_token_id)
    student_id_table = vocab.lookup_table(teacher_vocab_size)
    student_ids = {name: student_id_table[e.input_ids] for name, e in encoded.items()}
    embeddings = student_lib.factorise_embeddings(
        teacher_lib.word_embeddings(hf_model), vocab.teacher_ids, config.word_emb_dim)
    teacher_hidden_size = distiller.outputs[0].shape[-1]

    def build():
        with strategy.scope():
            return student_lib.build_student(
                len(vocab), config.seq_len, len(data.tags), teacher_hidden_size,
                config.word_emb_dim, config.bilstm_hidden_size, config.dropout_rate, embeddings)

    student = build()
    if teacher_lib.is_last_layer(hf_model, config.teacher_layer):
        # Stage 1 teaches the projection the teacher's last hidden states, which the teacher's
        # classifier maps to its logits: the student's output layer starts as that classifier.
        head = teacher_lib.classifier_weights(hf_model)
        if head is not None:
            student.get_layer("logits").set_weights(head)
    training.write_json_atomically(os.path.join(config.model_dir, "config.json"), {
        "options": dataclasses.asdict(config), "tags": data.tags,
        "student_vocab": tokenizer.convert_ids_to_tokens(vocab.teacher_ids.tolist()),
        "teacher_hidden_size": int(teacher_hidden_size),
        "teacher_vocab_size": int(teacher_vocab_size),
        "do_lower_case": bool(getattr(tokenizer, "do_lower_case", False))})

    # === Stages ===
    batch = config.distil_batch_size * replicas
    labels_data = (_labels_dataset(student_ids["train"], encoded["train"], batch, config.seed),
                   _labels_dataset(student_ids["dev"], encoded["dev"], batch))

    def stage_settings(folder_name):
        settings = stages.StageSettings(
            folder=os.path.join(config.model_dir, folder_name), strategy=strategy,
            batch_size=batch, epochs=config.distil_epochs, patience=config.patience,
            learning_rate=config.distil_learning_rate, checkpoint_steps=config.checkpoint_steps,
            dev_f1=lambda model: _student_scores(model, student_ids["dev"], encoded["dev"],
                                                 data.dev, data.tags, batch)["mean_f1"])
        os.makedirs(settings.folder, exist_ok=True)
        return settings, stages.Progress(settings.folder)

    settings, progress = stage_settings("student")
    transfer = lambda target, paths, seed: teacher_cache.dataset(paths, target, batch,
                                                                 student_id_table, seed)
    records = stages.distil_representation(
        student, transfer("hidden", train_paths, config.seed),
        transfer("hidden", val_paths, None), settings, progress)
    records += stages.distil_logits(
        student, transfer("logits", train_paths, config.seed),
        transfer("logits", val_paths, None), settings, progress,
        losses.logits_loss(config.logits_loss, config.temperature))
    records += stages.train_on_labels(student, *labels_data, settings, progress)
    best = stages.load_best(student, settings, progress)
    logging.info("student: best on dev after stage %s (dev F1 %.4f)", best["name"], best["dev_f1"])
    test_scores = lambda model: _student_scores(model, student_ids["test"], encoded["test"],
                                                data.test, data.tags, batch)
    baseline_scores = None
    if config.baseline:
        # The same student shape and initialisation, trained on the labeled data alone.
        logging.info("baseline: a student trained without distillation")
        baseline = build()
        baseline_settings, baseline_progress = stage_settings("student_baseline")
        records += stages.train_baseline(baseline, *labels_data, baseline_settings,
                                         baseline_progress)
        stages.load_best(baseline, baseline_settings, baseline_progress)
        baseline_scores = test_scores(baseline)

    # === Evaluation ===
    logging.info("student: weights fingerprint %s", weights_fingerprint(student))
    student_scores = test_scores(student)
    params = {"teacher": student_lib.count_params(hf_model),
              "student": student_lib.count_params(student)}
    metrics = {
        "teacher": teacher_scores, "student": student_scores, "params": params,
        "compression": params["teacher"] / params["student"],
        "truncated_sentences": sum(truncated.values()), "skipped_sentences": data.skipped,
        "best_stage": best["name"], "replicas": replicas,
        "stages": [{"name": "teacher_fine_tuning", "seconds": round(teacher_seconds, 2),
                    "best_val_loss": None},
                   {"name": "teacher_outputs", "seconds": round(outputs_seconds, 2),
                    "best_val_loss": None}]
                  + [{k: r[k] for k in ("name", "seconds", "best_val_loss")} for r in records],
        "seconds": round(time.time() - started, 2),
    }
    if baseline_scores is not None:
        metrics["baseline"] = baseline_scores
    training.write_json_atomically(os.path.join(config.model_dir, "metrics.json"), metrics)
    print(evaluate.results_table(teacher_scores, student_scores))
    print(f"parameters: teacher {params['teacher']:,}, student {params['student']:,} "
          f"({metrics['compression']:.1f}x smaller)")
    return metrics
