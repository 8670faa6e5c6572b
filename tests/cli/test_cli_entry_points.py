"""The command-line tools: console scripts, ``python -m`` modules and the checkout wrappers agree."""

import ast
import importlib.metadata
import importlib.util
import os
import pkgutil
import subprocess
import sys

import pytest

import keras_wideresnet.cli as cli

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = sorted(m.name for m in pkgutil.iter_modules(cli.__path__) if not m.name.startswith("_"))


def _console_scripts() -> dict[str, str]:
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")
            if ep.value.startswith("keras_wideresnet.")}


def test_every_tool_is_a_console_script_a_module_and_a_checkout_wrapper():
    assert MODULES == ["analyze_paths", "convert_weights", "create_tfrecords", "evaluate",
                       "export", "predict", "train"]
    scripts = _console_scripts()
    assert scripts == {f"keras-wideresnet-{m.replace('_', '-')}": f"keras_wideresnet.cli.{m}:run"
                       for m in MODULES}
    for m in MODULES:
        # Each module defines its own absl flags, so they are not imported into one process here;
        # the module's source must define run() (the entry point the scripts name).
        spec = importlib.util.find_spec(f"keras_wideresnet.cli.{m}")
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        assert "run" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, m
        with open(os.path.join(REPO, "tools", f"{m}.py"), encoding="utf-8") as f:
            wrapper = f.read()
        assert f"from keras_wideresnet.cli.{m} import run" in wrapper
        assert "sys.path" not in wrapper


@pytest.mark.parametrize("argv", [
    ["-m", "keras_wideresnet.cli.train"],
    [os.path.join(REPO, "tools", "train.py")],
])
def test_train_without_model_dir_is_a_usage_error(argv, tmp_path):
    # Both ways in run the same absl app: a missing required flag is one message, exit code 1.
    proc = subprocess.run([sys.executable, *argv, "--gin_file=quickstart/digits.gin"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "model_dir" in proc.stderr and "Traceback" not in proc.stderr
