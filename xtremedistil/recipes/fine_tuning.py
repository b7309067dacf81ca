"""No distillation (--distil_mode=none): the student fine-tuned on the labeled data, every
layer group at once; the teacher is neither fine-tuned nor run (no stage reads the transfer
set). Task transfer: a distilled transformer student's export/checkpoint/ as
--pt_student_checkpoint, fine-tuned on a new task."""

from xtremedistil import recipes


def stages(task, student, options):
    del options
    labels = recipes.Objective(recipes.LABELS, "logits", task.label_loss)
    return [recipes.Stage("labels", labels, student.groups_top_down(), score_on_dev=True,
                          description="labels (no teacher)")]
