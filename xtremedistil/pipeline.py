"""The distillation pipeline: data -> teacher -> teacher outputs -> student -> recipe -> scores.

The task, the student and the recipe are looked up by name (tasks/, students/, recipes/); the
pipeline never branches on them. Everything a run writes lives in `model_dir`:
  config.json       the manifest: every option, the labels, the student vocabulary
  teacher/          the fine-tuned teacher (reused when present)
  teacher_outputs/  the teacher outputs the recipe distils, on the transfer set, per chunk
                    (in a multi-worker run, each worker writes its own share of the chunks)
  student/          weights per stage, progress.json, initial.h5, best.h5
  metrics.json      scores per language, sizes, stage times
"""

import dataclasses
import hashlib
import itertools
import json
import os
import shutil
import time
import weakref

import h5py
import numpy as np
import tensorflow as tf
import tf_keras
from absl import logging

from xtremedistil import augment
from xtremedistil import console
from xtremedistil import distribute
from xtremedistil import manifest as manifest_lib
from xtremedistil import options as options_lib
from xtremedistil import recipes
from xtremedistil import runner
from xtremedistil import schedules
from xtremedistil import students
from xtremedistil import tasks
from xtremedistil import teacher as teacher_lib
from xtremedistil import teacher_cache
from xtremedistil import teacher_zoo
from xtremedistil import training
from xtremedistil.students import vocab as vocab_lib


@dataclasses.dataclass
class Data:
    labeled: tasks.Labeled
    transfer_count: int  # the transfer set is streamed: see Task.transfer_examples
    encoded: dict  # split name -> tasks.Encoded


@dataclasses.dataclass
class Teacher:
    hf_model: object
    tokenizer: object
    predictor: tf_keras.Model  # (input_ids, attention_mask) -> logits
    distiller: tf_keras.Model  # (input_ids, attention_mask) -> {output name: tensor}
    fingerprint: str
    seconds: float  # fine-tuning time (0 when reused)
    layers: tuple  # the teacher layers of the 'layers' output (--layer_map), when distilled
    attention_layers: tuple = ()  # those of the stored 'attention' output, when distilled
    online: dict = dataclasses.field(default_factory=dict)  # output -> OnlineTeacher
    trained: bool = True  # False: pre-trained only, never run (a recipe distilling nothing)


@dataclasses.dataclass
class TransferOutputs:
    train_paths: list  # this worker's share (all of them on one machine)
    val_paths: list
    train_count: int  # training examples in every worker's share
    seconds: float
    per_worker: list  # {"worker", "sentences" its teacher ran on in this run, "seconds"}
    online: dict = dataclasses.field(default_factory=dict)  # output -> OnlineTeacher

    @classmethod
    def none(cls):
        """No transfer set: the recipe distils nothing."""
        return cls([], [], 0, 0.0, [])


@dataclasses.dataclass
class BuiltStudent:
    student: students.Student
    model: tf_keras.Model
    vocab: vocab_lib.StudentVocab
    id_table: np.ndarray  # [V_t] student id of each teacher id
    dims: students.Dims
    ids: dict  # split name -> student ids [N, T]
    initial_weights: str  # the initialisation shared by the student and the baseline


# What metrics.json (and the results table) give as the scores of a teacher never trained.
UNTRAINED_TEACHER_SCORES = {"trained": False}


# === Phases ===

def check_model_dir(options):
    """Fails early on an unwritable model_dir or one trained with other options."""
    probe = os.path.join(options.model_dir, ".write_test")
    try:
        os.makedirs(options.model_dir, exist_ok=True)
        with open(probe, "w", encoding="utf-8") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ValueError(f"--model_dir={options.model_dir} is not writable: {error}") from error
    try:
        previous = manifest_lib.Manifest.read(options.model_dir, require_trained=False).options
    except manifest_lib.NotTrainedError:
        manifest_lib.Manifest(options).write()  # before any training, so a resume can check
        return
    changed = [k for k, v in options.to_dict().items()
               if k not in options_lib.MAY_CHANGE_ON_RESUME and getattr(previous, k) != v]
    if changed:
        raise ValueError(
            f"--model_dir={options.model_dir} holds a run with other options "
            f"({', '.join(f'--{k}={getattr(previous, k)!r}' for k in changed)}); "
            "use those options to resume, or a new --model_dir.")


