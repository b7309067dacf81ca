"""model_dir/config.json: what a run was made with and what is needed to rebuild its student.

Written twice by the pipeline: with the options alone before anything is trained (so a resume
can check them), then complete once the student is built. Export, predict, the latency
benchmark and the benchmarks read it through `Manifest.read`; nobody reads its keys by string.
"""

import dataclasses
import json
import os

from xtremedistil import options as options_lib

FILE = "config.json"


class NotTrainedError(ValueError):
    """The model_dir holds no (finished) run."""


@dataclasses.dataclass
class Manifest:
    options: options_lib.Options
    task: str = ""  # registered task name ('tagging')
    labels: list = None  # label names; index = label id
    student_vocab: list = None  # teacher piece strings; index = student id
    teacher_hidden_size: int = 0  # width of the distilled teacher layer
    teacher_vocab_size: int = 0
    do_lower_case: bool = False
    teacher_fingerprint: str = ""  # weights_fingerprint of the fine-tuned teacher

    @property
    def model_dir(self):
        return self.options.model_dir

    @property
    def complete(self):
        return self.labels is not None and self.student_vocab is not None

    @property
    def teacher_dir(self):
        return os.path.join(self.model_dir, "teacher")

    @property
    def student_weights(self):
        return self.stage_weights("best")

    def stage_weights(self, stage):
        """The student's weights as `stage` left them (runner.run_stage writes one file a
        stage; 'best' is the one model selection kept)."""
        return os.path.join(self.model_dir, "student", f"{stage}.h5")

    def write(self):
        from xtremedistil import training  # pylint: disable=import-outside-toplevel
        value = dataclasses.asdict(self)
        value["options"] = self.options.to_dict()
        training.write_json_atomically(os.path.join(self.model_dir, FILE), value)

    @classmethod
    def read(cls, model_dir, require_trained=True):
        """The manifest of model_dir (options.model_dir set to it, wherever it was trained).

        With require_trained, NotTrainedError unless the student finished training.
        """
        path = os.path.join(model_dir, FILE)
        if not os.path.exists(path):
            raise NotTrainedError(f"--model_dir={model_dir} holds no run (no {FILE}); train it "
                                  "first with --mode=train.")
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
        names = {f.name for f in dataclasses.fields(cls)}
        manifest = cls(**{k: v for k, v in value.items() if k in names and k != "options"},
                       options=options_lib.Options.from_dict(value["options"]).replace(
                           model_dir=model_dir))
        if require_trained and not (manifest.complete
                                    and os.path.exists(manifest.student_weights)):
            raise NotTrainedError(
                f"--model_dir={model_dir}: the run there is not trained yet (killed before its "
                "student finished?); rerun --mode=train with the same options to resume it.")
        return manifest
