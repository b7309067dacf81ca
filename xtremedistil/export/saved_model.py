"""The SavedModel of a trained student: raw sentences in; one tag per word out (NER,
`StudentServer`), or one label per sentence or sentence pair (classification,
`ClassifierServer`, `PairClassifierServer`).

Legend: B sentences, N words in the batch, W most words in a sentence, T seq_len, C labels.

It splits raw text into words (`spans`) and tokenises in the graph exactly as training did (the
teacher's tokenizer: `graph_tokenizers`, BERT WordPiece or SentencePiece Unigram), so it needs
only TensorFlow and tensorflow_text (whose ops TF Serving's model server links in).
"""

import functools
import os
import shutil
import tempfile

import tensorflow as tf
import tensorflow_text as tf_text

from xtremedistil import tasks
from xtremedistil.export import spans
from xtremedistil.export import graph_tokenizers

SERVING_SIGNATURE = "serving_default"
STUDENT_IDS_SIGNATURE = "student_ids"
OUTSIDE_TAG = "O"  # tag of words cut off by seq_len


def untracked_call(student):
    """The student's inference call, hidden from tf.Module tracking.

    Saving a tf-keras model as a tracked attribute also serialises every layer's call
    functions (slow); tracking just its weights is all the signatures need.
    """
    return functools.partial(student, training=False)


class StudentServer(tf.Module):
    """The student behind two serving signatures; see `export_saved_model`."""

    def __init__(self, tokenizer, student, labels, seq_len):
        super().__init__(name="student_server")
        self.tokenizer = tokenizer
        self.student_weights = list(student.weights)
        self._student = untracked_call(student)
        self._labels = list(labels)
        self._seq_len = seq_len
        self.entities = spans.EntityMerger(labels)

    def words(self, sentences):
        """[B] raw sentences -> (valid UTF-8 sentences [B], words, start, end ragged [B, (W)],
        student ids [B, T], first-piece positions ragged [B, (W)])."""
        sentences = tf_text.coerce_to_structurally_valid_utf8(sentences)
        words, start, end = spans.split_words(sentences)
        student_ids, first_piece = self.tokenizer.encode_words(words)
        return sentences, words, start, end, student_ids, first_piece

    @tf.function(autograph=False)
    def serve(self, sentences):
        """[B] raw sentences -> word-level tags and probabilities [B, W] (padded with '' and 0),
        the words' character offsets, and the entities [B, E] merged from the tags."""
        sentences, words, start, end, student_ids, first_piece = self.words(sentences)
        probabilities = tf.nn.softmax(self._student(student_ids))  # [B, T, C]
        best_tag = tf.argmax(probabilities, axis=-1, output_type=tf.int32)  # [B, T]
        best_probability = tf.reduce_max(probabilities, axis=-1)  # [B, T]
        positions = first_piece.flat_values  # [N]
        cut_off = positions >= self._seq_len - 1
        where = tf.stack([words.value_rowids(), tf.minimum(positions, self._seq_len - 1)], -1)
        label_id = tf.gather_nd(best_tag, where)  # [N]
        tag = tf.where(cut_off, OUTSIDE_TAG, tf.gather(tf.constant(self._labels), label_id))
        probability = tf.where(cut_off, 1.0, tf.gather_nd(best_probability, where))  # [N]
        return {
            "words": words.to_tensor(default_value=""),  # [B, W]
            "tags": words.with_flat_values(tag).to_tensor(default_value=""),  # [B, W]
            "probabilities": words.with_flat_values(probability).to_tensor(0.0),  # [B, W]
            "num_words": tf.cast(words.row_lengths(), tf.int32),  # [B]
            "word_start": start.to_tensor(0),  # [B, W]
            "word_end": end.to_tensor(0),  # [B, W]
            **self.entities(sentences, start, end, words.with_flat_values(label_id), cut_off,
                            probability),  # [B, E], num_entities [B]
        }

    @tf.function(autograph=False)
    def serve_student_ids(self, student_ids):
        """[B, T] student ids -> logits [B, T, C]."""
        return {"logits": self._student(student_ids)}

    @tf.function(autograph=False)
    def tokenize(self, sentences):
        """[B] sentences -> student ids [B, T] and first-piece positions [B, W] (-1 padded)."""
        _, words, _, _, student_ids, first_piece = self.words(sentences)
        return {"student_ids": student_ids,
                "first_piece": first_piece.to_tensor(default_value=-1),
                "num_words": tf.cast(words.row_lengths(), tf.int32)}

    def signatures(self):
        """{'serving_default': sentences -> tags..., 'student_ids': ids -> logits}."""
        return server_signatures(self, self._seq_len)