def load_data(options, task, tokenizer, reads_transfer=True):
    """Reads and encodes the labeled splits; counts the transfer set (a streaming pass that
    also finds undecodable bytes early) unless the recipe does not read it."""
    labeled = task.read_labeled(options)
    transfer_count = sum(1 for _ in task.transfer_examples(options)) if reads_transfer else 0
    if reads_transfer and transfer_count < 2:
        raise ValueError(f"--transfer_file={options.transfer_file}: distillation needs "
                         f"unlabeled sentences; found {transfer_count}.")
    encoded = {name: task.encode(examples, tokenizer, options.seq_len, labeled.labels)
               for name, examples in (("train", labeled.train), ("dev", labeled.dev),
                                      ("test", labeled.test))}
    logging.info("data: %d train, %d dev, %d test, %d transfer examples; %d labels; "
                 "%d bad examples skipped", len(labeled.train), len(labeled.dev),
                 len(labeled.test), transfer_count, len(labeled.labels), labeled.skipped)
    return Data(labeled, transfer_count, encoded)


def check_disk_space(options, hf_model, data, fine_tuned, folder, layers, attention_layers):
    """Fails unless model_dir has room for what this run still writes: teacher copies (the
    fine-tuned one and 2 checkpoints, unless reused) and the teacher outputs (in `folder`)."""
    teacher_bytes = 0 if fine_tuned else 3 * 4 * students.count_params(hf_model)
    width = hf_model.config.hidden_size * (1 + len(layers)) + len(data.labeled.labels)
    examples = augment.stored_examples(data.transfer_count, options.augment_transfer)
    outputs_bytes = (examples * options.seq_len * (2 * width + 8)
                     + teacher_cache.attention_bytes(
                         examples, attention_maps(options, attention_layers), options.seq_len))
    stored = sum(e.stat().st_size for e in os.scandir(folder)) if os.path.isdir(folder) else 0
    needed = teacher_bytes + max(0, outputs_bytes - stored) + 100 * 2**20
    free = shutil.disk_usage(options.model_dir).free
    if free < needed:
        raise ValueError(f"--model_dir={options.model_dir}: {free / 2**20:.0f} MiB free, the "
                         f"run needs about {needed / 2**20:.0f} MiB more (teacher checkpoints "
                         "and teacher outputs on the transfer set). Free space or choose "
                         "another folder.")


def teacher_layers(options, hf_model, outputs):
    """(teacher layers of the 'layers' output, of the 'attention' output): those the student
    layers learn (--layer_map), () for an output not distilled."""
    teacher_layers_count = teacher_lib.num_layers(hf_model)
    layers = (teacher_lib.layer_map(options.layer_map, options.num_hidden_layers,
                                    teacher_layers_count) if "layers" in outputs else ())
    attention_layers = (teacher_lib.attention_layer_map(
        options.layer_map, options.num_hidden_layers, options.attention_student_layers,
        teacher_layers_count) if "attention" in outputs else ())
    return layers, attention_layers


def attention_maps(options, attention_layers):
    """How many [T, T] attention maps a transfer example's 'attention' output holds."""
    return len(attention_layers) * options.attention_maps_per_layer


def online_outputs(options, data, outputs, attention_layers):
    """The outputs the teacher computes on each batch instead of storing them: the attention
    maps, when the transfer set's would take more than --attention_cache_mb."""
    if "attention" not in outputs:
        return ()
    size = teacher_cache.attention_bytes(
        augment.stored_examples(data.transfer_count, options.augment_transfer),
        attention_maps(options, attention_layers), options.seq_len)
    if size <= options.attention_cache_mb * 2**20:
        return ()
    logging.info("teacher outputs: the attention maps would take %.0f MiB, more than "
                 "--attention_cache_mb=%d: the teacher computes them on each batch of the "
                 "attention stage", size / 2**20, options.attention_cache_mb)
    return ("attention",)


