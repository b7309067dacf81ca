"""The XtremeDistil recipe (Mukherjee & Awadallah, ACL 2020), in three stages:

0. (--distil_attention, transformer students; MiniLM, XtremeDistilTransformers) attention: on
   the transfer set, the student's attention distributions (--attention_layers; heads
   averaged or matched: --attention_heads) learn those of their teacher layers (--layer_map;
   --attention_loss); the encoder layers and the embeddings train.
   (--distil_multi_hidden_states, transformer students; XtremeDistilTransformers) layers: on
   the transfer set, each student layer's mapped states learn the hidden states of its teacher
   layer (--layer_map; masked MSE averaged over the layers); every group below the output
   layer trains, with the maps.
1. representation: on the transfer set, the student's 'hidden' output learns the hidden states
   of --teacher_layer (masked MSE); every group below the output layer trains.
2. logits_1..N: on the transfer set, the student's logits learn the teacher's (MSE, or KL with
   --temperature), with gradual unfreezing: first the top group, then one more at a time.
3. labels_1..N: on the labeled data, the task's label loss, with the same unfreezing.
The student is scored on dev after every sub-stage of 2 and 3; the best one is kept.
"""

from xtremedistil import losses
from xtremedistil import recipes


def stages(task, student, options):
    groups = student.groups_top_down()
    mask = task.transfer_mask(options)
    hidden = recipes.Objective("hidden", "hidden", losses.hidden_mse, mask)
    logits = recipes.Objective("logits", "logits",
                               losses.logits_loss(options.logits_loss, options.temperature), mask)
    labels = recipes.Objective(recipes.LABELS, "logits", task.label_loss)
    result = recipes.layer_wise_stages(task, student, options)
    result.append(recipes.Stage("representation", hidden, groups[1:], score_on_dev=False,
                                description="hidden states"))
    for prefix, objective, what in (("logits", logits, "teacher logits"),
                                    ("labels", labels, "labels")):
        for depth in range(1, len(groups) + 1):
            result.append(recipes.Stage(f"{prefix}_{depth}", objective, groups[:depth],
                                        score_on_dev=True, description=what))
    return result