class ClassifierServer(tf.Module):
    """A sentence classifier behind two serving signatures; see `export_saved_model`."""

    text_inputs = ("sentences",)  # the serving signature's string inputs, each [B]

    def __init__(self, tokenizer, student, labels, seq_len):
        super().__init__(name="classifier_server")
        self.tokenizer = tokenizer
        self.student_weights = list(student.weights)
        self._student = untracked_call(student)
        self._labels = list(labels)
        self._seq_len = seq_len

    def student_ids(self, *texts):
        """[B] texts (each input of text_inputs) -> student ids [B, input length]."""
        return tf.concat([self.tokenizer.text_ids(t) for t in texts], axis=1)

    def classify(self, student_ids):
        """[B, input length] ids -> {label [B], probabilities [B, C], labels [B, C]}."""
        probabilities = tf.nn.softmax(self._student(student_ids))  # [B, C]
        best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)  # [B]
        labels = tf.constant(self._labels)  # [C]
        return {"label": tf.gather(labels, best),  # [B]
                "probabilities": probabilities,  # [B, C]
                # One row per input, so every output has the batch dimension first (as TF
                # Serving's row format needs).
                "labels": tf.tile(labels[tf.newaxis, :], [tf.shape(best)[0], 1])}  # [B, C]

    @tf.function(autograph=False)
    def serve(self, sentences):
        """[B] sentences -> their labels and probabilities."""
        return self.classify(self.student_ids(sentences))

    @tf.function(autograph=False)
    def serve_student_ids(self, student_ids):
        """[B, T] student ids -> logits [B, C]."""
        return {"logits": self._student(student_ids)}

    @tf.function(autograph=False)
    def tokenize(self, sentences):
        """[B] sentences -> student ids [B, T]."""
        return {"student_ids": self.student_ids(sentences)}

    def signatures(self):
        """{'serving_default': texts -> label..., 'student_ids': ids -> logits}."""
        texts = [tf.TensorSpec([None], tf.string, name=name) for name in self.text_inputs]
        self.tokenize.get_concrete_function(*texts)  # saved as a plain function
        return {
            SERVING_SIGNATURE: self.serve.get_concrete_function(*texts),
            STUDENT_IDS_SIGNATURE: self.serve_student_ids.get_concrete_function(
                tf.TensorSpec([None, len(self.text_inputs) * self._seq_len], tf.int32,
                              name="student_ids")),
        }


class PairClassifierServer(ClassifierServer):
    """A sentence-pair classifier: each text tokenised on its own, [B, 2T] student ids."""

    text_inputs = ("sentences", "sentences_b")

    @tf.function(autograph=False)
    def serve(self, sentences, sentences_b):
        """[B] first texts, [B] second texts -> the pairs' labels and probabilities."""
        return self.classify(self.pair_ids(sentences, sentences_b))

    @tf.function(autograph=False)
    def tokenize(self, sentences, sentences_b):
        """[B] first texts, [B] second texts -> student ids [B, 2T]."""
        return {"student_ids": self.pair_ids(sentences, sentences_b)}

    def pair_ids(self, sentences, sentences_b):
        same = tf.debugging.assert_equal(
            tf.size(sentences), tf.size(sentences_b),
            message="sentences and sentences_b must hold as many texts")
        with tf.control_dependencies([same]):
            return self.student_ids(sentences, sentences_b)  # [B, 2T]


SERVERS = {"tokens": StudentServer, "sentence": ClassifierServer, "pair": PairClassifierServer}


def build_server(manifest, student):
    """The server of a trained run's task (tokenizer from model_dir/teacher): StudentServer
    (NER), ClassifierServer or PairClassifierServer; student is the logits-only Keras student
    (`export.load_student`)."""
    settings = graph_tokenizers.read_settings(manifest.teacher_dir, manifest.do_lower_case)
    seq_len = manifest.options.seq_len
    tokenizer = graph_tokenizers.build(settings, manifest.student_vocab,
                                       manifest.teacher_vocab_size, seq_len)
    server = SERVERS[tasks.get(manifest.task).student_output]
    return server(tokenizer, student, manifest.labels, seq_len)


def server_signatures(server, seq_len):
    """NER's {'serving_default': sentences -> tags..., 'student_ids': ids -> logits}."""
    sentences = tf.TensorSpec([None], tf.string, name="sentences")
    server.tokenize.get_concrete_function(sentences)  # saved as a plain function
    return {
        SERVING_SIGNATURE: server.serve.get_concrete_function(sentences),
        STUDENT_IDS_SIGNATURE: server.serve_student_ids.get_concrete_function(
            tf.TensorSpec([None, seq_len], tf.int32, name="student_ids")),
    }


def export_saved_model(manifest, export_dir, student):
    """Writes the SavedModel to export_dir (replaced whole, through a temporary folder).

    NER (tagging):
    serving_default: sentences tf.string [B] ->
      words          tf.string [B, W]  the whitespace-split words ('' past a sentence's end)
      tags           tf.string [B, W]  one tag per word ('' past the end; 'O' for words cut
                                       off by seq_len)
      probabilities  float32 [B, W]    softmax probability of each tag (0 past the end, 1 for
                                       cut-off words)
      num_words      int32 [B]         words of each sentence
    student_ids: student_ids int32 [B, T] -> logits float32 [B, T, C]

    Classification (pairs: also sentences_b, and 2T student ids, each text's T one after the
    other):
    serving_default: sentences tf.string [B] (raw text, tokenised as training did) ->
      label          tf.string [B]     the most probable label
      probabilities  float32 [B, C]    softmax probability of each label
      labels         tf.string [B, C]  the label names, the same row for every input
    student_ids: student_ids int32 [B, T] -> logits float32 [B, C]
    """
    server = build_server(manifest, student)
    signatures = server.signatures()
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp_", dir=parent)
    try:
        tf.saved_model.save(server, tmp, signatures=signatures)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; TF Serving may run as another user
        if os.path.exists(export_dir):
            shutil.rmtree(export_dir)
        os.replace(tmp, export_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return export_dir


def write_serving_config(saved_model_root, name):
    """TF Serving --model_config_file for the model `name` under saved_model_root."""
    base_path = os.path.abspath(os.path.join(saved_model_root, name))
    path = os.path.join(saved_model_root, "models.config")
    with open(path, "w", encoding="utf-8") as f:
        f.write("model_config_list {\n  config {\n"
                f"    name: \"{name}\"\n    base_path: \"{base_path}\"\n"
                "    model_platform: \"tensorflow\"\n  }\n}\n")
    return path