def prepare_teacher(options, task, data, tokenizer, strategy, outputs, outputs_folder):
    """The fine-tuned teacher from model_dir, or fine-tuned now and saved there; its
    distiller gives the `outputs` to store, its `online` models the others."""
    folder = os.path.join(options.model_dir, "teacher")
    fine_tuned = teacher_lib.is_finetuned(folder)
    checkpoint = folder if fine_tuned else options.pt_teacher_checkpoint
    with strategy.scope():
        hf_model = teacher_lib.load_teacher(checkpoint, len(data.labeled.labels),
                                            task.teacher_class(options.pt_teacher))
    layers, attention_layers = teacher_layers(options, hf_model, outputs)
    online_names = online_outputs(options, data, outputs, attention_layers)
    stored = [name for name in outputs if name not in online_names]
    stored_attention = attention_layers if "attention" in stored else ()

    def models():
        return teacher_lib.keras_models(hf_model, task, options.teacher_layer, stored, layers,
                                        stored_attention, options.attention_maps_per_layer)
    with strategy.scope():
        predictor, distiller = models()
    if distribute.worker_share(strategy)[1] > 1:
        # Each worker runs the teacher on its own share, so outside the strategy: its predict
        # gathers every worker's batch, a collective that needs the same batches on all.
        _, distiller = models()
    # Online outputs run outside the strategy too: on each worker's own batches.
    online = {name: teacher_lib.OnlineTeacher(
        teacher_lib.keras_models(hf_model, task, options.teacher_layer, (name,), layers,
                                 attention_layers, options.attention_maps_per_layer)[1], name,
        tokenizer.pad_token_id, options.seq_len) for name in online_names}
    check_disk_space(options, hf_model, data, fine_tuned, outputs_folder, layers,
                     stored_attention)
    started = time.time()
    if fine_tuned:
        logging.info("teacher: fine-tuned in an earlier run, loaded from %s", folder)
    else:
        batch = options.ft_batch_size * strategy.num_replicas_in_sync
        checkpoints = os.path.join(options.model_dir, "teacher_checkpoints")
        teacher_lib.fine_tune(
            predictor, task, data.encoded["train"],
            lambda: score(task, predictor, data, "dev", batch)[task.metric], strategy,
            epochs=options.ft_epochs, batch_size=batch, learning_rate=options.ft_learning_rate,
            patience=options.patience, folder=checkpoints,
            checkpoint_steps=options.checkpoint_steps, seed=options.seed,
            callbacks=[console.EpochProgress("teacher", options.ft_epochs)],
            recipe=options.teacher_recipe)
        teacher_lib.save(hf_model, tokenizer, folder)
        teacher_lib.finish_fine_tuning(checkpoints)
    return Teacher(hf_model, tokenizer, predictor, distiller,
                   training.weights_fingerprint(hf_model), time.time() - started, layers,
                   stored_attention, online)


def load_untrained_teacher(options, task, data, tokenizer):
    """The pre-trained teacher of a recipe that distils nothing (--distil_mode=none), neither
    fine-tuned nor run: its tokenizer goes to model_dir/teacher (export reads the student's
    pieces with it), its word embeddings may start the student (--compress_word_embedding)."""
    hf_model = teacher_lib.load_teacher(options.pt_teacher_checkpoint, len(data.labeled.labels),
                                        task.teacher_class(options.pt_teacher))
    teacher_lib.save_tokenizer(tokenizer, os.path.join(options.model_dir, "teacher"))
    return Teacher(hf_model, tokenizer, None, None, training.weights_fingerprint(hf_model),
                   0.0, (), trained=False)


