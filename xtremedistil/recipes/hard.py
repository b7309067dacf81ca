"""Hard distillation (Mukherjee & Awadallah 2020, "Distilling BERT into Simple Neural Networks
with Unlabeled Transfer Data"): on the transfer set the student learns the teacher's predicted
labels (cross-entropy against its argmax), then the labeled data; every layer group trains.
A transformer student starts with the layer-wise stages (--distil_attention,
--distil_multi_hidden_states) when asked."""

from xtremedistil import losses
from xtremedistil import recipes


def stages(task, student, options):
    objective = recipes.Objective("logits", "logits", losses.teacher_labels,
                                  task.transfer_mask(options))
    return recipes.transfer_then_labels(task, student, options, "teacher_labels", objective,
                                        "the teacher's labels")
