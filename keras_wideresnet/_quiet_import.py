"""A quiet ``import tensorflow``: TF's C++ start-up lines kept off stderr.

Loading TF's shared libraries logs "Could not find cuda drivers" (and, on a CPU machine, a failed
``cuInit``) through absl's C++ logging before it is initialised, which no log-level setting
reaches. The CLIs install this for their own process; the TFRecord writer uses it for its spawned
workers. It imports nothing heavy itself, so a spawned worker can unpickle it before TF loads.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from typing import Any


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Sends the process's fd 2 to /dev/null while ``tensorflow`` itself is imported.

    The import happens when the process first needs TF; Python errors of the import still raise
    as usual, after stderr is back.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and let the other finders do the finding
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        real_exec = loader.exec_module

        def exec_module(module):
            sys.stderr.flush()
            saved = os.dup(2)
            try:
                with open(os.devnull, "w") as devnull:
                    os.dup2(devnull.fileno(), 2)
                    try:
                        real_exec(module)
                    finally:
                        os.dup2(saved, 2)
            finally:
                os.close(saved)

        loader.exec_module = exec_module
        return spec


def install() -> None:
    """Makes the process's first ``import tensorflow`` quiet (no-op once TF is loaded)."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, QuietTensorFlowImport)
                                                   for f in sys.meta_path):
        sys.meta_path.insert(0, QuietTensorFlowImport())


def call_quietly(quiet: bool, module: str, function: str, *args: Any) -> Any:
    """``module.function(*args)`` with a quiet TF import when ``quiet``: a pool initializer that a
    spawned worker unpickles before anything imports TF."""
    if quiet:
        install()
    return getattr(importlib.import_module(module), function)(*args)