def store_teacher_outputs(options, task, teacher, strategy, outputs, folder, transfer_count):
    """The teacher's `outputs` on this worker's share of the transfer set (`transfer_count`
    examples), computed once per chunk into `folder`; per worker, the sentences its teacher ran
    on and the seconds."""
    started = time.time()
    val_every = teacher_cache.validation_every(transfer_count)
    stamp = {"teacher": teacher.fingerprint, "outputs": list(outputs),
             "teacher_layer": options.teacher_layer, "seq_len": options.seq_len,
             "val_every": val_every,
             "augment": [options.augment_transfer, options.seed] if options.augment_transfer else 0}
    if teacher.layers:
        stamp["layers"] = list(teacher.layers)
    if teacher.attention_layers:
        stamp["attention_layers"] = list(teacher.attention_layers)
        stamp["attention_maps_per_layer"] = options.attention_maps_per_layer
    worker, workers = distribute.worker_share(strategy)
    who = f"worker {worker} of {workers}: " if workers > 1 else ""

    def progress(split, index, count):
        logging.info("teacher outputs: %s%s chunk %d (%d examples) written", who, split,
                     index + 1, count)

    stored = teacher_cache.store_outputs(
        task.transfer_examples(options), task, teacher.tokenizer, options.seq_len,
        teacher.distiller, folder, options.distil_chunk_size,
        options.distil_batch_size * strategy.num_replicas_in_sync, stamp, progress,
        share=(worker, workers),
        after_stamp_check=(lambda: distribute.barrier(strategy)) if workers > 1 else None,
        val_every=val_every, augment=augment.ChunkCopies(
            options.augment_transfer, options.seed,
            teacher.tokenizer.mask_token or teacher.tokenizer.unk_token)
        if options.augment_transfer else None)
    seconds = time.time() - started
    logging.info("teacher outputs: %s%d examples run through the teacher in %.1f s (%d of "
                 "the %d training examples in this share)", who, stored.computed, seconds,
                 stored.share_count, stored.train_count)
    table = np.zeros((workers, 2))
    table[worker] = stored.computed, seconds
    table = distribute.sum_over_workers(strategy, table)
    per_worker = [{"worker": k, "sentences": int(n), "seconds": round(float(t), 2)}
                  for k, (n, t) in enumerate(table)]
    return TransferOutputs(stored.train_paths, stored.val_paths, stored.train_count, seconds,
                           per_worker, teacher.online)


def build_student(options, task, teacher, data, transfer, strategy, distils_last_layer):
    """The student model, its vocabulary and the initialisation the baseline shares."""
    tokenizer, hf_model = teacher.tokenizer, teacher.hf_model
    teacher_vocab_size = hf_model.config.vocab_size
    if options.student_vocab == "full":
        vocab = vocab_lib.StudentVocab.full(teacher_vocab_size, tokenizer.pad_token_id,
                                            tokenizer.unk_token_id)
    else:
        # Every worker's share of the transfer set counts (each worker holds its own).
        counts = distribute.sum_over_workers(strategy, vocab_lib.count_ids(
            teacher_cache.read_field(transfer.train_paths, "input_ids"), teacher_vocab_size))
        counts += vocab_lib.count_ids(itertools.chain(
            [data.encoded["train"].student_pieces],
            teacher_cache.read_field(transfer.val_paths, "input_ids")), teacher_vocab_size)
        vocab = vocab_lib.StudentVocab.from_counts(
            counts, tokenizer.pad_token_id, tokenizer.unk_token_id, options.student_vocab_size)
    id_table = vocab.lookup_table(teacher_vocab_size)
    student = students.get(options)
    dims = student_dims(options, task, data, teacher, vocab)
    folder = os.path.join(options.model_dir, "student")
    initial_weights = os.path.join(folder, "initial.h5")
    with strategy.scope():
        model = student.build(dims, initial_word_embeddings(options, hf_model, vocab))
    if os.path.exists(initial_weights):
        model.load_weights(initial_weights)
    else:
        pieces = tokenizer.convert_ids_to_tokens(vocab.teacher_ids.tolist())
        if options.init_student_from:
            start_from_run(model, options.init_student_from, student, task.name,
                           data.labeled.labels, pieces)
        else:
            if options.pt_student_checkpoint:
                student.load_checkpoint(model, options.pt_student_checkpoint, pieces)
            head = task.student_head_weights(hf_model)
            if options.head_init == "teacher" and distils_last_layer and head is not None:
                model.get_layer("logits").set_weights(head)
        os.makedirs(folder, exist_ok=True)
        training.save_weights_atomically(model, initial_weights)
    ids = {name: id_table[e.student_pieces] for name, e in data.encoded.items()}
    return BuiltStudent(student, model, vocab, id_table, dims, ids, initial_weights)


