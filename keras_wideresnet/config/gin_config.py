"""gin at the edge: registers the library's constructors and parses the tools' gin flags.

Library code never imports gin; this module is the single place that exposes functions to gin
(T5X / Model Garden pattern: ``--gin_file``, ``--gin_bindings``, ``--gin_search_paths``).
"""

from __future__ import annotations

import importlib.resources
import os
from typing import Sequence

import gin

from keras_wideresnet import applications, data, models
from keras_wideresnet.training import experiment as experiment_lib

_REGISTERED = False


def register_configurables() -> None:
    """Makes the applications, pipelines and config classes available to gin (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    for fn in (applications.ResNet38, applications.ResNet20, applications.ResNet16,
               applications.ResNet38Segmenter, applications.WideResNet):
        gin.external_configurable(fn, name=fn.__name__, module="keras_wideresnet.applications")
    for fn in (data.classification_dataset, data.segmentation_dataset, data.quickstart_files,
               data.quickstart_class_names, data.dataset_class_names):
        gin.external_configurable(fn, name=fn.__name__, module="keras_wideresnet.data")
    # Family members beyond the presets: `WideResNet.spec = @make_spec()`.
    gin.external_configurable(models.make_spec, name="make_spec",
                              module="keras_wideresnet.models")
    for cls in (experiment_lib.Experiment, experiment_lib.OptimizerConfig,
                experiment_lib.LossConfig):
        gin.external_configurable(cls, name=cls.__name__, module="keras_wideresnet.training")
    _REGISTERED = True


def default_search_paths() -> list[str]:
    """The gin configs installed with the package (the repository's ``gin_configs/``).

    Read through :mod:`importlib.resources`, so includes such as ``include 'quickstart/digits.gin'``
    resolve the same in a wheel install and in an editable checkout.
    """
    return [os.fspath(importlib.resources.files("keras_wideresnet.gin_configs"))]


def resolve_gin_file(name: str, search_paths: Sequence[str]) -> str:
    """``name`` as given if it exists, else the first match under ``search_paths``.

    ``gin_configs/quickstart/digits.gin`` (the checkout path that the docs show) also resolves from
    any directory, as ``quickstart/digits.gin`` under the installed configs.
    """
    if os.path.exists(name):
        return name
    relative = [name]
    prefix = "gin_configs" + os.sep
    if name.startswith(prefix):
        relative.append(name[len(prefix):])
    for path in search_paths:
        for rel in relative:
            if os.path.exists(os.path.join(path, rel)):
                return os.path.join(path, rel)
    return name


class GinConfigError(ValueError):
    """A gin file or binding could not be applied."""


def parse_gin(files: Sequence[str] = (), bindings: Sequence[str] = (),
              search_paths: Sequence[str] = (), finalize: bool = True) -> None:
    """Parses gin files and bindings; errors name the offending file or binding.

    Args:
      files: gin files, absolute, relative to the working dir, or to a search path.
      bindings: ``"Experiment.train_steps = 100"`` style bindings, applied after the files.
      search_paths: Extra directories to resolve files and includes.
      finalize: Lock the config afterwards.
    """
    register_configurables()
    gin.clear_config()
    paths = list(search_paths) + default_search_paths()
    for path in paths:
        gin.add_config_file_search_path(path)
    for f in files:
        # Resolve against the search paths ourselves (gin logs a spurious error otherwise).
        f = resolve_gin_file(f, paths)
        try:
            gin.parse_config_file(f)
        except IOError as e:
            raise GinConfigError(
                f"gin file {f!r} was not found (looked in the working directory and "
                f"{paths}). Pass an existing file to "
                "--gin_file or add its folder with --gin_search_paths.") from e
        except Exception as e:  # noqa: BLE001 - gin raises many types; re-raise with context
            raise GinConfigError(f"gin file {f!r} could not be applied: {e}") from e
    for b in bindings:
        try:
            gin.parse_config(b)
        except Exception as e:  # noqa: BLE001
            raise GinConfigError(
                f"gin binding {b!r} could not be applied: {e}. Bindings look like "
                "'Experiment.train_steps = 100'; see the gin files in gin_configs/ for names.") from e
    if finalize:
        gin.finalize()


def resolve_gin_files(files: Sequence[str], model_dir: str | None) -> list[str]:
    """The given gin files, or the ``config.gin`` that training wrote into ``model_dir``."""
    if files:
        return list(files)
    if model_dir and os.path.exists(os.path.join(model_dir, "config.gin")):
        return [os.path.join(model_dir, "config.gin")]
    raise GinConfigError("Pass --gin_file, or a --model_dir holding the config.gin written by "
                         f"keras-wideresnet-train (none in {model_dir!r}).")


def experiment_from_flags(gin_files: Sequence[str], gin_bindings: Sequence[str],
                          model_dir: str | None,
                          search_paths: Sequence[str] = ()) -> experiment_lib.Experiment:
    """The tools' common start: gin files (or ``model_dir/config.gin``) → :class:`Experiment`."""
    parse_gin(resolve_gin_files(gin_files, model_dir), gin_bindings, search_paths)
    return load_experiment()


def load_experiment() -> experiment_lib.Experiment:
    """Builds the :class:`Experiment` described by the parsed gin config."""
    register_configurables()
    try:
        return gin.get_configurable("keras_wideresnet.training.Experiment")()
    except (TypeError, ValueError) as e:
        raise GinConfigError(f"The gin config does not describe a valid Experiment: {e}") from e


def write_operative_config(model_dir: str, mode: str) -> str:
    """Writes ``model_dir/operative_config.<mode>.gin`` (Model Garden convention)."""
    import tensorflow as tf

    tf.io.gfile.makedirs(model_dir)
    path = os.path.join(model_dir, f"operative_config.{mode}.gin")
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(gin.operative_config_str())
    with tf.io.gfile.GFile(os.path.join(model_dir, "config.gin"), "w") as f:
        f.write(gin.config_str())
    return path
