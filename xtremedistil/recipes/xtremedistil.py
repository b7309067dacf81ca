"""The XtremeDistil recipe (Mukherjee & Awadallah, ACL 2020), in three stages:

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
    result = [recipes.Stage("representation", hidden, groups[1:], score_on_dev=False,
                            description="hidden states")]
    for prefix, objective, what in (("logits", logits, "teacher logits"),
                                    ("labels", labels, "labels")):
        for depth in range(1, len(groups) + 1):
            result.append(recipes.Stage(f"{prefix}_{depth}", objective, groups[:depth],
                                        score_on_dev=True, description=what))
    return result
