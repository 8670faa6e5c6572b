"""Configs, subprocess isolation (crash capture) and report arithmetic of the benchmark."""

import json
import sys

import pytest

from tools.benchmarking import configs, report, runner
from tests.tolerances import UBF16, gamma


def test_presets_are_valid_and_labels_unique():
    for name in configs.PRESETS:
        labels = [c.label for c in configs.preset_configs(name)]
        assert labels and len(labels) == len(set(labels)), name
    with pytest.raises(ValueError, match="Unknown preset 'nope'"):
        configs.preset_configs("nope")


def test_bad_configs_name_the_field():
    with pytest.raises(ValueError, match="model must be one of"):
        configs.BenchConfig("inference", "resnet99")
    with pytest.raises(ValueError, match="recompute is only implemented"):
        configs.BenchConfig("training", "resnet50v2", recompute=True)
    with pytest.raises(ValueError, match="Unknown BenchConfig fields"):
        configs.BenchConfig.from_dict({"kind": "matmul", "size": 3})
    with pytest.raises(ValueError, match="keras_sgd selects the optimizer"):
        configs.BenchConfig("inference", keras_sgd=True)
    assert configs.BenchConfig("training", keras_sgd=True).label.endswith(", Keras SGD")
    with pytest.raises(ValueError, match="keras_bn selects the BN kernel"):
        configs.BenchConfig("training", keras_bn=True, framework="torch")
    assert configs.BenchConfig("training", keras_bn=True).label.endswith(", Keras BN")
    with pytest.raises(ValueError, match="interleaved_peer compares a family member"):
        configs.BenchConfig("interleaved_peer", "resnet50v2")
    with pytest.raises(ValueError, match="interleaved_peer compares a family member"):
        configs.BenchConfig("interleaved_peer", precision="mixed_float16")
    for bad in (dict(precision="mixed_bfloat16"), dict(onednn=False), dict(kind="agreement", model_dir="runs/x")):
        with pytest.raises(ValueError, match="bf16_math is oneDNN's math mode"):
            configs.BenchConfig(**{"kind": "training", "bf16_math": True, **bad})
    assert configs.BenchConfig("training", bf16_math=True, onednn=True).label.endswith(", bf16 math, oneDNN on")


def test_grid_skips_unsupported_recompute():
    grid = configs.grid_configs(["resnet38_a", "resnet50v2"], ["inference", "training"],
                                recompute=[False, True], resolution=32, batch_size=2)
    recomputed = [c for c in grid if c.recompute]
    assert [(c.model, c.kind) for c in recomputed] == [("resnet38_a", "training")]
    assert sum(c.kind == "matmul" for c in grid) == 1


def test_grid_takes_bf16_math_only_for_float32_with_onednn():
    grid = configs.grid_configs(["resnet38_a"], ["training"], ["float32", "mixed_bfloat16"],
                                onednn=[True, False], bf16_math=[False, True], resolution=32)
    math = [(c.kind, c.precision, c.onednn) for c in grid if c.bf16_math]
    assert math == [("matmul", "float32", True), ("training", "float32", True)]
    assert len(grid) == 2 * 2 * 2 + 2  # matmul and training: precision × oneDNN, plus the two above


