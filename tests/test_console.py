"""console: TensorFlow's chatter silenced (in a fresh process), phase lines, epoch progress."""

import io
import os
import pathlib
import re
import subprocess
import sys

import pytest

from xtremedistil import console

REPO = pathlib.Path(__file__).resolve().parents[1]

# What run_xtreme_distil.py does: quiet_tensorflow() first, then an absl app at INFO.
SCRIPT = """
import sys
from xtremedistil import console
console.quiet_tensorflow(verbose=sys.argv[1] == "verbose")

from absl import app, logging


def main(argv):
    import numpy as np
    import tensorflow as tf
    import tf_keras
    tf.distribute.MirroredStrategy()  # logs its devices at INFO
    model = tf_keras.Sequential([tf_keras.Input((3,)), tf_keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = np.random.rand(32, 3), np.random.rand(32, 1)
    progress = console.EpochProgress("tiny", 2, steps_per_epoch=4)
    for epoch in range(2):  # one fit call per epoch, as training.fit_resumable does
        model.fit(x, y, batch_size=8, epochs=epoch + 1, initial_epoch=epoch,
                  validation_data=(x, y), callbacks=[progress], verbose=0)
    tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(argv[2])
    logging.info("our info")
    logging.warning("x")
    console.Phases(13).skip("stage representation")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main)
"""


def run_script(tmp_path, mode):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "TRANSFORMERS_VERBOSITY")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(script), mode, str(tmp_path / "ckpt")],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_quiet_tensorflow_keeps_progress_and_our_logs(tmp_path):
    stderr = run_script(tmp_path, "quiet")
    for noise in ("cuInit", "oneDNN", "absl::InitializeLog", "cudart_stub",
                  "Sharding callback", "Using MirroredStrategy"):
        assert noise not in stderr, stderr
    epochs = re.findall(r"^  tiny epoch (\d)/2: loss [\d.]+, val_loss [\d.]+ \(\d+ s.*\)$",
                        stderr, re.M)
    assert epochs == ["1", "2"], stderr
    assert "left at most" in stderr  # after epoch 1 of 2
    assert re.search(r"^I.*\] our info$", stderr, re.M), stderr
    assert re.search(r"^W.*\] x$", stderr, re.M), stderr
    assert "[1/13] stage representation: done in an earlier run" in stderr


def test_verbose_silences_nothing(tmp_path):
    stderr = run_script(tmp_path, "verbose")
    assert re.search(r"functional_saver.py:\d+\] Sharding callback duration", stderr), stderr
    assert "Using MirroredStrategy" in stderr
    assert re.search(r"^W.*\] x$", stderr, re.M), stderr


def test_startup_noise_pattern():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1795681520.546662    3833 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1795681520.546988    3833 cudart_stub.cc:31] Could not find cuda drivers",
        "E0000 00:00:1795681524.338847    3833 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error",
        "W0000 00:00:1758131437.322781 3722519 computation_placer.cc:177] computation placer "
        "already registered.",
        "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] "
        "Could not find cuda drivers on your machine, GPU will not be used.",
    ]
    kept = ["E0000 00:00:1795681524.338847    3833 op_kernel.cc:1] OOM when allocating",
            "Traceback (most recent call last):", "UserWarning: something"]
    assert all(console._STARTUP_NOISE.match(line)  # pylint: disable=protected-access
               for line in noise)
    assert not any(console._STARTUP_NOISE.match(line)  # pylint: disable=protected-access
                   for line in kept)


def test_phases_lines():
    stream = io.StringIO()
    phases = console.Phases(13, stream=stream)
    phases.done = 4
    assert phases.start("logits_2", "training logits, projection") == \
        "[5/13] logits_2: training logits, projection"
    assert phases.skip("logits_3") == "[6/13] logits_3: done in an earlier run"
    assert phases.skip("stage representation") == \
        "[7/13] stage representation: done in an earlier run"
    assert phases.start("results") == "[8/13] results"
    assert stream.getvalue().splitlines() == [
        "[5/13] logits_2: training logits, projection", "[6/13] logits_3: done in an earlier run",
        "[7/13] stage representation: done in an earlier run", "[8/13] results"]


@pytest.mark.parametrize("seconds, text", [(0.2, "1 s"), (41, "41 s"), (150, "3 min"),
                                           (3900, "1 h 05 min")])
def test_duration(seconds, text):
    assert console.duration(seconds) == text


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def drive(progress, epochs, steps, clock):
    """Calls the callback as fit would, one fit call per epoch; each batch takes 1 s."""
    progress.set_params({"epochs": epochs[-1] + 1, "steps": steps, "verbose": 0})
    for epoch in epochs:
        progress.on_train_begin()
        progress.on_epoch_begin(epoch)
        for batch in range(steps):
            clock[0] += 1.0
            progress.on_train_batch_end(batch, {"loss": 0.5})
        progress.on_epoch_end(epoch, {"loss": 0.25, "val_loss": 0.125})
        progress.on_train_end()