def start_from_run(model, run_dir, student, task_name, labels, pieces):
    """Sets `model` to the best student of the finished run `run_dir` (--init_student_from), every
    layer it has; layers only this run adds (e.g. --distil_multi_hidden_states' maps) keep
    their initialisation. That run must share the task, labels and student vocabulary (pieces:
    this run's, in student id order)."""
    source = manifest_lib.Manifest.read(run_dir)
    flag = f"--init_student_from={run_dir}"
    if source.task != task_name or list(source.labels) != list(labels):
        raise ValueError(f"{flag}: a {source.task} run over the labels {source.labels}, not "
                         f"{task_name} over {list(labels)}.")
    if source.student_vocab != pieces:
        raise ValueError(f"{flag}: its student vocabulary ({len(source.student_vocab)} pieces) "
                         f"is not this run's ({len(pieces)}); the same teacher, data and "
                         "--student_vocab options give the same one.")
    with h5py.File(source.student_weights, "r") as f:
        stored = {name.decode() if isinstance(name, bytes) else name
                  for name in f.attrs["layer_names"]}
    missing = sorted(name for names in student.layer_groups.values() for name in names
                     if name not in stored)
    if missing:
        raise ValueError(f"{flag}: its student has no layers {missing} (another --student?).")
    try:
        model.load_weights(source.student_weights, by_name=True)
    except ValueError as e:
        raise ValueError(f"{flag}: {e} Give this run that run's student shape.") from e


def initial_word_embeddings(options, hf_model, vocab):
    """[V_s, E] the student's first word embeddings: the teacher's compressed by PCA
    (--compress_word_embedding, --pca_rescale), or None (random)."""
    if not options.compress_word_embedding:
        return None
    return vocab_lib.factorise_embeddings(teacher_lib.word_embeddings(hf_model),
                                          vocab.teacher_ids, options.word_emb_dim,
                                          rescale=options.pca_rescale)


def student_dims(options, task, data, teacher, vocab):
    hidden = teacher.distiller.output.get("hidden") if teacher.distiller is not None else None
    return students.Dims(len(vocab), options.seq_len, len(data.labeled.labels),
                         int(hidden.shape[-1]) if hidden is not None
                         else teacher.hf_model.config.hidden_size, task.student_output)


def write_manifest(options, task, data, teacher, built):
    manifest_lib.Manifest(
        options, task=task.name, labels=data.labeled.labels,
        student_vocab=teacher.tokenizer.convert_ids_to_tokens(built.vocab.teacher_ids.tolist()),
        teacher_hidden_size=built.dims.teacher_hidden_size,
        teacher_vocab_size=int(teacher.hf_model.config.vocab_size),
        do_lower_case=bool(getattr(teacher.tokenizer, "do_lower_case", False)),
        teacher_fingerprint=teacher.fingerprint).write()


def distil(options, task, stages, built, model, data, transfer, strategy, folder, phases):
    """Runs `stages` on `model` (the student or a baseline of its shape) under `folder`."""
    replicas = strategy.num_replicas_in_sync
    batch = options.distil_batch_size * replicas

    def plan(stage):
        objective = stage.objective
        if objective.on_transfer_set:
            return _plan(options, _transfer_train(options, objective, built, transfer, strategy),
                         teacher_cache.dataset(transfer.val_paths, objective.target,
                                               objective.mask, batch, built.id_table,
                                               online=transfer.online.get(objective.target)),
                         transfer.train_count, batch, options.distil_epochs, "loss")
        # Stages on labels (--label_stage_sizes, --label_stage_monitor).
        fine_tuning = options.label_stage_sizes == "fine_tuning"
        labels_batch = replicas * (options.ft_batch_size if fine_tuning
                                   else options.distil_batch_size)

        def train_labels(epoch):
            return _labels_dataset(built.ids["train"], data.encoded["train"], labels_batch,
                                   options.seed, epoch)
        return _plan(options, train_labels,
                     _labels_dataset(built.ids["dev"], data.encoded["dev"], labels_batch),
                     len(built.ids["train"]), labels_batch,
                     options.ft_epochs if fine_tuning else options.distil_epochs,
                     options.label_stage_monitor)

    settings = runner.Settings(
        folder=os.path.join(options.model_dir, folder), strategy=strategy, plan=plan,
        patience=options.patience, checkpoint_steps=options.checkpoint_steps,
        dev_score=lambda m: student_score(task, m, built.ids["dev"], data, "dev", batch)[
            task.metric],
        # The steps: a streamed transfer set's epoch has no length Keras knows (progress lines
        # would say "batch N" with no time left).
        announce=phases.start, callbacks=lambda stage, stage_plan: [console.EpochProgress(
            stage.name, stage_plan.epochs, stage_plan.steps_per_epoch or None)])
    return runner.run_stages(stages, built.student, model, settings)


