"""Students: small models that learn from the teacher.

A student builds a tf-keras model from student ids [B, T] to named outputs: 'logits' [B, T, C]
and 'hidden' [B, T, H] (its representation in the teacher's width, what stage 1 distils), or
for sentence tasks [B, C] and [B, H] (Dims.output); a recipe's other stages may need more
('layers', 'attention': students/transformer.py). Its word embeddings are the layer
`word_embeddings(...)` makes, so --compress_word_embedding and --freeze_word_embedding mean
the same for every student. It lists its layer groups from the top down (the order of gradual
unfreezing) and is rebuilt from the run's Options and `Dims` alone. To add a student, write a
module with a `Student` subclass and register it in `STUDENTS` (or call STUDENTS.register from
your code).

Legend: B batch, T seq_len, V student vocabulary, H teacher hidden size, C labels.
"""

import dataclasses

import numpy as np
import tf_keras

from xtremedistil import registry

WORD_EMBEDDINGS = "word_embeddings"  # the layer every student's word embeddings are


@dataclasses.dataclass(frozen=True)
class Dims:
    """The sizes a student is built for, given by the task, the teacher and the vocabulary."""
    vocab_size: int
    seq_len: int
    num_labels: int
    teacher_hidden_size: int
    # What the student predicts (the task's): 'tokens' logits [T, C] from ids [T]; 'sentence'
    # logits [C] from ids [T]; 'pair' logits [C] from ids [2T], the two texts one after the other.
    output: str = "tokens"

    @property
    def input_len(self):
        return 2 * self.seq_len if self.output == "pair" else self.seq_len


class Student:
    """The interface; see bilstm.BiLSTMStudent."""
    name = ""
    # Layer groups from the top down: group name -> names of its layers.
    layer_groups = {}
    # Option values this student chooses where neither the user nor the recipe's preset does.
    OPTIONS = {}

    def __init__(self, options):
        self.options = options

    def build(self, dims, embeddings=None, batch_size=None):
        """A tf-keras model: student_ids [B, dims.input_len] int32 -> {'hidden', 'logits'}
        float32.

        embeddings: [V, E] initial word embeddings (the teacher's, factorised) or None. A
        static batch_size (1) gives a graph that TFLite converts with fused ops; it is built
        for inference only, so it may leave out what only training uses (recurrent dropout).
        """
        raise NotImplementedError

    def export_checkpoint(self, model, manifest, folder):
        """Writes the trained student as a checkpoint folder another library loads (the
        transformer: a transformers BERT folder); returns it, or None when the student has
        no such form."""
        del model, manifest, folder
        return None

    def load_checkpoint(self, model, folder, pieces):
        """Sets `model`'s weights from a checkpoint folder (--pt_student_checkpoint); pieces:
        the student vocabulary's piece strings (student id order)."""
        raise ValueError(f"--pt_student_checkpoint: the {self.name} student cannot start "
                         "from a checkpoint.")

    def set_trainable(self, model, groups):
        """Only the layers of `groups` train; the word embeddings never do with
        --freeze_word_embedding."""
        frozen = {WORD_EMBEDDINGS} if self.options.freeze_word_embedding else set()
        for group, layer_names in self.layer_groups.items():
            for layer_name in layer_names:
                model.get_layer(layer_name).trainable = (group in groups
                                                         and layer_name not in frozen)

    def groups_top_down(self):
        return tuple(self.layer_groups)


STUDENTS = registry.Registry("student", {
    "bilstm": "xtremedistil.students.bilstm:BiLSTMStudent",
    "transformer": "xtremedistil.students.transformer:TransformerStudent"})


def word_embeddings(dims, options, embeddings=None):
    """The students' word embedding layer, [B, T] ids -> [B, T, E] (E = --word_emb_dim), named
    WORD_EMBEDDINGS: it starts from `embeddings` [V, E] (the teacher's, factorised; None:
    random, --compress_word_embedding=false) and is not trainable with
    --freeze_word_embedding."""
    initializer = (tf_keras.initializers.Constant(embeddings) if embeddings is not None
                   else "uniform")
    return tf_keras.layers.Embedding(dims.vocab_size, options.word_emb_dim,
                                     embeddings_initializer=initializer,
                                     trainable=not options.freeze_word_embedding,
                                     name=WORD_EMBEDDINGS)


def get(options):
    """The student of a run's options, as an instance."""
    return STUDENTS.get(options.student)(options)


def output_model(model, name):
    """The student (sharing its layers) with the one output `name`, e.g. 'logits'."""
    return tf_keras.Model(model.input, model.output[name], name=f"{model.name}_{name}")


def count_params(model):
    return int(sum(np.prod(w.shape) for w in model.weights))
