"""Runs each :class:`BenchConfig` in its own subprocess and records crashes.

A fresh process per configuration gives every one the oneDNN settings it asks for (TF reads
``TF_ENABLE_ONEDNN_OPTS`` at import and ``TF_SET_ONEDNN_FPMATH_MODE`` once), its own peak RSS,
and isolation: a configuration that aborts (e.g. glibc's "malloc(): unaligned tcache chunk" from
TF 2.21's oneDNN backprop-filter kernel) is reported as ``crashed`` with its signal and the end of
its stderr.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from typing import Callable, Sequence

import json

from tools.benchmarking.configs import BenchConfig
from tools.benchmarking.worker import RESULT_PREFIX

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CRASH_MARKERS = ("malloc(", "double free", "corrupted", "Segmentation fault", "free():", "munmap_chunk")


FPMATH_ENV = ("TF_SET_ONEDNN_FPMATH_MODE", "ONEDNN_DEFAULT_FPMATH_MODE")


def worker_env(config: BenchConfig, base: dict | None = None) -> dict:
    """Environment of the worker: oneDNN per config (None: inherited, i.e. TF's default); the
    float32 math mode per config (``bf16_math``; otherwise strict, whatever the caller's is)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("LIBC_FATAL_STDERR_", "1")  # glibc abort messages go to stderr, not the tty
    # TF's BFC allocator on CPU keeps the same peak statistics as on GPU (get_memory_info).
    env.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
    onednn = config.onednn
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"
    for name in FPMATH_ENV:
        env.pop(name, None)
    if config.bf16_math:
        env["TF_SET_ONEDNN_FPMATH_MODE"] = "BF16"
    return env


def run_subprocess(cmd: Sequence[str], env: dict, timeout_s: float) -> dict:
    """Runs ``cmd``; returns status ``ok``/``crashed``/``error``/``timeout``, stdout, stderr tail."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    try:
        proc = subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return {"status": "timeout", "returncode": None, "stdout": "", "stderr_tail": stderr[-2000:],
                "wall_s": time.perf_counter() - start, "reason": f"no result within {timeout_s:.0f} s"}
    out = {"returncode": proc.returncode, "stdout": proc.stdout, "stderr_tail": proc.stderr[-2000:],
           "wall_s": time.perf_counter() - start}
    # RUSAGE_CHILDREN is the max over all waited children: only meaningful if it grew.
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["children_maxrss_mib"] = after / 1024.0 if after > before else None
    if proc.returncode == 0:
        out["status"] = "ok"
    elif proc.returncode < 0 or any(m in proc.stderr for m in _CRASH_MARKERS):
        out["status"] = "crashed"
        sig = -proc.returncode if proc.returncode < 0 else None
        name = signal.Signals(sig).name if sig else f"exit {proc.returncode}"
        marker = next((line.strip() for line in proc.stderr.splitlines()
                       if any(m in line for m in _CRASH_MARKERS)), "")
        out["reason"] = f"{name}: {marker}" if marker else name
    else:
        out["status"] = "error"
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        out["reason"] = lines[-1][:300] if lines else f"exit {proc.returncode}"
    return out


def run_config(config: BenchConfig, timeout_s: float = 900.0) -> dict:
    """One configuration in a fresh ``python -m tools.benchmarking.worker`` process."""
    env = worker_env(config)
    cmd = [sys.executable, "-m", "tools.benchmarking.worker", config.to_json()]
    run = run_subprocess(cmd, env, timeout_s)
    record = {"label": config.label, "config": json.loads(config.to_json()),
              "onednn_env": env.get("TF_ENABLE_ONEDNN_OPTS", "(TF default)"),
              "status": run["status"], "wall_s": round(run["wall_s"], 2)}
    if run["status"] == "ok":
        lines = [line for line in run["stdout"].splitlines() if line.startswith(RESULT_PREFIX)]
        if not lines:
            record.update(status="error", reason="worker exited 0 without a BENCH_RESULT line",
                          stderr_tail=run["stderr_tail"])
        else:
            record["result"] = json.loads(lines[-1][len(RESULT_PREFIX):])
    else:
        record.update(reason=run.get("reason", ""), returncode=run["returncode"],
                      stderr_tail=run["stderr_tail"])
    return record


def run_configs(configs: Sequence[BenchConfig], *, timeout_s: float = 900.0, max_total_s: float | None = None,
                on_record: Callable[[dict], None] | None = None,
                log: Callable[[str], None] = print, rounds: int = 1) -> list[dict]:
    """Runs ``configs`` one after another (one process at a time), ``rounds`` times in rotation.

    Rotation (all configurations, then all again) keeps the rounds of two configurations close in
    time, so :func:`.report.merge_rounds` can take speed-ups per round. Configurations left when
    ``max_total_s`` has passed are recorded as ``skipped``, so a budgeted run (e.g. on a lent GPU)
    still writes a complete report. ``on_record`` sees each record as it arrives (the tool rewrites
    its report after every configuration).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1; got {rounds}")
    records: list[dict] = []
    start = time.perf_counter()
    total = len(configs) * rounds
    for n, config in enumerate(list(configs) * rounds):
        step = f"[{n + 1}/{total}]" + (f" round {n // len(configs) + 1}" if rounds > 1 else "")
        elapsed = time.perf_counter() - start
        if max_total_s is not None and elapsed > max_total_s:
            record = {"label": config.label, "config": json.loads(config.to_json()), "status": "skipped",
                      "reason": f"time budget of {max_total_s:.0f} s used up"}
        else:
            budget = timeout_s if max_total_s is None else max(30.0, min(timeout_s, max_total_s - elapsed + 30))
            log(f"{step} {config.label} (load {os.getloadavg()[0]:.2f}) ...")
            record = run_config(config, timeout_s=budget)
            result = record.get("result", {})
            detail = (f"{result['images_per_s']:.3g} img/s" if "images_per_s" in result else
                      f"{result['achieved_flops'] / 1e9:.1f} GFLOP/s" if "achieved_flops" in result else
                      record.get("reason", ""))
            log(f"{step} {record['status']} in {record['wall_s']:.0f} s: {detail}")
        records.append(record)
        if on_record is not None:
            on_record(record)
    return records
