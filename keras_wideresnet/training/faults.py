"""What a long run does when its machine, a peer or its data goes away.

* **Preemption.** Kubernetes, Slurm and cloud VMs send SIGTERM before they take a machine.
  :func:`watch_sigterm` turns it into a :class:`StopSignal`; the trainer then saves a
  checkpoint at the step it reached and raises :class:`TrainingPreempted`, and the CLI exits
  with :data:`PREEMPTED_EXIT_CODE`. Under MultiWorkerMirrored every worker learns of a stop
  through one small all-reduce per loop, so all of them save the same step (the agreement
  TF's ``PreemptionCheckpointHandler`` reaches through the coordination service; that handler
  is not used because it restores a checkpoint itself when built and adds its own counter to
  the checkpoint, which would bypass the fallback to the previous good checkpoint and break
  the restore of checkpoints written without it).
* **A lost worker.** TF's coordination service detects a peer that died during training
  (its heartbeats stop) and aborts the collectives; :func:`lost_worker_message` says which
  peer does not answer and what to do. Before the first step has run, nothing in TF bounds
  the wait for a peer that never comes up: :class:`StartupWatchdog` does.

This module imports no TensorFlow, so that the CLI can block SIGTERM before TF starts its
threads and the watchdog process starts at once.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from typing import Callable

PREEMPTED_EXIT_CODE = 42  # TF's own restart code for a preempted worker (failure_handling)
WORKER_LOST_EXIT_CODE = 3  # a peer was lost during training
WATCHDOG_EXIT_CODE = 128 + signal.SIGKILL  # no first step within --worker_timeout


class TrainingPreempted(Exception):
    """Training stopped on request after saving a checkpoint at ``step``."""

    def __init__(self, step: int, checkpoint: str | None):
        self.step, self.checkpoint = step, checkpoint
        super().__init__(f"stopped by SIGTERM at step {step}; saved {checkpoint}. Re-run the same "
                         "command to resume from that step.")


class WorkerLostError(RuntimeError):
    """A peer of a multi-worker run stopped answering."""


class StopSignal:
    """The channel between the CLI's watchers and the trainer: a stop request, set from a
    signal-watcher thread and read by the trainer, and the trainer's word that a step ran.

    ``subscribe`` runs a callback when the request is set (at once if it already is), so that
    the trainer can also stop inside a compiled loop; ``subscribe_first_step`` runs one when
    the first training loop has finished (:class:`StartupWatchdog` disarms then).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._first_step_callbacks: list[Callable[[], None]] = []
        self.training = False  # set by the trainer while there is a step to save

    def subscribe_first_step(self, callback: Callable[[], None]) -> None:
        self._first_step_callbacks.append(callback)

    def step_ran(self) -> None:
        """Called by the trainer after each loop."""
        callbacks, self._first_step_callbacks = self._first_step_callbacks, []
        for callback in callbacks:
            callback()

    def set(self) -> None:
        self._event.set()
        for callback in list(self._callbacks):
            callback()

    def is_set(self) -> bool:
        return self._event.is_set()

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
        if self.is_set():
            callback()


def watch_sigterm(stop: StopSignal, prog: str) -> None:
    """Blocks SIGTERM in this thread, and so in every thread started after it, and waits for it
    in a daemon thread. Call it first in ``main``, before TensorFlow is imported.

    The first SIGTERM sets ``stop``: during training the run saves and exits; before training
    (starting up, waiting for peers, evaluating) there is no step to save and the process exits
    at once with :data:`PREEMPTED_EXIT_CODE`. A second SIGTERM always exits at once.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

    def wait() -> None:
        signal.sigwait({signal.SIGTERM})
        if stop.training:
            print(f"[keras_wideresnet] SIGTERM: saving a checkpoint at the end of the current "
                  "step, then exiting", flush=True)
            stop.set()
            signal.sigwait({signal.SIGTERM})
        print(f"{prog}: stopped by SIGTERM before or after training; no step was lost. Re-run "
              "the same command to go on.", file=sys.stderr, flush=True)
        os._exit(PREEMPTED_EXIT_CODE)

    threading.Thread(target=wait, name="sigterm-watcher", daemon=True).start()


def cluster_peers(tf_config: str | None = None) -> dict[str, str]:
    """``{"worker 1": "127.0.0.1:2223", ...}`` for the other tasks of ``TF_CONFIG``."""
    config = json.loads(tf_config if tf_config is not None else os.environ.get("TF_CONFIG", "{}"))
    me = config.get("task", {})
    peers = {}
    for job, addresses in config.get("cluster", {}).items():
        for index, address in enumerate(addresses):
            if (job, index) != (me.get("type"), me.get("index")):
                peers[f"{job} {index}"] = address
    return peers


def unreachable_peers(tf_config: str | None = None, timeout_s: float = 2.0) -> list[str]:
    """The peers of ``TF_CONFIG`` whose gRPC port accepts no connection."""
    lost = []
    for name, address in cluster_peers(tf_config).items():
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                pass
        except OSError:
            lost.append(f"{name} ({address})")
    return lost


def lost_worker_message(step: int | None, checkpoint: str | None, detail: str = "") -> str:
    lost = unreachable_peers()
    who = ", ".join(lost) if lost else "a peer of this run (every address in TF_CONFIG still " \
        "accepts connections; it may have failed without exiting)"
    where = f"at step {step}" if step is not None else "before the first step"
    resume = f"the last checkpoint, {checkpoint}" if checkpoint else "the start"
    return (f"lost {who} {where}{': ' + detail if detail else ''}. Restart every worker with "
            f"the same commands; the run resumes from {resume}.")


class StartupWatchdog:
    """Ends the process if the cluster has not run its first step within ``timeout_s``.

    A multi-worker run waits for every task of ``TF_CONFIG`` to connect before its first
    collective, without a time limit, and TF holds Python's interpreter lock while it waits,
    so no thread of this process can act; a peer that never comes up would keep the others
    waiting for ever. The watchdog is therefore a small process of its own
    (``python -m keras_wideresnet.training.faults``): past the timeout it prints which peer
    does not answer and what to do, and kills this process (status 137, SIGKILL: the one
    signal a process stuck in TF's wait cannot defer). ``disarm`` once a step has run: from
    then on TF's heartbeats detect a lost peer.
    """

    def __init__(self, timeout_s: float, prog: str):
        self.timeout_s, self.prog = timeout_s, prog
        self._proc: subprocess.Popen | None = None

    def arm(self) -> "StartupWatchdog":
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(os.getpid()), str(self.timeout_s), self.prog],
            stdin=subprocess.PIPE)
        return self

    def disarm(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()  # the watchdog reads end-of-file and exits
            self._proc.wait()
        self._proc = None


def _watchdog_main(argv: list[str]) -> int:
    """The watchdog process: waits ``timeout_s`` for end-of-file on stdin (disarmed, or the
    watched process ended), else reports and kills the watched process."""
    pid, timeout_s, prog = int(argv[0]), float(argv[1]), argv[2]
    readable, _, _ = select.select([sys.stdin], [], [], timeout_s)
    if readable:
        return 0
    message = lost_worker_message(None, None, f"no step ran within --worker_timeout={timeout_s:g} s")
    print(f"{prog}: error: {message} Start every task listed in TF_CONFIG, or raise "
          "--worker_timeout if start-up is slower than that.", file=sys.stderr, flush=True)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(_watchdog_main(sys.argv[1:]))
