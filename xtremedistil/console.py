"""What a run prints: TensorFlow's chatter silenced, one line per phase, progress per fit.

The script calls `quiet_tensorflow()` before anything imports TensorFlow; the pipeline announces
its phases with `Phases` and passes an `EpochProgress` to each fit. Library code never reads
flags: the script maps its own (e.g. absl's --verbosity) to `verbose`.
"""

import contextlib
import importlib.util
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time

# Libraries whose INFO/DEBUG Python log records are chatter when not verbose.
LIBRARIES = ("tensorflow", "tf_keras", "keras", "tensorflow_text", "transformers",
             "huggingface_hub", "tensorboard", "h5py")

# C++ start-up lines written to stderr while TensorFlow loads, before absl::InitializeLog() and
# TF_CPP_MIN_LOG_LEVEL apply: absl's notice, INFO/WARNING records (oneDNN notice, "Could not find
# cuda drivers", CPU instructions), and the harmless errors of a machine without a usable GPU.
_STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "  # absl C++: I0000 00:00:1795.6 123 port.cc:1]
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] \S+:\d+\] "  # TF's older C++ format
    r"|E\S* +\S+ +\d+ \S+:\d+\] (failed call to cuInit|Unable to register cu\w+ factory)"
    r"|To enable the following instructions: ")
# The TFLite converter's quantiser prints its settings to stderr from C++, whatever
# TF_CPP_MIN_LOG_LEVEL says.
_CONVERTER_NOISE = re.compile(r"fully_quantize: \d+, inference_type: ")


# Library warnings no user can act on, written during export: TF's deprecation notices (tf2onnx
# calls TF v1 graph functions) and SavedModel's note that it cannot serialise the vocabulary
# table's initializer into a collection ("probably safe to ignore", and it is: the table is
# restored from the SavedModel's assets).
_HARMLESS_WARNINGS = re.compile(r"From .* is deprecated|Issue encountered when serializing")


class _LibraryChatter(logging.Filter):
    """Drops INFO and DEBUG records of TensorFlow and the other LIBRARIES, and their
    _HARMLESS_WARNINGS; keeps the rest."""

    def __init__(self):
        super().__init__()
        self.folders = []
        for name in LIBRARIES:
            with contextlib.suppress(ImportError, ValueError):
                spec = importlib.util.find_spec(name)  # finds, does not import
                for folder in (spec.submodule_search_locations or []) if spec else []:
                    self.folders.append(os.path.join(os.path.realpath(folder), ""))

    def filter(self, record):
        if record.levelno >= logging.WARNING and not _HARMLESS_WARNINGS.match(
                record.getMessage()):
            return True
        if record.name.split(".")[0] in LIBRARIES:
            return False
        path = os.path.realpath(record.pathname or "")
        return not any(path.startswith(folder) for folder in self.folders)


_FILTER = None
_QUIET = False  # set_verbosity(False) was called: library chatter is dropped


def set_verbosity(verbose):
    """Python side only: with verbose=False, INFO/DEBUG log records of TensorFlow, tf-keras and
    transformers are dropped (e.g. functional_saver's "Sharding callback duration" after each
    checkpoint, MirroredStrategy's device list); warnings, errors and our own records stay.
    verbose=True undoes it. Can be called again once flags are parsed."""
    global _FILTER, _QUIET  # pylint: disable=global-statement
    _QUIET = not verbose
    # absl.logging first: it makes the "absl" logger an ABSLLogger, which reports the caller's
    # file (the filter needs it); a logging.getLogger("absl") before would make a plain one.
    import absl.logging  # pylint: disable=import-outside-toplevel,unused-import
    if _FILTER is None:
        _FILTER = _LibraryChatter()
    # absl.logging calls in TF/tf-keras go to the "absl" logger, tf_logging to "tensorflow".
    for name in ("absl", "tensorflow"):
        logger = logging.getLogger(name)
        if verbose:
            logger.removeFilter(_FILTER)
        else:
            logger.addFilter(_FILTER)
    if "transformers" in sys.modules:
        import transformers  # pylint: disable=import-outside-toplevel
        (transformers.logging.set_verbosity_info if verbose
         else transformers.logging.set_verbosity_error)()
    elif not verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@contextlib.contextmanager
