"""Recipes: distillation as data. A recipe is a list of stages; a stage trains some layer groups
of the student on one objective; an objective says which student output learns which target
(a stored teacher output on the transfer set, or the labels), with which loss, where.

A recipe is a function (task, student, options) -> [Stage], registered in RECIPES. The runner
(`xtremedistil.runner`) trains the stages in order, resumably; the pipeline stores the teacher
outputs the stages name and nothing else. A recipe's module may also choose option values,
`OPTIONS = {option name: value}` (a preset, e.g. `paper.py`): `pipeline.run` applies them to
every option the user did not give (`apply_preset`), over the student class's own OPTIONS.
"""

import dataclasses
import sys

from xtremedistil import losses
from xtremedistil import options as options_lib
from xtremedistil import registry

LABELS = "labels"  # the target of objectives on the labeled data


@dataclasses.dataclass(frozen=True)
class Objective:
    target: str  # a teacher output stored on the transfer set ('hidden', 'logits') or LABELS
    student_output: str  # the student output that learns it ('hidden', 'logits')
    loss: callable  # (target [B, ...], prediction [B, ...]) -> per-position loss [B, T]
    mask: str = ""  # Encoded.masks key weighting transfer positions ('tokens', 'words')

    @property
    def on_transfer_set(self):
        return self.target != LABELS


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str  # unique within the run: names its weights, checkpoints and progress record
    objective: Objective
    trainable: tuple  # the student's layer groups that train
    score_on_dev: bool  # score the student on dev after the stage (candidates for the best)
    description: str = ""


def teacher_outputs_needed(stages):
    """The teacher outputs the stages distil (to store on the transfer set)."""
    return sorted({s.objective.target for s in stages if s.objective.on_transfer_set})


RECIPES = registry.Registry("recipe", {
    "ours": "xtremedistil.recipes.xtremedistil:stages",
    "xtremedistil": "xtremedistil.recipes.xtremedistil:stages",  # the name before 'ours'
    "paper": "xtremedistil.recipes.paper:stages",
    "labels_only": "xtremedistil.recipes.labels_only:stages",
    "hard": "xtremedistil.recipes.hard:stages",
    "soft": "xtremedistil.recipes.soft:stages",
    "none": "xtremedistil.recipes.fine_tuning:stages",
})


def name_for(options):
    """The recipe a run's options choose: --recipe for --distil_mode=stagewise, else the
    mode's own ('hard', 'soft', 'none')."""
    return options.recipe if options.distil_mode == "stagewise" else options.distil_mode


def transfer_then_labels(task, student, options, name, objective, description):
    """Two stages training every layer group: `objective` on the transfer set, then the labels
    (the hard and soft modes of Mukherjee & Awadallah 2020), after the layer-wise stages."""
    groups = student.groups_top_down()
    labels = Objective(LABELS, "logits", task.label_loss)
    return layer_wise_stages(task, student, options) + [
        Stage(name, objective, groups, score_on_dev=True, description=description),
        Stage("labels", labels, groups, score_on_dev=True, description="labels")]


def layer_wise_stages(task, student, options):
    """The stages a transformer student starts with (XtremeDistilTransformers), in any mode:
    attention (--distil_attention), then every layer's hidden states
    (--distil_multi_hidden_states)."""
    result = []
    if options.distil_attention:
        result.append(attention_stage(task, student, options))
    if options.distil_multi_hidden_states:
        layers = Objective("layers", "layers", losses.layers_mse, task.transfer_mask(options))
        result.append(Stage("layers", layers, student.groups_top_down()[1:],
                            score_on_dev=False,
                            description="hidden states of the mapped teacher layers"))
    return result


def attention_stage(task, student, options):
    """The stage in which the student's attention distributions learn the teacher's
    (--distil_attention): its encoder layers and embeddings train, on every real piece (for
    sentence tasks the loss is averaged over them per example)."""
    per_position = task.student_output == "tokens"
    # Every real piece's attention row: tagging's 'tokens' mask (sentence tasks: 'example').
    mask = task.transfer_mask(options.replace(transfer_mask="tokens"))
    objective = Objective("attention", "attention",
                          losses.attention_loss(options.attention_loss, per_position), mask)
    # Below the output layer and the projection, which the attention does not depend on.
    return Stage("attention", objective, student.groups_top_down()[2:], score_on_dev=False,
                 description="attention distributions of the mapped teacher layers")


def get(name):
    """The recipe function `name`: (task, student, options) -> [Stage]."""
    return RECIPES.get(name)


def preset(name, student="bilstm"):
    """The option values recipe `name` chooses, its module's OPTIONS, over those student
    `student` chooses, its class's OPTIONS ({} when neither has any)."""
    from xtremedistil import students  # pylint: disable=import-outside-toplevel
    known = {f.name for f in options_lib.fields()}
    values = {}
    for kind, part, chosen in (
            ("Student", student, getattr(students.STUDENTS.get(student), "OPTIONS", {})),
            ("Recipe", name, getattr(sys.modules[get(name).__module__], "OPTIONS", {}))):
        unknown = sorted(set(chosen) - known)
        if unknown:
            raise ValueError(f"{kind} {part!r} presets unknown options: {', '.join(unknown)}.")
        values.update(chosen)
    return values


def apply_preset(options, given=None):
    """`options` with its recipe's and student's preset for every option not in `given`.

    given: the names of the options the user chose (flags given on the command line, options
    a benchmark sizes); they keep their values. None: the options whose values differ from
    Options' defaults (for Options built in code).
    """
    values = preset(options.recipe, options.student)
    if given is None:
        defaults = options_lib.Options()
        given = {k for k, v in options.to_dict().items() if v != getattr(defaults, k)}
    return options.replace(**{k: v for k, v in values.items() if k not in set(given)})
