"""Throughput and compiled peak memory on the Keras JAX backend.

For accelerator machines that have JAX but no TensorFlow: the models use only ``keras.layers`` and
``keras.ops``, so the same ResNet-38 and keras.applications baselines run under
``KERAS_BACKEND=jax``. Each step is one ``jax.jit`` of Keras' stateless API; peak memory is XLA's
own buffer assignment for that step (``compiled.memory_analysis()``: arguments + temporaries),
which is exact for the compiled program and needs no process isolation.

    KERAS_BACKEND=jax python -m tools.benchmarking.jax_bench --output_dir=out
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Callable

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_wideresnet import applications  # noqa: E402
from tools.benchmarking.flops import TRAINING_FLOPS_FACTOR, count_flops  # noqa: E402

MODELS = {
    "resnet38_a": lambda shape: applications.ResNet38(input_shape=shape, classifier_activation=None),
    # Recomputation under JAX needs stateless BN (moving-average updates inside jax.checkpoint
    # leak tracers), so the memory comparison uses frozen statistics with and without it.
    "resnet38_a_frozenbn": lambda shape: applications.ResNet38(
        input_shape=shape, classifier_activation=None, bn_mode="frozen_stats"),
    "resnet38_a_frozenbn_recompute": lambda shape: applications.ResNet38(
        input_shape=shape, classifier_activation=None, bn_mode="frozen_stats", recompute=True),
    "resnet50v2": lambda shape: keras.applications.ResNet50V2(
        weights=None, input_shape=shape, classifier_activation=None),
    "resnet101v2": lambda shape: keras.applications.ResNet101V2(
        weights=None, input_shape=shape, classifier_activation=None),
    "resnet152v2": lambda shape: keras.applications.ResNet152V2(
        weights=None, input_shape=shape, classifier_activation=None),
}


def peak_matmul(dtype: str, n: int = 8192, iters: int = 10) -> float:
    """Measured peak matmul FLOP/s on the default device."""
    a = jnp.ones((n, n), dtype) / n
    b = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(iters):
        out = f(a, b)
    out.block_until_ready()
    return 2 * n**3 * iters / (time.perf_counter() - t0)


def _timed(fn, iters: int) -> list[float]:
    """Wall seconds per step, each synchronised with ``jax.block_until_ready``. The library's
    step timer (``keras_wideresnet.training.train_step``) imports TensorFlow, which the machines
    this tool is for may not have."""
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return times


def _training_step(model: keras.Model, tv: list, ntv: list, x, y) -> tuple[Callable, tuple]:
    """A jitted stateless SGD-momentum step ``(tv, ntv, ov, x, y) -> (loss, tv, ntv, ov)`` (its
    state buffers donated) and its first arguments."""
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    ov = [v.value for v in optimizer.variables]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compute_loss(tv, ntv, x, y):
        logits, ntv = model.stateless_call(tv, ntv, x, training=True)
        return loss_fn(y, logits.astype("float32")), ntv

    grad_fn = jax.value_and_grad(compute_loss, has_aux=True)

    def train(tv, ntv, ov, x, y):
        (loss, ntv), grads = grad_fn(tv, ntv, x, y)
        tv, ov = optimizer.stateless_apply(ov, grads, tv)
        return loss, tv, ntv, ov

    return jax.jit(train, donate_argnums=(0, 1, 2)), (tv, ntv, ov, x, y)


def bench(name: str, kind: str, precision: str, batch: int, resolution: int,
          iters: int = 10) -> dict:
    """One configuration: images/s, achieved FLOP/s and compiled peak memory."""
    keras.config.set_dtype_policy(precision)
    shape = (resolution, resolution, 3)
    model = MODELS[name](shape)
    flops = count_flops(model, shape).conv_dense
    x = jnp.asarray(np.random.default_rng(0).normal(size=(batch, *shape)).astype("float32"))
    y = jnp.asarray(np.random.default_rng(1).integers(0, 1000, size=(batch,)))
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    if kind == "inference":
        step = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
        args = (tv, ntv, x)
        useful = flops
    else:
        step, args = _training_step(model, tv, ntv, x, y)
        useful = TRAINING_FLOPS_FACTOR * flops
    t0 = time.perf_counter()
    compiled = step.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    peak = None
    if mem is not None:
        peak = int(mem.argument_size_in_bytes + mem.temp_size_in_bytes
                   + mem.output_size_in_bytes - mem.alias_size_in_bytes)

    state = {"args": args}

    def run():
        out = compiled(*state["args"])
        if kind == "training":
            loss, tv, ntv, ov = out
            state["args"] = (tv, ntv, ov, x, y)
            return loss
        return out

    run()  # warm-up
    times = _timed(run, iters)
    median = statistics.median(times)
    return {"model": name, "kind": kind, "precision": precision, "batch": batch,
            "resolution": resolution, "params": int(model.count_params()),
            "flops_per_image": int(flops), "median_step_s": median,
            "images_per_s": batch / median, "achieved_flops": useful * batch / median,
            "compiled_peak_bytes": peak, "compile_s": compile_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", default="benchmark_jax")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--inference_batch", type=int, default=64)
    parser.add_argument("--training_batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--models", default="resnet38_a,resnet50v2,resnet101v2,resnet152v2")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--training_precision", default="mixed_bfloat16")
    parser.add_argument("--training_models",
                        default="resnet38_a,resnet38_a_frozenbn,resnet38_a_frozenbn_recompute,"
                                "resnet101v2,resnet152v2")
    args = parser.parse_args()
    os.makedirs(args.output_dir, exist_ok=True)
    device = jax.devices()[0]
    records = {"device": str(getattr(device, "device_kind", device)), "backend": "jax",
               "jax": jax.__version__, "keras": keras.__version__, "results": []}
    precisions = set(args.precisions.split(",")) | {args.training_precision}
    records["peak_matmul"] = {p: peak_matmul("bfloat16" if "bfloat16" in p else "float32")
                              for p in sorted(precisions)}
    # Training (the memory comparison) first, then inference from the last precision listed.
    plan = [(m, "training", args.training_precision, args.training_batch)
            for m in args.training_models.split(",")]
    plan += [(m, "inference", p, args.inference_batch)
             for p in reversed(args.precisions.split(",")) for m in args.models.split(",")]
    for name, kind, precision, batch in plan:
        try:
            r = bench(name, kind, precision, batch, args.resolution, args.iters)
        except Exception as e:  # noqa: BLE001 - one failure must not lose the others
            r = {"model": name, "kind": kind, "precision": precision, "error": repr(e)[:500]}
        r["fraction_of_peak"] = (r["achieved_flops"] / records["peak_matmul"][precision]
                                 if "achieved_flops" in r else None)
        records["results"].append(r)
        print(json.dumps(r), flush=True)
        with open(os.path.join(args.output_dir, "results.json"), "w") as f:
            json.dump(records, f, indent=2)
    with open(os.path.join(args.output_dir, "results.md"), "w") as f:
        f.write(format_markdown(records))
    print(format_markdown(records))


def format_markdown(records: dict) -> str:
    lines = [f"Device: {records['device']} (Keras {records['keras']}, JAX {records['jax']}); "
             "peak matmul " + ", ".join(f"{k} {v / 1e12:.0f} TFLOP/s"
                                         for k, v in records["peak_matmul"].items()),
             "", "| model | step | precision | batch | img/s | of peak | compiled peak memory |",
             "|---|---|---|---|---|---|---|"]
    for r in records["results"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['kind']} | {r['precision']} | | error: "
                         f"{r['error'][:60]} | | |")
            continue
        mem = f"{r['compiled_peak_bytes'] / 2**30:.2f} GiB" if r["compiled_peak_bytes"] else "n/a"
        lines.append(f"| {r['model']} | {r['kind']} | {r['precision']} | {r['batch']} | "
                     f"{r['images_per_s']:.0f} | {r['fraction_of_peak']:.2f} | {mem} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
