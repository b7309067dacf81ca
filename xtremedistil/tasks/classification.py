"""Sentence and sentence-pair classification (Mukherjee & Awadallah 2020, "Distilling BERT into
Simple Neural Networks with Unlabeled Transfer Data"): a label per text, or per pair of texts;
accuracy and macro F1 per language.

The teacher (a transformers ...ForSequenceClassification) reads the text, or the pair with its
segment ids, and classifies it from its first position; its 'hidden' output is that position's
state in --teacher_layer. The student reads the text, or each text of a pair on its own
(Encoded.student_pieces [N, 2T]), and classifies its pooled BiLSTM states (students/bilstm.py).

Legend: N examples, T seq_len pieces, H teacher hidden size, C labels.
"""

import collections
import itertools

import numpy as np
import tf_keras
from sklearn import metrics

from xtremedistil import data as data_lib
from xtremedistil import tasks


class ClassificationTask(tasks.Task):
    name = "classification"
    head = "SequenceClassification"
    metric = "mean_accuracy"
    teacher_outputs = {"hidden": "state of the first piece ([CLS]) in --teacher_layer [H]",
                       "logits": "class logits [C]"}
    student_output = "sentence"
    pairwise = False

    # === Data ===

    def read_labeled(self, options):
        """Reads train/dev/test and the labels (labels.tsv, else the train labels, sorted)."""
        def read_file(path, labels):
            return data_lib.read_text_file(
                path, pairwise=self.pairwise, labels=labels, skip_bad_lines=options.skip_bad_lines,
                encoding=options.encoding, language=options.language or None)

        return tasks.read_labeled_splits(
            options, read_file, lambda given, train: given or data_lib.derive_text_labels(train))

    def transfer_examples(self, options):
        """A fresh iterator over the transfer texts (at most --max_transfer)."""
        if not options.transfer_file:
            return iter(())
        texts = data_lib.iter_text_transfer_file(options.transfer_file, self.pairwise,
                                                 options.encoding, options.language or None)
        return itertools.islice(texts, options.max_transfer or None)

    def encode(self, examples, tokenizer, seq_len, labels=None):
        return encode(examples, tokenizer, seq_len, self.pairwise,
                      None if labels is None else {label: i for i, label in enumerate(labels)})

    # === Teacher ===

    def teacher_output_tensors(self, hf_outputs, layer):
        return {"hidden": hf_outputs.hidden_states[layer][:, 0, :], "logits": hf_outputs.logits}

    # === Loss and scores ===

    def label_loss(self, label_ids, logits):
        """Sparse cross-entropy per example, [B]."""
        return tf_keras.losses.sparse_categorical_crossentropy(label_ids, logits,
                                                               from_logits=True)

    def score(self, logits, encoded, examples, labels):
        """{"per_language": {lang: {accuracy, macro_f1, examples}}, "mean_accuracy",
        "mean_macro_f1"} (means over languages)."""
        del labels
        predicted = np.argmax(logits, axis=-1)
        rows = collections.defaultdict(list)
        for row, example in enumerate(examples):
            rows[example.language].append(row)
        per_language = {}
        for language in sorted(rows):
            gold, guess = encoded.label_ids[rows[language]], predicted[rows[language]]
            per_language[language] = {
                "accuracy": float(np.mean(gold == guess)),
                "macro_f1": float(metrics.f1_score(gold, guess, average="macro",
                                                   zero_division=0)),
                "examples": len(gold)}
        return {"per_language": per_language,
                **{f"mean_{key}": float(np.mean([s[key] for s in per_language.values()]))
                   if per_language else 0.0 for key in ("accuracy", "macro_f1")}}

    def results_table(self, scores):
        """language | teacher accuracy | student accuracy | retention (and the baseline's)."""
        return tasks.retention_table(scores, "accuracy", "accuracy", "mean_accuracy")


class PairTask(ClassificationTask):
    """Sentence pairs: 'text_a<TAB>text_b<TAB>label'; the teacher reads them with segment ids."""
    name = "pairs"
    student_output = "pair"
    segment_ids = True
    pairwise = True


def encode(examples, tokenizer, seq_len, pairwise, label_to_id=None):
    """Encoded examples: the teacher's pieces of each text (pair: both, with segment ids, cut
    longest first), the student's (pair: each text alone, [N, 2T]), one label each.

    An example counts as truncated when the teacher's or the student's pieces were cut.
    """
    texts = [e.text for e in examples]
    texts_b = [e.text_b for e in examples] if pairwise else None

    def pieces(*text_lists, pad=True):
        return tokenizer(*text_lists, truncation=pad, max_length=seq_len if pad else None,
                         padding="max_length" if pad else False,
                         return_token_type_ids=pairwise)

    teacher = pieces(texts, texts_b)
    lengths = [len(ids) for ids in pieces(texts, texts_b, pad=False)["input_ids"]]
    input_ids = np.asarray(teacher["input_ids"], np.int32)
    student_pieces = input_ids
    if pairwise:
        student_pieces = np.concatenate([np.asarray(pieces(t)["input_ids"], np.int32)
                                         for t in (texts, texts_b)], axis=1)
        lengths = np.maximum(lengths, [max(len(a), len(b)) for a, b in zip(
            pieces(texts, pad=False)["input_ids"], pieces(texts_b, pad=False)["input_ids"])])
    n = len(examples)
    label_ids = np.zeros(n, np.int32)
    if label_to_id is not None and n and examples[0].label is not None:
        label_ids[:] = [label_to_id[e.label] for e in examples]
    ones = np.ones(n, np.float32)
    return tasks.Encoded(
        input_ids, np.asarray(teacher["attention_mask"], np.int32), label_ids, ones,
        {"example": ones}, int(np.sum(np.asarray(lengths) > seq_len)),
        token_type_ids=np.asarray(teacher["token_type_ids"], np.int32) if pairwise else None,
        student_pieces=student_pieces)