def test_epoch_progress_lines_and_time_left(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    progress = console.EpochProgress("logits_2", 10, steps_per_epoch=30, start_epoch=1,
                                     stream=stream)
    drive(progress, [1, 2], 30, clock)
    assert stream.getvalue().splitlines() == [
        "  logits_2 epoch 2/10: loss 0.2500, val_loss 0.1250 (30 s, ~4 min left at most)",
        "  logits_2 epoch 3/10: loss 0.2500, val_loss 0.1250 (30 s, ~4 min left at most)"]


def test_epoch_progress_counts_from_start_epoch_when_fit_restarts_at_0(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    progress = console.EpochProgress("teacher", 3, start_epoch=1, stream=stream)
    drive(progress, [0, 0], 2, clock)  # fit(epochs=1) twice
    assert [line.split(":")[0] for line in stream.getvalue().splitlines()] == [
        "  teacher epoch 2/3", "  teacher epoch 3/3"]
    assert stream.getvalue().splitlines()[-1].endswith("(2 s)")  # the last: no time left


def test_epoch_progress_in_a_log_file_is_a_line_a_minute(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    progress = console.EpochProgress("logits_1", 1, stream=stream)
    drive(progress, [0], 150, clock)  # 150 batches of 1 s: lines at 60 s and 120 s
    assert stream.getvalue().splitlines() == [
        "  logits_1 epoch 1/1 [========............] 60/150, loss 0.5000, ~2 min left",
        "  logits_1 epoch 1/1 [================....] 120/150, loss 0.5000, ~30 s left",
        "  logits_1 epoch 1/1: loss 0.2500, val_loss 0.1250 (3 min)"]
    assert "\r" not in stream.getvalue()


def test_epoch_progress_of_a_resumed_epoch_counts_from_the_batches_done(monkeypatch):
    """A run resumed after 60 of 150 batches (of 1 s): the line at 60 s says 120/150, and the
    time left is 30 batches of this epoch and 150 of the next; the next epoch counts from 0."""
    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    progress = console.EpochProgress("teacher", 2, steps_per_epoch=150, stream=stream)
    progress.resume_at(60)
    drive(progress, [0], 90, clock)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "  teacher epoch 1/2 [================....] 120/150, loss 0.5000, ~3 min left",
        "  teacher epoch 1/2: loss 0.2500, val_loss 0.1250 (2 min, ~3 min left at most)"]
    drive(progress, [1], 150, clock)
    assert stream.getvalue().splitlines()[2].startswith(
        "  teacher epoch 2/2 [========............] 60/150")


def test_epoch_progress_bar_on_a_terminal(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    stream = FakeTerminal()
    progress = console.EpochProgress("stage", 2, stream=stream)
    drive(progress, [0], 4, clock)
    text = stream.getvalue()
    assert "\r  stage epoch 1/2 [=====...............] 1/4, loss 0.5000, ~7 s left" in text
    assert "\r  stage epoch 1/2 [====================] 4/4, loss 0.5000, ~4 s left" in text
    # The bar is erased before the epoch line, which stays.
    assert text.endswith("\r\x1b[K  stage epoch 1/2: loss 0.2500, val_loss 0.1250 "
                         "(4 s, ~4 s left at most)\n")


def test_filtered_stderr_drops_only_startup_noise(capfd):
    noise = b"I0000 00:00:1795681520.546988    3833 cudart_stub.cc:31] Could not find cuda\n"
    with console._filtered_stderr():  # pylint: disable=protected-access
        os.write(2, noise + b"E0000 00:00:17.5 1 op.cc:1] a real error\n")
    assert capfd.readouterr().err == "E0000 00:00:17.5 1 op.cc:1] a real error\n"
    with pytest.raises(ImportError):  # a failed import shows everything
        with console._filtered_stderr():  # pylint: disable=protected-access
            os.write(2, noise)
            raise ImportError("no tensorflow")
    assert capfd.readouterr().err == noise.decode()


def test_verbose_from_argv():
    assert not console.verbose_from_argv(["run.py", "--task=x"])
    assert not console.verbose_from_argv(["run.py", "--verbosity=0"])
    assert console.verbose_from_argv(["run.py", "--verbosity=1"])
    assert console.verbose_from_argv(["run.py", "-v", "2"])


def test_harmless_library_warnings_are_dropped_unless_verbose():
    """Export's TF deprecation notices and SavedModel's table-initializer note are dropped;
    other warnings, and ours whatever they say, stay."""
    import logging  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    chatter = console._LibraryChatter()  # pylint: disable=protected-access
    library = os.path.join(os.path.dirname(tf.__file__), "python", "util", "deprecation.py")

    def kept(name, path, message):
        return chatter.filter(logging.LogRecord(name, logging.WARNING, path, 1, message, None,
                                                None))

    deprecated = "From x.py:1: extract_sub_graph (from tf.graph_util) is deprecated and will be"
    assert not kept("tensorflow", library, deprecated)
    assert not kept("absl", library, deprecated)
    assert not kept("tensorflow", library, "Issue encountered when serializing table_initializer.")
    assert kept("tensorflow", library, "5 out of the last 5 calls triggered tf.function retracing")
    assert kept("absl", __file__, deprecated)


def test_quiet_converter_drops_the_quantisers_settings_line_only_when_quiet(capfd, monkeypatch):
    line = b"fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32\n"
    for quiet in (True, False):
        monkeypatch.setattr(console, "_QUIET", quiet)
        with console.quiet_converter():
            os.write(2, line + b"conversion failed\n")
        err = capfd.readouterr().err
        assert "conversion failed" in err
        assert ("fully_quantize" in err) is not quiet