def _filtered_stderr(noise=_STARTUP_NOISE):
    """Sends file descriptor 2 to a temporary file for the block, then writes its lines to the
    real stderr without those `noise` matches (everything, if the block raised)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if failed or not noise.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


@contextlib.contextmanager
def quiet_converter():
    """The TFLite converter's settings lines (_CONVERTER_NOISE) dropped from stderr for the
    block, unless verbose (set_verbosity)."""
    if not _QUIET:
        yield
        return
    with _filtered_stderr(_CONVERTER_NOISE):
        yield


def quiet_tensorflow(verbose=False):
    """Imports TensorFlow without its start-up chatter; call it before anything imports it.

    With verbose=False: TF_CPP_MIN_LOG_LEVEL=2 (unless set) hides later C++ INFO/WARNING;
    the C++ lines TensorFlow writes while it loads and first looks for GPUs ignore that variable
    (absl C++ logging is not initialized yet), so stderr is filtered for that import alone; and
    set_verbosity(False) drops the Python libraries' INFO records. Python warnings, C++ errors
    other than "no usable GPU", and everything our code logs still show.
    With verbose=True, nothing is silenced.
    """
    set_verbosity(verbose)
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return  # too late for the C++ start-up lines
    with _filtered_stderr():
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        tf.config.list_physical_devices("GPU")  # cuInit; logical devices can still be set up


def verbose_from_argv(argv):
    """Whether absl's --verbosity / -v on a not yet parsed command line asks for DEBUG (>= 1)."""
    for i, arg in enumerate(argv[1:], start=1):
        for flag in ("--verbosity", "-v", "--v"):
            value = None
            if arg.startswith(flag + "="):
                value = arg[len(flag) + 1:]
            elif arg == flag and i + 1 < len(argv):
                value = argv[i + 1]
            if value is not None:
                with contextlib.suppress(ValueError):
                    return int(value) >= 1
                return value.lower() == "debug"
    return False


class Phases:
    """One stderr line per phase with its place in the run: `[5/13] logits_2: training ...`."""

    def __init__(self, total, stream=None):
        self.total, self.done, self.stream = total, 0, stream

    def start(self, name, detail=""):
        """Announces the next phase; returns the line."""
        return self._line(f"{name}: {detail}" if detail else name)

    def skip(self, name, reason="done in an earlier run"):
        """The next phase, not run: `[3/13] stage representation: done in an earlier run`."""
        return self._line(f"{name}: {reason}")

    def _line(self, message):
        self.done += 1
        line = f"[{self.done}/{self.total}] {message}"
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)
        return line


