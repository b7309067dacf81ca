"""Shared fixtures: a tiny BERT teacher checkpoint, an easy synthetic task, a trained model_dir.

The CPU is split into 2 logical devices before TensorFlow starts, so that a test asking for
MirroredStrategy runs with 2 replicas as it would on 2 GPUs. Runs default to one device: two
replicas trace every step twice, and the tiny runs' time is mostly tracing (2.2x slower).
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=wrong-import-position

from xtremedistil import distribute  # pylint: disable=wrong-import-position
from xtremedistil.synthetic import (  # pylint: disable=wrong-import-position
    write_task, write_tiny_bert)

distribute.split_cpu(2)

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
# The slowest modules that do not need the trained run (measured: 2-8 minutes each), started
# first so that the two test processes end together.
SLOWEST_FIRST = ("test_classification.py", "test_export_classification.py", "test_recipes.py",
                 "test_multi_worker.py", "test_training.py", "test_benchmarks.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """pytest-xdist groups (pytest.ini: --dist loadgroup): every module with a test that needs
    the trained run goes to one process, which trains it once; any other module goes whole to
    a process, so that its module fixtures are built once. That group, then SLOWEST_FIRST, are
    scheduled first."""
    modules = {}
    for item in items:
        modules.setdefault(item.path.name, []).append(item)
    group = {module: "trained_run" if any("trained_run" in item.fixturenames for item in tests)
             else module for module, tests in modules.items()}
    def rank(module):
        if group[module] == "trained_run":
            return 0
        return 1 + (SLOWEST_FIRST.index(module) if module in SLOWEST_FIRST
                    else len(SLOWEST_FIRST))
    order = sorted(modules, key=rank)  # stable: collection order within a rank
    items[:] = [item for module in order for item in modules[module]]
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group[item.path.name]))


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
                   strategy="default", seed=1, baseline=True)
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
