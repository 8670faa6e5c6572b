"""What every command shares: a quiet start, one-line user errors, and ``--debug``.

By default a command prints only its own ``[keras_wideresnet]`` lines, progress bars, tables and
the paths it wrote. TensorFlow's C++ start-up lines (CPU feature notes, CUDA probes on machines
without a GPU) and INFO logs of absl, TF and TFDS are hidden:

- ``--verbosity=0`` (absl's flag) brings back the INFO logs, and TF's C++ INFO lines with them;
- ``--debug`` brings back everything and shows the traceback of an error;
- ``TF_CPP_MIN_LOG_LEVEL`` set in the environment is respected.

A user error (a missing file, a bad flag or gin binding, bad data, a missing extra) prints one
message naming the input and what to do, and exits with status 1, without a traceback unless
``--debug`` is given.
"""

from __future__ import annotations

import logging as py_logging
import os
import re
import sys
from typing import Callable, Sequence

from absl import app, flags, logging

from keras_wideresnet import _quiet_import

flags.DEFINE_bool("debug", False, "Show tracebacks of errors and TensorFlow's own log lines.")
flags.DEFINE_list("imports", [], "Python modules to import before the command runs: a module that "
                  "registers a task of your own (keras_wideresnet.tasks.register_task) or gin "
                  "configurables, e.g. --imports=my_project.detection_task.")

FLAGS = flags.FLAGS

# Python loggers whose INFO lines are start-up or bookkeeping noise for a CLI user.
_NOISY_LOGGERS = ("tensorflow", "tensorflow_datasets", "absl", "h5py", "jax")


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's to fix: their message is the whole story."""
    from keras_wideresnet._extras import MissingExtraError

    return (app.UsageError, OSError, ValueError, MissingExtraError)


def asks_for_logs(argv: Sequence[str]) -> bool:
    """Whether the command line has ``--debug`` or an absl ``--verbosity``/``-v`` of 0 or more."""
    for arg in argv:
        if arg in ("--debug", "--debug=true", "--debug=True", "--debug=1"):
            return True
        m = re.fullmatch(r"--?(?:verbosity|v)=(-?\d+)", arg)
        if m and int(m.group(1)) >= 0:
            return True
    return False


def _set_cpp_log_level(verbose: bool) -> None:
    """TF's C++ log level: read once, when TensorFlow is imported, so set before any import."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        # 3 hides C++ INFO, WARNING and ERROR start-up lines ("failed call to cuInit" on a CPU
        # machine is an ERROR line); errors that matter surface as Python exceptions.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"


# The CLI modules import this module first, before anything imports TensorFlow.
_set_cpp_log_level(asks_for_logs(sys.argv[1:]))
if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3":
    _quiet_import.install()


class _DropGinPathProbes(py_logging.Filter):
    """gin logs an ERROR for every search-path folder a file is not in, also when another one
    holds it; a file found nowhere is reported by our own error instead."""

    def filter(self, record: py_logging.LogRecord) -> bool:
        return not (record.module == "resource_reader" and str(record.msg).startswith("Path not found"))


def _quiet(verbose: bool) -> None:
    """Python-side log levels, once the flags are parsed."""
    if not verbose:
        py_logging.getLogger().addFilter(_DropGinPathProbes())  # gin logs to the root logger
        _quiet_import.install()
        logging.set_verbosity(logging.WARNING)
        for name in _NOISY_LOGGERS:
            py_logging.getLogger(name).setLevel(py_logging.WARNING)


def _import_modules(names: Sequence[str]) -> None:
    """The modules of ``--imports``; the current directory is searched first, as ``python -m``
    does, so a module of the user's own project is found."""
    import importlib

    if names and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ValueError(f"--imports: cannot import {name!r} ({e}). Pass a module importable "
                             "from the current directory or the environment (PYTHONPATH).") from e


def _first_lines(error: BaseException, limit: int = 6) -> str:
    text = str(error).strip() or type(error).__name__
    lines = text.splitlines()
    return "\n".join(lines[:limit] + (["…"] if len(lines) > limit else []))


def _wrap(main: Callable[[Sequence[str]], int | None], prog: str) -> Callable[[Sequence[str]], int | None]:
    def wrapped(argv: Sequence[str]) -> int | None:
        debug = FLAGS.debug
        _quiet(verbose=debug or (FLAGS["verbosity"].present and FLAGS.verbosity >= 0))
        if debug:
            _import_modules(FLAGS.imports)
            return main(argv)
        try:
            _import_modules(FLAGS.imports)
            return main(argv)
        except _user_errors() as e:
            print(f"{prog}: error: {_first_lines(e)}", file=sys.stderr)
            hint = f"Run `{prog} --help` for the flags." if isinstance(e, app.UsageError) else \
                "Run again with --debug for the traceback."
            print(hint, file=sys.stderr)
            sys.exit(1)
        except Exception as e:  # noqa: BLE001 - TF's OpError and friends: keep them readable
            if type(e).__module__.startswith("tensorflow"):
                print(f"{prog}: error ({type(e).__name__}): {_first_lines(e)}", file=sys.stderr)
                print("Run again with --debug for the traceback.", file=sys.stderr)
                sys.exit(1)
            raise

    return wrapped


def run(main: Callable[[Sequence[str]], int | None], prog: str) -> None:
    """``absl.app.run(main)`` with the quiet start and the user-error handling described above.

    Args:
      main: the command's ``main(argv)``.
      prog: the console-script name, for messages (``keras-wideresnet-train``).
    """
    app.run(_wrap(main, prog))
