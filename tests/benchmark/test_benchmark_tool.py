"""CI smoke test: python tools/benchmark.py --preset=smoke end to end (through tools/benchmark.py), no timing asserts."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "benchmark.py")


def _run(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def test_smoke_preset_end_to_end(tmp_path):
    out = tmp_path / "bench"
    proc = _run("--preset=smoke", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "benchmark.json").read_text())
    records = {r["label"]: r for r in data["records"]}
    assert len(records) == 10 and all(r["status"] == "ok" for r in records.values()), records
    for r in records.values():
        res = r["result"]
        assert res["device"]["tf"] and len(res["loadavg_1m"]) == 2
        if r["config"]["kind"] in ("inference", "training"):
            assert res["images_per_s"] > 0 and res["flops_per_image"] > 0 and res["peak_mib"] > 0
            assert 0 < res["fraction_of_peak"]
            assert len(res["step_times_s"]) == r["config"]["iters"]
    train = records["resnet38_a w×0.03125, training, 32px b2, float32"]
    assert train["onednn_env"] == os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(TF default)")  # inherited
    assert train["result"]["final_loss"] > 0
    # Steps' memory from TF's CPU allocator (BFC, set by the runner), after the warm-up steps.
    assert train["result"]["alloc_peak_mib"] > train["result"]["alloc_before_mib"] > 0
    pipe = records["pipeline 32px b4, JPEG q90"]["result"]
    assert pipe["images_per_s"] > 0 and pipe["decode_images_per_s"] > 0
    assert len(pipe["rounds"]["pipeline"]) == len(pipe["rounds"]["decode"]) == 3
    assert 0.1 < pipe["jpeg_bytes_per_pixel"] < 1.0  # real photographic content, not flat images
    unfused = records["resnet38_a w×0.03125, training, 32px b2, float32, Keras SGD"]["result"]
    assert unfused["final_loss"] > 0 and unfused["alloc_peak_mib"] > 0
    assert any(c["what"].endswith("Keras SGD vs FusedSGD") for c in data["summary"]["comparisons"])
    math = records["matmul 256, float32, bf16 math, oneDNN on"]["result"]
    assert math["device"]["fpmath_env"] == "BF16"
    assert train["result"]["device"]["fpmath_env"] == "(unset: strict)"
    assert "float32 (oneDNN 1, bf16 math)" in data["summary"]["peaks"]  # its own peak
    inter = next(r["result"] for label, r in records.items() if "interleaved float32/" in label)
    assert set(inter["variants"]) == {"float32", "float32, folded BN", "mixed_bfloat16",
                                      "mixed_bfloat16, folded BN"}
    assert inter["variants"]["float32"]["speedup"] == 1.0
    assert all(len(v["step_times_s"]) == 2 for v in inter["variants"].values())
    inter_bn = records["resnet38_a training 32px b2, mixed_bfloat16, interleaved Keras/fused BN"]["result"]
    assert list(inter_bn["variants"]) == ["Keras BN", "fused BN"]
    assert inter_bn["variants"]["Keras BN"]["speedup"] == 1.0 and inter_bn["variants"]["fused BN"]["speedup"] > 0
    assert inter_bn["images_per_s"] == inter_bn["variants"]["fused BN"]["images_per_s"]
    inter_peer = records["resnet38_a training 32px b2, mixed_bfloat16, interleaved PyTorch port/Keras"]["result"]
    assert list(inter_peer["variants"]) == ["PyTorch port", "Keras"]
    assert all(len(v["step_times_s"]) == 2 and v["speedup"] > 0 for v in inter_peer["variants"].values())
    md = (out / "benchmark.md").read_text()
    assert "interleaved Keras/fused BN | ok (Keras BN " in md
    assert "| configuration | status | img/s" in md and "resnet50v2, inference" in md
    assert md.strip() in proc.stdout  # the tool prints the report it wrote

    # The FLOPs in the report are the layer count of the same model built here.
    from keras_wideresnet.applications import ResNet38
    from tools.benchmarking.flops import count_flops

    model = ResNet38(width_multiplier=1 / 32, input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    infer = records["resnet38_a w×0.03125, inference, 32px b2, float32"]["result"]
    assert infer["flops_per_image"] == count_flops(model, (32, 32, 3)).conv_dense


@pytest.mark.parametrize("args, message", [
    (["--preset=custom", "--models=resnet99", "--output_dir=x"], "model must be one of"),
    (["--preset=custom", "--kinds=flying", "--output_dir=x"], "kind must be one of"),
    (["--preset=custom", "--onednn=maybe", "--output_dir=x"], "--onednn accepts"),
    (["--preset=smoke", "--rounds=0", "--output_dir=x"], "--rounds must be at least 1"),
])
def test_usage_errors_are_clear(args, message):
    proc = _run(*args, timeout=120)
    assert proc.returncode != 0 and message in proc.stderr + proc.stdout
    # One message and a pointer to --help: no flag listing, no traceback.
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) <= 3, proc.stderr
