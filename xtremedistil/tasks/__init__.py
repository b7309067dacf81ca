"""Tasks: what is predicted from what, and how it is read, encoded, lost and scored.

A task owns reading its labeled files and transfer set, encoding examples with the teacher's
tokenizer (ids, masks, label ids and their weights), the teacher's head class, the teacher
outputs a recipe may distil, its label loss, its metric and the printed results. The pipeline
never branches on the task: it calls this interface. To add a task, write a module with a
`Task` subclass and register it in `TASKS` below.

Legend: N examples, T seq_len, H teacher hidden size, C labels.
"""

import dataclasses
import os

import numpy as np
import transformers
from absl import logging

from xtremedistil import data as data_lib
from xtremedistil import registry


@dataclasses.dataclass
class Labeled:
    """The labeled splits of a task and its label list."""
    train: list
    dev: list
    test: list
    labels: list
    skipped: int  # bad examples skipped (--skip_bad_lines)


@dataclasses.dataclass
class Encoded:
    """Examples encoded with the teacher's tokenizer."""
    input_ids: np.ndarray  # [N, T] int32 teacher piece ids
    attention_mask: np.ndarray  # [N, T] int32, 1 at real pieces
    label_ids: np.ndarray  # [N, T] int32 (tagging) or [N] (classification)
    label_weights: np.ndarray  # same shape as label_ids, float32: where the label loss counts
    masks: dict  # name -> [N, T] float32: positions a transfer objective may distil
    truncated: int  # examples cut by seq_len
    extras: dict = dataclasses.field(default_factory=dict)  # task-specific (e.g. word_starts)
    token_type_ids: np.ndarray = None  # [N, T] int32 segment ids (pairs), else None
    # [N, T'] teacher piece ids laid out as the student reads them, when not input_ids (pairs:
    # each text on its own, [N, 2T]); the student's vocabulary maps them to its ids.
    student_pieces: np.ndarray = None

    def __post_init__(self):
        if self.student_pieces is None:
            self.student_pieces = self.input_ids

    def __len__(self):
        return len(self.input_ids)

    def teacher_inputs(self):
        """The teacher's inputs in its Keras models' order: ids, mask (and segment ids)."""
        inputs = [self.input_ids, self.attention_mask]
        return inputs + ([self.token_type_ids] if self.token_type_ids is not None else [])


class Task:
    """The interface; see tagging.TaggingTask and classification.ClassificationTask."""
    name = ""
    metric = ""  # key of the headline score in score()'s result, e.g. 'mean_f1'
    # Teacher outputs this task can give a recipe: name -> description.
    teacher_outputs = {}
    # What the student predicts (students.Dims.output): 'tokens' [T, C], 'sentence' or 'pair' [C].
    student_output = "tokens"
    segment_ids = False  # whether the teacher reads token_type_ids (pairs)

    def transfer_mask(self, options):
        """The Encoded.masks key that weights transfer-set objectives."""
        del options
        return "example"

    def student_head_weights(self, hf_model):
        """Weights the student's output layer may start from (the teacher's classifier when it
        maps the distilled hidden states to logits), or None."""
        del hf_model

    def read_labeled(self, options):
        """Labeled: train/dev/test examples and the label list."""
        raise NotImplementedError

    def transfer_examples(self, options):
        """A fresh iterator over the unlabeled transfer examples."""
        raise NotImplementedError

    def encode(self, examples, tokenizer, seq_len, labels=None):
        """Encoded examples; labels (a list) maps label names to ids when given."""
        raise NotImplementedError

    head = ""  # the transformers head of the teacher: TF<Auto|Base>For<head>

    def teacher_class(self, pt_teacher):
        """The transformers TF class with this task's head, from 'auto' or a class name; base
        classes (TFBertModel) map to their class with the head."""
        if pt_teacher == "auto":
            return getattr(transformers, f"TFAutoModelFor{self.head}")
        name = pt_teacher
        if name.endswith("Model"):
            name = name[:-len("Model")] + f"For{self.head}"
        if not hasattr(transformers, name):
            raise ValueError(f"--pt_teacher={pt_teacher}: transformers has no TF class {name}.")
        return getattr(transformers, name)

    def teacher_output_tensors(self, hf_outputs, layer):
        """{name: Keras tensor} of the teacher outputs, from a call with hidden states."""
        raise NotImplementedError

    def teacher_targets(self, encoded, every_piece=False):
        """(label ids, weights) the teacher fine-tunes on: the label loss's, or with
        every_piece (--teacher_recipe=paper) a label at every real piece."""
        if every_piece:
            raise ValueError(f"--teacher_recipe=paper: the {self.name} task has no label for "
                             "every piece.")
        return encoded.label_ids, encoded.label_weights

    def label_loss(self, label_ids, logits):
        """Per-position (or per-example) loss of the labels, weighted by label_weights."""
        raise NotImplementedError

    def score(self, logits, encoded, examples, labels):
        """Scores of predicted logits against the examples' labels, per language."""
        raise NotImplementedError

    def results_table(self, scores):
        """Markdown table of {model name: scores}."""
        raise NotImplementedError