def duration(seconds):
    """41 s, 3 min, 1 h 05 min (rounded up)."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def __getattr__(name):
    """EpochProgress is built on first use: importing this module must not import TensorFlow."""
    if name == "EpochProgress":
        globals()[name] = _epoch_progress_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _epoch_progress_class():
    import tf_keras  # pylint: disable=import-outside-toplevel

    class EpochProgress(tf_keras.callbacks.Callback):
        """Progress of one fit: a bar redrawn in place on a terminal (elsewhere, a log file,
        the same text as a line every `log_interval` seconds), one line per epoch:
        `  logits_2 epoch 2/10: loss 0.0312, val_loss 0.0298 (41 s, ~3 min left at most)`.

        EpochProgress(name, epochs, steps_per_epoch=None, start_epoch=0, stream=None).
        Time left is the mean epoch time times the epochs left (early stopping may end it
        sooner). State survives fit calls, so one instance serves a loop fitting one epoch per
        call (`initial_epoch=e, epochs=e + 1`, or `epochs=1` counted from `start_epoch`).
        """

        def __init__(self, name, epochs, steps_per_epoch=None, start_epoch=0, stream=None,
                     interval=0.5, log_interval=60.0):
            super().__init__()
            self.name, self.epochs, self.steps_per_epoch = name, epochs, steps_per_epoch
            self.next_epoch, self.stream, self.interval = start_epoch, stream, interval
            self.log_interval = log_interval  # seconds between lines when not a terminal
            self.epoch_seconds = []  # of the epochs timed in this process
            self.epoch, self.epoch_start, self.last_draw = start_epoch, 0.0, 0.0
            self.batches, self.learned_steps, self.bar_shown = 0, None, False
            self.skipped = 0  # batches of this epoch a killed run trained before the resume

        def resume_at(self, batches):
            """The next epoch continues an interrupted one after `batches` batches
            (training.fit_resumable calls it): its batches are counted from there."""
            self.skipped = batches

        @property
        def out(self):
            return self.stream or sys.stderr

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = max(epoch, self.next_epoch)
            self.epoch_start = self.last_draw = time.monotonic()
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches = self.skipped + batch + 1
            now = time.monotonic()
            terminal = _isatty(self.out)
            # A log file gets a line a minute: an epoch of a large transfer set takes many.
            if now - self.last_draw < (self.interval if terminal else self.log_interval):
                return
            self.last_draw = now
            text = self._progress_text(logs, now)
            if not terminal:
                print(text, file=self.out, flush=True)
                return
            width = shutil.get_terminal_size().columns - 1  # a wrapped line is not redrawn
            self.out.write("\r" + text[:width] + "\x1b[K")
            self.out.flush()
            self.bar_shown = True

        def _progress_text(self, logs, now):
            params_steps = self.params.get("steps")
            steps = (params_steps and self.skipped + params_steps) or self.steps_per_epoch or \
                self.learned_steps
            elapsed, done = now - self.epoch_start, self.batches
            per_batch = elapsed / (done - self.skipped)  # timed in this process
            if steps:
                filled = min(20, 20 * done // steps)
                text = f"[{'=' * filled}{'.' * (20 - filled)}] {done}/{steps}"
                rest = per_batch * max(0, steps - done)
            else:
                text = f"batch {done}"
                rest = max(0.0, self._mean() - elapsed) if self.epoch_seconds else None
            text = f"  {self.name} epoch {self.epoch + 1}/{self.epochs} {text}"
            if logs and "loss" in logs:
                text += f", loss {float(logs['loss']):.4f}"
            if rest is not None:
                per_epoch = self._mean() if self.epoch_seconds else per_batch * steps
                text += f", ~{duration(rest + per_epoch * (self.epochs - self.epoch - 1))} left"
            return text

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.monotonic() - self.epoch_start
            # A resumed epoch ran part of its batches here: its time scaled to a whole epoch.
            self.epoch_seconds.append(seconds * self.batches / max(1, self.batches - self.skipped))
            self.learned_steps = self.learned_steps or self.batches or None
            self.skipped = 0
            self.next_epoch = self.epoch + 1
            values = ", ".join(f"{key} {float(value):.4f}" for key, value in (logs or {}).items()
                               if _is_number(value))
            left = self.epochs - self.next_epoch
            timing = duration(seconds)
            if left > 0:
                timing += f", ~{duration(self._mean() * left)} left at most"
            self._clear_bar()
            print(f"  {self.name} epoch {self.next_epoch}/{self.epochs}: {values} ({timing})",
                  file=self.out, flush=True)

        def on_train_end(self, logs=None):
            self._clear_bar()

        def _mean(self):
            return sum(self.epoch_seconds) / len(self.epoch_seconds)

        def _clear_bar(self):
            if self.bar_shown:
                self.out.write("\r\x1b[K")
                self.out.flush()
                self.bar_shown = False

    return EpochProgress


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _is_number(value):
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False