def _transfer_train(options, objective, built, transfer, strategy):
    """epoch -> the transfer set's training data for `objective`: all of it on one machine; in
    a multi-worker run each worker's own share (training.WorkerShard), as many steps on every
    worker as one machine would take over the whole set."""
    batch = options.distil_batch_size * strategy.num_replicas_in_sync
    workers = distribute.worker_share(strategy)[1]

    def read(epoch, worker_batch, rows=None):
        return teacher_cache.dataset(transfer.train_paths, objective.target, objective.mask,
                                     worker_batch, built.id_table, options.seed, epoch, rows,
                                     online=transfer.online.get(objective.target))
    if workers == 1:
        return lambda epoch: read(epoch, batch)
    steps = -(-transfer.train_count // batch)
    worker_batch = batch // workers  # this worker's rows in a step: its local replicas'
    return lambda epoch: training.WorkerShard(read(epoch, worker_batch, steps * worker_batch),
                                              steps, options.distil_batch_size, strategy)


def _plan(options, train, validation, examples, batch, epochs, monitor):
    """A stage's runner.Plan, with its learning rate (--lr_schedule) over its steps."""
    steps_per_epoch = -(-examples // batch)
    return runner.Plan(train, validation, epochs, schedules.student(
        options.lr_schedule, options.distil_learning_rate, epochs, steps_per_epoch), monitor,
        steps_per_epoch)


def _labels_dataset(student_ids, encoded, batch_size, seed=None, epoch=0):
    dataset = tf.data.Dataset.from_tensor_slices(
        (student_ids, encoded.label_ids, encoded.label_weights))
    if seed is not None:
        dataset = training.shuffled(dataset, len(student_ids), seed, epoch)
    return dataset.batch(batch_size)


def score(task, predictor, data, split, batch_size):
    """The task's scores of the teacher on a split."""
    encoded = data.encoded[split]
    logits = teacher_lib.predict(predictor, encoded, batch_size)
    return task.score(logits, encoded, getattr(data.labeled, split), data.labeled.labels)


def teacher_test_scores(options, task, teacher, data, batch_size):
    """The teacher's test scores, kept in teacher/test_scores.json for the same teacher weights
    and test examples: scoring a large test split takes the teacher minutes, and a resumed run
    or a student-only experiment (the benchmarks' --reuse_teacher_from) needs them again."""
    encoded = data.encoded["test"]
    digest = hashlib.sha256(encoded.input_ids.tobytes())
    # Gold labels and languages; not the sentences' file paths, which differ between runs.
    digest.update(repr([{k: v for k, v in vars(example).items() if k != "source"}
                        for example in data.labeled.test]).encode())
    stamp = {"teacher": teacher.fingerprint, "test": digest.hexdigest()[:16]}
    path = os.path.join(options.model_dir, "teacher", "test_scores.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
        if cached["stamp"] == stamp:
            logging.info("teacher: test scores of this teacher and test set from %s", path)
            return cached["scores"]
    logging.info("teacher: scoring %d test examples", len(data.labeled.test))
    scores = score(task, teacher.predictor, data, "test", batch_size)
    training.write_json_atomically(path, {"stamp": stamp, "scores": scores})
    return scores


# Student model -> its logits view: one view, so its predict function is traced once a run.
_LOGITS_VIEWS = weakref.WeakKeyDictionary()


def student_score(task, model, student_ids, data, split, batch_size):
    """The task's scores of a student model on a split.

    Only the logits are computed: a transformer student's layer and attention outputs over a
    large split do not fit in memory (91k PAN-X test sentences: over 24 GB).
    """
    if model not in _LOGITS_VIEWS:
        _LOGITS_VIEWS[model] = students.output_model(model, "logits")
    report = training.ProgressLog(f"student ({split})", "examples", len(student_ids))
    progress = tf_keras.callbacks.LambdaCallback(on_predict_batch_end=lambda step, _: (
        report.update(min((step + 1) * batch_size, len(student_ids)))))
    logits = _LOGITS_VIEWS[model].predict(
        student_ids, batch_size=batch_size, verbose=0, callbacks=[progress])
    return task.score(logits, data.encoded[split], getattr(data.labeled, split),
                      data.labeled.labels)


# === The run ===

def run(options, given=None):
    """Trains teacher and student, evaluates both per language, writes model_dir; returns metrics.

    The recipe's option preset (e.g. --recipe=paper) sets every option not in `given` (the
    names the user chose; None: those that differ from Options' defaults), see
    recipes.apply_preset; config.json records the options the run used.
    """
    options = recipes.apply_preset(options.validate(), given).validate()
    options = options.replace(
        pt_teacher_checkpoint=teacher_zoo.resolve_checkpoint(options.pt_teacher_checkpoint))
    strategy = distribute.make_strategy(options.strategy)  # first: multi_worker must precede ops
    # Every worker writes its share of the teacher outputs here, where a restart finds it.
    outputs_folder = os.path.join(options.model_dir, "teacher_outputs")
    with distribute.worker_model_dir(options.model_dir, strategy) as model_dir:
        options = options.replace(model_dir=model_dir)
        check_model_dir(options)
        tf_keras.utils.set_random_seed(options.seed)
        tf_keras.mixed_precision.set_global_policy(options.opt_policy)
        try:
            return _run(options, strategy, outputs_folder)
        finally:
            tf_keras.mixed_precision.set_global_policy("float32")


def teacher_phases(options, task, data, tokenizer, strategy, outputs, outputs_folder, phases):
    """The phases 'teacher' and 'teacher_outputs': (Teacher, its test scores, TransferOutputs).

    With no output to distil the pre-trained teacher is only loaded (its tokenizer and
    embeddings): its scores say {"trained": false} and there is no transfer set.
    """
    batch = options.distil_batch_size * strategy.num_replicas_in_sync
    if not outputs:
        phases.start("teacher", f"{options.pt_teacher_checkpoint}: not fine-tuned, the recipe "
                     "distils nothing (its tokenizer and word embeddings only)")
        teacher = load_untrained_teacher(options, task, data, tokenizer)
        phases.start("teacher_outputs", "none: the transfer set is not read")
        return teacher, UNTRAINED_TEACHER_SCORES, TransferOutputs.none()
    phases.start("teacher", f"{options.pt_teacher_checkpoint}, fine-tuned on the labeled data")
    teacher = prepare_teacher(options, task, data, tokenizer, strategy, outputs, outputs_folder)
    teacher_scores = teacher_test_scores(options, task, teacher, data, batch)
    logging.info("teacher: test %s %.4f", task.metric, teacher_scores[task.metric])
    stored = [name for name in outputs if name not in teacher.online]
    phases.start("teacher_outputs", f"{', '.join(stored) or 'the pieces alone'} on "
                 f"{data.transfer_count:,} transfer examples"
                 + (f" and {options.augment_transfer} augmented "
                    f"cop{'y' if options.augment_transfer == 1 else 'ies'} of each training one"
                    if options.augment_transfer else "")
                 + "".join(f"; {name} computed on each batch" for name in teacher.online))
    transfer = store_teacher_outputs(options, task, teacher, strategy, stored, outputs_folder,
                                     data.transfer_count)
    return teacher, teacher_scores, transfer


def _run(options, strategy, outputs_folder):
    started = time.time()
    task = tasks.get(tasks.name_for(options))
    student = students.get(options)
    stages = recipes.get(recipes.name_for(options))(task, student, options)
    baseline_stages = recipes.get("labels_only")(task, student, options) if options.baseline else []
    outputs = recipes.teacher_outputs_needed(stages)
    phases = console.Phases(4 + len(stages) + len(baseline_stages) + 1)
    replicas = strategy.num_replicas_in_sync
    batch = options.distil_batch_size * replicas

    phases.start("data", f"reading and encoding ({options.strategy} strategy, {replicas} "
                 f"replica{'s' if replicas > 1 else ''})")
    tokenizer = teacher_lib.load_tokenizer(options.pt_teacher_checkpoint)
    # A recipe that distils nothing (--distil_mode=none) needs no teacher pass, no transfer set.
    data = load_data(options, task, tokenizer, reads_transfer=bool(outputs))
    teacher, teacher_scores, transfer = teacher_phases(options, task, data, tokenizer, strategy,
                                                       outputs, outputs_folder, phases)
    phases.start("student", f"building the {options.student} student")
    built = build_student(options, task, teacher, data, transfer, strategy,
                          teacher.trained and teacher_lib.is_last_layer(teacher.hf_model,
                                                                        options.teacher_layer))
    write_manifest(options, task, data, teacher, built)
    records, best = distil(options, task, stages, built, built.model, data, transfer, strategy,
                           "student", phases)
    logging.info("student: best on dev after stage %s (dev %s %.4f)", best["name"],
                 task.metric, best["dev_score"])
    baseline_scores = None
    if baseline_stages:
        with strategy.scope():
            baseline = built.student.build(built.dims)
        baseline.load_weights(built.initial_weights)  # the student's initialisation
        records += distil(options, task, baseline_stages, built, baseline, data, transfer,
                          strategy, "student_baseline", phases)[0]
        baseline_scores = student_score(task, baseline, built.ids["test"], data, "test", batch)

    phases.start("evaluation", "scoring on test")
    logging.info("student: weights fingerprint %s", training.weights_fingerprint(built.model))
    student_scores = student_score(task, built.model, built.ids["test"], data, "test", batch)
    # The student as deployed: what its logits need, not the training-only layer maps
    # (--distil_multi_hidden_states) that its 'layers' output adds.
    params = {"teacher": students.count_params(teacher.hf_model),
              "student": students.count_params(students.output_model(built.model, "logits"))}
    truncated = (sum(e.truncated for e in data.encoded.values())
                 + int(distribute.sum_over_workers(
                     strategy, teacher_cache.truncated_count(transfer.train_paths)))
                 + teacher_cache.truncated_count(transfer.val_paths))
    metrics = {
        "task": task.name, "student_type": options.student, "recipe": options.recipe,
        "distil_mode": options.distil_mode,
        "teacher": teacher_scores, "student": student_scores, "params": params,
        "compression": params["teacher"] / params["student"],
        "truncated_sentences": truncated, "skipped_sentences": data.labeled.skipped,
        "best_stage": best["name"], "replicas": replicas,
        "stages": ([{"name": "teacher_fine_tuning", "seconds": round(teacher.seconds, 2),
                     "best_val_loss": None},
                    {"name": "teacher_outputs", "seconds": round(transfer.seconds, 2),
                     "best_val_loss": None}] if teacher.trained else [])
                  + [{k: r[k] for k in ("name", "seconds", "best_val_loss", "best_val_accuracy",
                                         "dev_score") if k in r} for r in records],
        "teacher_outputs_per_worker": transfer.per_worker,
        "seconds": round(time.time() - started, 2),
    }
    if transfer.online:
        # Seconds the teacher spent on the batches of stages whose outputs were not stored.
        metrics["online_teacher"] = {name: online.record()
                                     for name, online in transfer.online.items()}
    scores = {"teacher": teacher_scores, "student": student_scores}
    if baseline_scores is not None:
        metrics["baseline"] = scores["baseline"] = baseline_scores
    training.write_json_atomically(os.path.join(options.model_dir, "metrics.json"), metrics)
    print(task.results_table(scores))
    print(f"parameters: teacher {params['teacher']:,}, student {params['student']:,} "
          f"({metrics['compression']:.1f}x smaller)")
    return metrics
