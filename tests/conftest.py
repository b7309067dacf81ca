"""Shared fixtures: a tiny BERT teacher checkpoint, an easy synthetic task, a trained model_dir.

The CPU is split into 2 logical devices before TensorFlow starts, so MirroredStrategy runs
with 2 replicas as it would on 2 GPUs.
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=wrong-import-position

from xtremedistil import distribute  # pylint: disable=wrong-import-position
from xtremedistil.synthetic import write_task, write_tiny_bert  # pylint: disable=wrong-import-position

distribute.split_cpu(2)

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"

def tiny_config(tmp, **overrides):
    """Options for a fast run of the whole pipeline on the synthetic task."""
    from xtremedistil import options as options_lib  # pylint: disable=import-outside-toplevel
    tmp = pathlib.Path(tmp)
    task = tmp / "task"
    if not task.exists():
        write_task(task)
    teacher = tmp / "tiny_bert"
    if not teacher.exists():
        write_tiny_bert(teacher)
    options = dict(task=str(task), transfer_file=str(task / "transfer.txt"),
                   model_dir=str(tmp / "model"), pt_teacher_checkpoint=str(teacher), seq_len=16,
                   word_emb_dim=16, bilstm_hidden_size=16, ft_epochs=10, ft_learning_rate=3e-3,
                   ft_batch_size=8, distil_batch_size=8, distil_epochs=2,
                   distil_learning_rate=3e-3, distil_chunk_size=200, patience=2,
                   strategy="mirrored", seed=1, baseline=True)
    options.update(overrides)
    return options_lib.Options(**options)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One full pipeline run on the synthetic task: (config, metrics)."""
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    config = tiny_config(tmp_path_factory.mktemp("trained"))
    metrics = pipeline.run(config)
    return config, metrics


@pytest.fixture(scope="session")
def exported(trained_run):
    """(manifest, export_all's result) for the tiny trained model_dir."""
    from xtremedistil import export  # pylint: disable=import-outside-toplevel
    from xtremedistil.manifest import Manifest  # pylint: disable=import-outside-toplevel
    config, _ = trained_run
    return Manifest.read(config.model_dir), export.export_all(config.model_dir)


def script_flags(config):
    """The run_xtreme_distil.py flags that reproduce an Options."""
    return [f"--{name}={value}" for name, value in config.to_dict().items()]


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    """The tiny BERT's fast tokenizer."""
    from xtremedistil import teacher as teacher_lib  # pylint: disable=import-outside-toplevel
    return teacher_lib.load_tokenizer(write_tiny_bert(tmp_path_factory.mktemp("tiny_bert")))
