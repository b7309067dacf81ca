"""Soft distillation (Mukherjee & Awadallah 2020): on the transfer set the student's logits learn
the teacher's (MSE as in the paper, or KL with --temperature: --logits_loss), then the labeled
data; every layer group trains. A transformer student starts with the layer-wise stages
(--distil_attention, --distil_multi_hidden_states) when asked."""

from xtremedistil import losses
from xtremedistil import recipes


def stages(task, student, options):
    objective = recipes.Objective("logits", "logits",
                                  losses.logits_loss(options.logits_loss, options.temperature),
                                  task.transfer_mask(options))
    return recipes.transfer_then_labels(task, student, options, "teacher_logits", objective,
                                        "teacher logits")
