"""Faults of long runs, each met from the CLI as a user meets it: SIGTERM, a truncated newest
checkpoint, a loss blow-up, a lost or missing worker of a 2-worker run."""

import json
import os
import signal
import subprocess
import threading
import time

import tensorflow as tf

from keras_wideresnet.training.faults import PREEMPTED_EXIT_CODE, WORKER_LOST_EXIT_CODE
from tests.training.test_trainer import REPO, TINY_CLS, _cli, _env, _free_port


def _run(model_dir, bindings, quickstart_dir, *extra, timeout=300, env=None):
    return subprocess.run(_cli(str(model_dir), "quickstart/digits.gin", bindings, quickstart_dir,
                               "--mode=train", *extra),
                          env=env or _env(), capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


class _Lines:
    """A child's stdout, read line by line in a thread, so that a test can wait for a line."""

    def __init__(self, proc):
        self.lines, self.proc = [], proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(text in line for line in self.lines):
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        return False

    def text(self):
        self._thread.join(timeout=10)
        return "".join(self.lines)


def test_sigterm_saves_the_current_step_and_a_rerun_loses_none(tmp_path, quickstart_dir):
    model_dir = tmp_path / "run"
    first = _run(model_dir, TINY_CLS + ["Experiment.train_steps = 3"], quickstart_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    # One long loop and no periodic checkpoint: only the stop itself can save the step reached.
    long = TINY_CLS + ["Experiment.train_steps = 100000", "Experiment.steps_per_loop = 100000",
                       "Experiment.checkpoint_interval = 100000"]
    proc = subprocess.Popen(_cli(str(model_dir), "quickstart/digits.gin", long, quickstart_dir,
                                 "--mode=train"),
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    out = _Lines(proc)
    assert out.wait_for("at step 3", timeout=240), proc.stderr.read()[-3000:]
    time.sleep(10)  # tracing, then some steps inside the loop
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    stdout = out.text()
    assert proc.returncode == PREEMPTED_EXIT_CODE, proc.stderr.read()[-3000:]
    stopped = int(stdout.split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert stopped > 3, stdout[-2000:]  # it stopped inside the loop, not at its end
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{stopped}")

    target = stopped + 2
    rerun = _run(model_dir, long + [f"Experiment.train_steps = {target}"], quickstart_dir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"ckpt-{stopped} at step {stopped}" in rerun.stdout  # 0 steps lost
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{target}")


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous(tmp_path, quickstart_dir):
    model_dir = tmp_path / "run"
    first = _run(model_dir, TINY_CLS, quickstart_dir)  # checkpoints at steps 2 and 4
    assert first.returncode == 0, first.stderr[-3000:]
    data = model_dir / "ckpt-4.data-00000-of-00001"
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.truncate(size // 2)  # as after a full disk or a crash during the write
    rerun = _run(model_dir, TINY_CLS + ["Experiment.train_steps = 6"], quickstart_dir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (f"warning: checkpoint {model_dir}/ckpt-4 (" in rerun.stdout
            and f"resuming from the previous good one, {model_dir}/ckpt-2" in rerun.stdout)
    assert f"resumed from {model_dir}/ckpt-2 at step 2" in rerun.stdout
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-6")
    # The step-4 checkpoint was written again, whole.
    tf.train.load_checkpoint(str(model_dir / "ckpt-4")).get_variable_to_shape_map()


def test_every_checkpoint_unreadable_is_an_error_not_a_fresh_start(tmp_path, quickstart_dir):
    model_dir = tmp_path / "run"
    assert _run(model_dir, TINY_CLS, quickstart_dir).returncode == 0
    for step in (2, 4):
        with open(model_dir / f"ckpt-{step}.data-00000-of-00001", "r+b") as f:
            f.truncate(10)
    rerun = _run(model_dir, TINY_CLS + ["Experiment.train_steps = 6"], quickstart_dir)
    assert rerun.returncode == 1
    assert "No checkpoint in" in rerun.stderr and "can be read" in rerun.stderr
    assert "Traceback" not in rerun.stderr
    assert sorted(p.name for p in model_dir.glob("ckpt-*.index")) == ["ckpt-2.index", "ckpt-4.index"]


NAN_AT_BATCH_3 = TINY_CLS + [
    "Experiment.train_steps = 8",
    "Experiment.train_data = @nan_batch_at",
    "nan_batch_at.data = @train/classification_dataset",
    "nan_batch_at.batch = 3",  # the second loop, steps 2 to 4
]


def test_a_nan_batch_with_recovery_reloads_and_finishes(tmp_path, quickstart_dir):
    model_dir = tmp_path / "run"
    out = _run(model_dir, NAN_AT_BATCH_3 + ["Experiment.recovery_max_trials = 2"], quickstart_dir,
               "--imports=tests.training.nan_fault")
    assert out.returncode == 0, out.stderr[-3000:]
    assert ("NaN/Inf between steps 2 and 4: recovery 1 of 2, reloaded "
            f"{model_dir}/ckpt-2 (step 2)") in out.stdout
    assert "recovery 2 of" not in out.stdout
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-8")


def test_a_nan_batch_without_recovery_stops_as_before(tmp_path, quickstart_dir):
    model_dir = tmp_path / "run"
    out = _run(model_dir, NAN_AT_BATCH_3, quickstart_dir, "--imports=tests.training.nan_fault")
    assert out.returncode == 1
    assert "NaN/Inf between steps 2 and 4. The last good checkpoint" in out.stderr
    assert "Traceback" not in out.stderr
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")


def _workers(n=2):
    return [f"127.0.0.1:{_free_port()}" for _ in range(n)]


def _start_worker(index, workers, model_dir, bindings, quickstart_dir, *extra):
    tf_config = json.dumps({"cluster": {"worker": workers},
                            "task": {"type": "worker", "index": index}})
    return subprocess.Popen(
        _cli(str(model_dir), "quickstart/digits.gin", bindings, quickstart_dir, "--mode=train",
             "--strategy=multi_worker_mirrored", *extra),
        env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=REPO)


def test_a_worker_that_never_comes_up_ends_the_wait(tmp_path, quickstart_dir):
    workers = _workers()
    start = time.time()
    chief = _start_worker(0, workers, tmp_path / "run", TINY_CLS, quickstart_dir,
                          "--worker_timeout=20")
    stdout, stderr = chief.communicate(timeout=200)
    took = time.time() - start
    assert chief.returncode == -signal.SIGKILL, stderr[-3000:]  # ended by its watchdog
    assert took < 20 + 60, took  # the timeout, plus TensorFlow's import and the report
    assert f"lost worker 1 ({workers[1]}) before the first step" in stderr
    assert "--worker_timeout=20 s" in stderr and "Traceback" not in stderr
    print(f"worker never up: chief exited after {took:.1f} s (timeout 20 s)")


def test_a_killed_worker_ends_the_survivor_and_a_restart_finishes(tmp_path, quickstart_dir):
    model_dir = tmp_path / "run"
    slow = TINY_CLS + ["Experiment.train_steps = 100000", "Experiment.steps_per_loop = 1",
                       "Experiment.checkpoint_interval = 2"]
    workers = _workers()
    procs = [_start_worker(i, workers, model_dir, slow, quickstart_dir) for i in range(2)]
    deadline = time.time() + 300
    while time.time() < deadline and not (tf.train.latest_checkpoint(str(model_dir)) or ""
                                          ).endswith(("ckpt-4", "ckpt-6", "ckpt-8")):
        time.sleep(0.2)
    procs[1].kill()
    killed_at = time.time()
    procs[1].communicate()
    stdout, stderr = procs[0].communicate(timeout=300)
    detect_s = time.time() - killed_at
    assert procs[0].returncode == WORKER_LOST_EXIT_CODE, stderr[-3000:]
    assert f"lost worker 1 ({workers[1]}) at step" in stderr and "Traceback" not in stderr
    print(f"killed worker: the survivor exited {detect_s:.1f} s after the kill")
    last = tf.train.latest_checkpoint(str(model_dir))
    done = int(last.rsplit("-", 1)[1])

    target = done + 2
    workers = _workers()
    procs = [_start_worker(i, workers, model_dir, slow + [f"Experiment.train_steps = {target}"],
                           quickstart_dir) for i in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert f"resumed from {last} at step {done}" in outs[0][0]
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{target}")
