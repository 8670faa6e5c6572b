"""Optional dependencies: each is imported where it is used and named by the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the pip extra to install."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Imports ``module`` or raises :class:`MissingExtraError` naming ``keras_wideresnet[extra]``.

    Args:
      module: The module to import, e.g. ``"sklearn.datasets"``.
      extra: The ``setup.py`` extra that installs it, e.g. ``"quickstart"``.
      purpose: What needs it, for the message, e.g. ``"The quickstart digits data"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{purpose} needs the optional dependency {module.split('.')[0]!r}, which is not "
            f"installed ({e}). Install it with: pip install 'keras_wideresnet[{extra}]'") from e
