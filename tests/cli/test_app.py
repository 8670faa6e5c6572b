"""What every command shares (keras_wideresnet/cli/_app.py): a quiet default output, one-line user
errors with exit status 1, ``--debug`` for the traceback, and re-runs that repeat nothing."""

import os
import re
import subprocess
import sys

import pytest

from keras_wideresnet.cli import _app

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAIN = os.path.join(REPO, "tools", "train.py")
TINY = ["ResNet20.width_multiplier = 0.03125", "Experiment.train_steps = 2", "Experiment.steps_per_loop = 2",
        "Experiment.checkpoint_interval = 2", "Experiment.eval_steps = 1",
        "classification_dataset.global_batch_size = 8"]
# TF's C++ log lines ("I0000 00:00:... cudart_stub.cc:31] ..."), absl's pre-init warning, and
# gin's search-path probes: none of them is for the user.
_NOISE = re.compile(r"^[IWEF]\d{4} |cudart_stub|cuInit|absl::InitializeLog|Path not found|cpu_feature_guard",
                    re.M)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from keras_wideresnet.data import quickstart_files

    root = str(tmp_path_factory.mktemp("quickstart"))
    quickstart_files("classification", "train", root)
    return root


def _train(tmp_path, data_dir, *extra, bindings=()):
    args = [sys.executable, TRAIN, "--gin_file=quickstart/digits.gin", f"--model_dir={tmp_path / 'run'}"]
    args += [f"--gin_bindings={b}" for b in [*TINY, *bindings, f"quickstart_files.data_dir = '{data_dir}'"]]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the user's default
    return subprocess.run(args + list(extra), cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)


def test_a_run_prints_only_its_own_lines_and_a_rerun_repeats_nothing(tmp_path, data_dir):
    export = tmp_path / "export"
    proc = _train(tmp_path, data_dir, f"--export_dir={export}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not _NOISE.search(proc.stdout + proc.stderr), proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) <= 12, lines  # status lines, progress bars, the scores, the export path
    assert "top-1 accuracy" in proc.stdout and f"exported SavedModel for TF Serving: {export}/1" in proc.stdout
    again = _train(tmp_path, data_dir, f"--export_dir={export}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from" in again.stdout and "nothing to export" in again.stdout
    assert sorted(os.listdir(export)) == ["1"]  # no second version of the same checkpoint


def test_a_user_error_is_one_message_and_debug_shows_the_traceback(tmp_path, data_dir):
    missing = ["Experiment.init_checkpoint = 'weights/resnet38_a1.weights.h5'"]
    proc = _train(tmp_path, data_dir, bindings=missing)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and not _NOISE.search(proc.stderr), proc.stderr
    assert "'weights/resnet38_a1.weights.h5' does not exist" in proc.stderr
    assert "keras-wideresnet-convert-weights" in proc.stderr and "init_checkpoint=None" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 6, proc.stderr
    plain = _train(tmp_path, data_dir, "--gin_file=missing.gin")
    assert plain.returncode == 1 and "'missing.gin' was not found" in plain.stderr
    assert "Traceback" not in plain.stderr and not _NOISE.search(plain.stderr), plain.stderr
    debug = _train(tmp_path, data_dir, "--gin_file=missing.gin", "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "missing.gin" in debug.stderr


@pytest.mark.parametrize("argv, wanted", [
    (["--model_dir=x"], False), (["--debug"], True), (["--verbosity=0"], True), (["-v=1"], True),
    (["--verbosity=-1"], False), (["--debug=false"], False),
])
def test_logs_come_back_only_when_asked(argv, wanted):
    assert _app.asks_for_logs(argv) is wanted