def split_paths(options, split):
    """The files of a split: --<split>_file (comma-separated), else those in --task."""
    explicit = getattr(options, f"{split}_file")
    if explicit:
        return explicit.split(",")
    return [str(p) for p in data_lib.find_split_files(options.task, split)]


def read_labeled_splits(options, read_file, label_list):
    """Labeled train/dev/test of --task (or --<split>_file) and the label list.

    read_file(path, labels) -> data.Loaded (labels: the known labels, or None to accept any);
    label_list(labels.tsv's labels or None, train examples) -> the task's label list.
    Bad examples skipped under --skip_bad_lines are counted and logged with examples.
    """
    labels_path = os.path.join(options.task, "labels.tsv") if options.task else ""
    given = (data_lib.read_labels(labels_path)
             if labels_path and os.path.exists(labels_path) else None)

    def read(split, labels):
        examples, skipped = [], 0
        for path in split_paths(options, split):
            loaded = read_file(path, labels)
            examples += loaded.sentences
            skipped += loaded.skipped
            if loaded.skipped:
                logging.warning("%s: skipped %d bad examples, e.g. %s", path, loaded.skipped,
                                "; ".join(loaded.skip_reasons[:3]))
        return examples, skipped

    train, skipped = read("train", given)
    labels = label_list(given, train)
    dev, dev_skipped = read("dev", labels)
    test, test_skipped = read("test", labels)
    return Labeled(train, dev, test, labels, skipped + dev_skipped + test_skipped)


def retention_table(scores, title, key, mean_key):
    """Markdown: language | teacher <title> | student <title> | (baseline) | retention, and the
    mean row; scores {model: {"per_language": {lang: {key: v}}, mean_key: v}}. A teacher never
    trained ({"trained": false}, --distil_mode=none) shows 'not trained' and no retention."""
    teacher, student = scores["teacher"], scores["student"]
    trained = teacher.get("trained", True)
    models = [teacher, student] + ([scores["baseline"]] if scores.get("baseline") else [])
    names = ["teacher", "student", "baseline"][:len(models)]
    lines = ["| language | " + " | ".join(f"{n} {title}" for n in names) + " | retention |",
             "|---" * (len(models) + 2) + "|"]

    def row(name, language):
        values = [None if m is teacher and not trained else m[mean_key] if language is None
                  else m["per_language"][language][key] for m in models]
        retention = (f"{100 * (values[1] / values[0] if values[0] else 0.0):.1f}%"
                     if trained else "-")
        cells = " | ".join("not trained" if v is None else f"{100 * v:.1f}" for v in values)
        return f"| {name} | {cells} | {retention} |"

    lines += [row(language, language)
              for language in (teacher if trained else student)["per_language"]]
    lines.append(row("mean", None))
    return "\n".join(lines)


TASKS = registry.Registry("task", {
    "tagging": "xtremedistil.tasks.tagging:TaggingTask",
    "classification": "xtremedistil.tasks.classification:ClassificationTask",
    "pairs": "xtremedistil.tasks.classification:PairTask",
})


def get(name):
    """A new instance of the registered task `name`."""
    return TASKS.get(name)()


def name_for(options):
    """The task of a run's options."""
    if options.do_NER:
        return "tagging"
    return "pairs" if options.do_pairwise else "classification"