def test_worker_env_sets_onednn_only_when_asked():
    base = {"PATH": "/bin"}
    train = runner.worker_env(configs.BenchConfig("training", resolution=32), base)
    infer = runner.worker_env(configs.BenchConfig("inference", resolution=32), base)
    forced = runner.worker_env(configs.BenchConfig("training", resolution=32, onednn=False), base)
    assert "TF_ENABLE_ONEDNN_OPTS" not in train and "TF_ENABLE_ONEDNN_OPTS" not in infer
    assert forced["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_worker_env_sets_the_math_mode_and_clears_a_callers():
    base = {"PATH": "/bin", "TF_SET_ONEDNN_FPMATH_MODE": "BF16", "ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}
    strict = runner.worker_env(configs.BenchConfig("training", resolution=32), base)
    math = runner.worker_env(configs.BenchConfig("training", resolution=32, bf16_math=True), {"PATH": "/bin"})
    assert not set(runner.FPMATH_ENV) & set(strict)  # a strict row is strict whatever the caller set
    assert math["TF_SET_ONEDNN_FPMATH_MODE"] == "BF16" and "ONEDNN_DEFAULT_FPMATH_MODE" not in math


_PROBE = """
import numpy as np, tensorflow as tf
rng = np.random.default_rng(0)
x = rng.normal(size=(2, 16, 16, 64)).astype(np.float32)
w = rng.normal(size=(3, 3, 64, 64)).astype(np.float32)
got = tf.nn.conv2d(x, w, 1, "SAME").numpy()
x64, w64 = x.astype(np.float64), w.astype(np.float64)
want = tf.nn.conv2d(x64, w64, 1, "SAME").numpy()  # float64 of the same inputs: exact enough
mag = tf.nn.conv2d(np.abs(x64), np.abs(w64), 1, "SAME").numpy()  # sum |x w| per output
print("ERR", float(np.max(np.abs(got - want) / mag)))
"""
_PROBE_TERMS = 3 * 3 * 64  # terms of each output's dot product


def test_the_math_mode_reaches_tf_in_the_worker():
    """The worker's environment sets oneDNN's float32 math mode on TF's convolutions (oneDNN's
    verbose log names the primitive attribute), and a strict row runs without it. Whether the
    CPU then uses bf16 products is oneDNN's choice per instruction set, so the results are held
    to what each mode allows, not to a CPU flag.

    The math mode acts only on TF's oneDNN ops, which TF turns on by default only on some CPUs
    (on an AVX2-only CPU its convolutions run through Eigen), so the probe asks for them."""
    errors, attributes = {}, {}
    for bf16_math in (False, True):
        config = configs.BenchConfig("matmul", bf16_math=bf16_math, onednn=True)
        env = dict(runner.worker_env(config), ONEDNN_VERBOSE="1")
        run = runner.run_subprocess([sys.executable, "-c", _PROBE], env, 300)
        assert run["status"] == "ok", run["stderr_tail"]
        errors[bf16_math] = float(run["stdout"].split("ERR")[-1])
        convs = [line for line in run["stdout"].splitlines()
                 if line.startswith("onednn_verbose") and ",exec,cpu,convolution," in line]
        assert convs, run["stdout"][-2000:]  # TF ran the convolution through oneDNN
        attributes[bf16_math] = all("attr-fpmath:bf16" in line for line in convs)
    assert attributes == {False: False, True: True}
    # Strict float32: a 576-term dot product in any order is within gamma(576) of sum |x w|.
    assert errors[False] <= gamma(_PROBE_TERMS)
    # BF16 math: each factor rounded to bfloat16 (2u + u^2 per product), float32 accumulation.
    assert errors[True] <= (2 * UBF16 + UBF16 ** 2) * (1 + gamma(_PROBE_TERMS)) + gamma(_PROBE_TERMS)


def test_abort_is_recorded_as_crash_and_exception_as_error():
    env = runner.worker_env(configs.BenchConfig("matmul"), {"PATH": "/bin"})
    crashed = runner.run_subprocess([sys.executable, "-c", "import os; os.abort()"], env, 60)
    assert crashed["status"] == "crashed" and crashed["reason"].startswith("SIGABRT")
    failed = runner.run_subprocess([sys.executable, "-c", "raise ValueError('boom 42')"], env, 60)
    assert failed["status"] == "error" and "boom 42" in failed["reason"]
    slow = runner.run_subprocess([sys.executable, "-c", "import time; time.sleep(30)"], env, 1)
    assert slow["status"] == "timeout"


def _record(kind, precision="float32", onednn="1", **result):
    cfg = configs.BenchConfig(kind, resolution=32, batch_size=2, precision=precision)
    return {"label": cfg.label, "config": __import__("json").loads(cfg.to_json()), "onednn_env": onednn,
            "status": "ok", "result": {"device": {"device_name": "x"}, "loadavg_1m": [1.0, 1.5], **result}}


def test_summary_fraction_of_peak_and_speedups():
    records = [
        _record("matmul", achieved_flops=80e9, peak_flops=100e9),
        _record("matmul", "mixed_bfloat16", achieved_flops=300e9, flops_per_step=400e9, step_times_s=[2.0, 1.0]),
        _record("inference", images_per_s=2.0, achieved_flops=90e9, peak_mib=1000.0, rss_before_mib=800.0,
                flops_per_image=45e9),
        _record("inference", "mixed_bfloat16", images_per_s=8.0, achieved_flops=360e9, peak_mib=900.0,
                rss_before_mib=800.0, flops_per_image=45e9),
        {"label": "x", "config": _record("training")["config"], "onednn_env": "1", "status": "crashed",
         "reason": "SIGABRT: double free"},
    ]
    summary = report.summarize(records)
    assert records[2]["result"]["fraction_of_peak"] == pytest.approx(0.9)
    assert records[3]["result"]["fraction_of_peak"] == pytest.approx(0.9)
    speedups = {c["what"]: c["speedup"] for c in summary["comparisons"]}
    assert speedups[records[3]["label"] + " vs float32"] == pytest.approx(4.0)
    assert summary["crashes"] == [{"label": "x", "reason": "SIGABRT: double free"}]
    md = report.format_markdown(records, summary)
    assert "| 0.90 |" in md and "**crashed**: SIGABRT: double free" in md


def test_steps_memory_prefers_the_allocator():
    alloc = {"peak_mib": 3000.0, "rss_before_mib": 2000.0, "alloc_peak_mib": 1500.0, "alloc_before_mib": 900.0}
    assert report._working(alloc) == pytest.approx(600.0)
    assert report._working({"peak_mib": 3000.0, "rss_before_mib": 2000.0}) == pytest.approx(1000.0)
    assert report._working({"peak_mib": 700.0}) == pytest.approx(700.0)
    assert runner.worker_env(configs.BenchConfig("matmul"), {})["TF_CPU_ALLOCATOR_USE_BFC"] == "true"


def test_rounds_merge_to_the_median_round_and_speedups_pair_rounds():
    def rec(kind, precision, ips, **extra):
        return _record(kind, precision, images_per_s=ips, achieved_flops=ips * 45e9, flops_per_image=45e9,
                       **extra)

    # Round 2 ran in a fast window for bf16 only: per-round ratios see 3, 3 and 3; medians see 9/3.
    raw = [_record("matmul", achieved_flops=80e9, peak_flops=100e9),
           rec("inference", "float32", 2.0), rec("inference", "mixed_bfloat16", 6.0),
           _record("matmul", achieved_flops=80e9, peak_flops=120e9),
           rec("inference", "float32", 3.0), rec("inference", "mixed_bfloat16", 9.0),
           _record("matmul", achieved_flops=80e9, peak_flops=90e9),
           rec("inference", "float32", 1.0), rec("inference", "mixed_bfloat16", 3.0)]
    merged = report.merge_rounds(raw)
    assert [r["label"] for r in merged] == [raw[0]["label"], raw[1]["label"], raw[2]["label"]]
    assert merged[0]["result"]["peak_flops"] == 120e9  # matmul: the best round
    assert merged[1]["result"]["images_per_s"] == 2.0 and merged[1]["rounds"] == 3
    assert merged[1]["result"]["round_images_per_s"] == [2.0, 3.0, 1.0]
    assert merged[2]["result"]["images_per_s"] == 6.0
    assert raw[1]["result"] is not merged[1]["result"]  # the raw rounds stay as measured
    assert report.speedup(merged[2]["result"], merged[1]["result"]) == pytest.approx(3.0)
    summary = report.summarize(merged)
    speedups = {c["what"]: c["speedup"] for c in summary["comparisons"]}
    assert speedups[raw[2]["label"] + " vs float32"] == pytest.approx(3.0)
    md = report.format_markdown(merged, summary)
    assert "median of 3 rounds: 2/3/1 img/s" in md

    # A failed round is reported, the others still merge; a single round is left as it is.
    failed = dict(rec("inference", "float32", 0.0), status="crashed", reason="SIGSEGV")
    del failed["result"]
    merged = report.merge_rounds([rec("inference", "float32", 2.0), failed])
    assert merged[0]["result"]["round_images_per_s"] == [2.0, None]
    assert merged[0]["round_failures"] == ["round 2: crashed SIGSEGV"]
    assert report.merge_rounds(raw[:3]) == raw[:3]
    with pytest.raises(ValueError, match="rounds"):
        runner.run_configs([], rounds=0)


def test_summary_compares_each_flag_with_its_baseline_and_the_port_with_keras():
    def rec(kind="training", ips=10.0, **fields):
        cfg = configs.BenchConfig(kind, resolution=32, batch_size=2, **fields)
        return {"label": cfg.label, "config": json.loads(cfg.to_json()), "onednn_env": "(TF default)",
                "status": "ok", "result": {"images_per_s": ips, "achieved_flops": ips * 1e9, "peak_mib": 100.0,
                                           "device": {"device_name": "x"}, "loadavg_1m": [1.0, 1.0]}}

    train, infer = rec(), rec("inference", ips=30.0)
    keras_bn, bf16, keras_sgd = rec(ips=5.0, keras_bn=True), rec(ips=20.0, bf16_math=True), rec(ips=8.0, keras_sgd=True)
    folded, port = rec("inference", ips=45.0, fold_bn=True), rec(ips=4.0, framework="torch")
    recompute = rec(ips=6.0, recompute=True)
    records = [train, infer, keras_bn, bf16, keras_sgd, folded, port, recompute]
    speedups = {c["what"]: c["speedup"] for c in report.summarize(records)["comparisons"]}
    assert speedups[keras_bn["label"] + " vs fused BN"] == pytest.approx(0.5)
    assert speedups[bf16["label"] + " vs strict float32"] == pytest.approx(2.0)
    assert speedups[keras_sgd["label"] + " vs FusedSGD"] == pytest.approx(0.8)
    assert speedups[recompute["label"] + " vs no recompute"] == pytest.approx(0.6)
    assert speedups[folded["label"] + " vs Keras BN"] == pytest.approx(1.5)
    assert speedups[f"{train['label']} vs {port['label']}"] == pytest.approx(2.5)  # Keras over the port
