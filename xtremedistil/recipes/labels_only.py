"""No distillation: every layer group of the student at once on the labeled data (the
baseline a distilled student is compared with)."""

from xtremedistil import recipes


def stages(task, student, options):
    del options
    labels = recipes.Objective(recipes.LABELS, "logits", task.label_loss)
    return [recipes.Stage("baseline_labels", labels, student.groups_top_down(),
                          score_on_dev=True, description="labels")]
