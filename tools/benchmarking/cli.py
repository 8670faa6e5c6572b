r"""Throughput, achieved FLOP/s and peak memory of ResNet-38 and keras.applications baselines.

Every configuration runs in its own subprocess; results go to ``<output_dir>/benchmark.md`` and
``benchmark.json`` (rewritten after each configuration). See docs/benchmark.md.

  # CI-sized smoke run: every measurement kind once, at tiny widths
  python tools/benchmark.py --preset=smoke --output_dir=/tmp/bench_smoke

  # the CPU table of docs/benchmark.md
  python tools/benchmark.py --preset=cpu_quick --output_dir=runs/bench_cpu

  # one GPU, within a time budget (configurations left over are listed as skipped)
  python tools/benchmark.py --preset=gpu_full --output_dir=runs/bench_gpu --max_minutes=8

  # any members at a given size: the grid of the flags below
  python tools/benchmark.py --preset=custom --models=resnet38_a1,segmenter,resnet152v2 \
      --kinds=inference,training --precisions=float32,mixed_bfloat16 --resolution=320 --batch_size=2 \
      --output_dir=runs/bench_custom
"""

from __future__ import annotations

import os
import re
import sys

from absl import app, flags, logging

from keras_wideresnet.cli import _app  # first: it sets TF's C++ log level before TF loads

from tools.benchmarking import configs as configs_lib  # noqa: E402
from tools.benchmarking import report, runner  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "cpu_quick", sorted(configs_lib.PRESETS) + ["custom"],
                  "Configuration set; 'custom' = the grid of --models/--kinds/--precisions/...")
flags.DEFINE_string("output_dir", None, "Where benchmark.md and benchmark.json go; default: "
                    "runs/benchmark_<preset>.")
flags.DEFINE_string("filter", None, "Regex: keep only configurations whose label matches "
                    "(matmul rows are always kept, they give the peak).")
flags.DEFINE_string("agreement_model_dir", None,
                    "A trained run (e.g. runs/digits): add rows with the top-1 agreement of its "
                    "mixed_bfloat16 and folded-BN forms with float32 on its eval data.")
flags.DEFINE_boolean("list", False, "Print the configurations and exit.")
flags.DEFINE_float("timeout_s", 900, "Per-configuration timeout in seconds.")
flags.DEFINE_integer("rounds", 1, "Run the whole list this many times in rotation; the report shows "
                     "each configuration's median round and takes speed-ups per round (robust to a "
                     "host whose speed drifts).")
flags.DEFINE_float("max_minutes", None, "Stop starting configurations after this many minutes.")
# --preset=custom
flags.DEFINE_list("models", ["resnet38_a"], f"custom: models, from {', '.join(configs_lib.MODELS)}.")
flags.DEFINE_list("kinds", ["inference", "training"], "custom: inference and/or training.")
flags.DEFINE_list("precisions", ["float32"], f"custom: from {', '.join(configs_lib.PRECISIONS)}.")
flags.DEFINE_list("jit_compile", ["false"], "custom: false and/or true.")
flags.DEFINE_list("recompute", ["false"], "custom: false and/or true (training of family models).")
flags.DEFINE_list("fold_bn", ["false"], "custom: false and/or true (inference with BN folded).")
flags.DEFINE_list("onednn", ["default"], "custom: default, on and/or off (TF_ENABLE_ONEDNN_OPTS).")
flags.DEFINE_list("bf16_math", ["false"], "custom: false and/or true (float32 rows in oneDNN's BF16 math "
                  "mode, TF_SET_ONEDNN_FPMATH_MODE=BF16: bf16 products, float32 tensors).")
flags.DEFINE_integer("resolution", 224, "custom: input size.")
flags.DEFINE_integer("batch_size", 8, "custom: images per step.")
flags.DEFINE_float("width_multiplier", 1.0, "custom: width multiplier of family models.")
flags.DEFINE_integer("warmup", 2, "custom: warm-up steps.")
flags.DEFINE_integer("iters", 5, "custom: timed steps.")
flags.DEFINE_integer("classes", 1000, "custom: classes (segmenter: e.g. 21).")
flags.DEFINE_boolean("pipeline", False, "custom: also time the input pipeline vs plain decode.")


def _bools(values: list[str], name: str, allowed: dict) -> list:
    try:
        return [allowed[v.strip().lower()] for v in values]
    except KeyError as e:
        raise app.UsageError(f"--{name} accepts {sorted(allowed)}; got {values}") from e


def _configs() -> list[configs_lib.BenchConfig]:
    if FLAGS.preset != "custom":
        configs = configs_lib.preset_configs(FLAGS.preset)
    else:
        bools = {"false": False, "true": True}
        configs = configs_lib.grid_configs(
            FLAGS.models, FLAGS.kinds, FLAGS.precisions, _bools(FLAGS.jit_compile, "jit_compile", bools),
            _bools(FLAGS.recompute, "recompute", bools),
            _bools(FLAGS.onednn, "onednn", {"default": None, "on": True, "off": False}),
            with_pipeline=FLAGS.pipeline, fold_bn=_bools(FLAGS.fold_bn, "fold_bn", bools),
            bf16_math=_bools(FLAGS.bf16_math, "bf16_math", bools),
            resolution=FLAGS.resolution, batch_size=FLAGS.batch_size,
            width_multiplier=FLAGS.width_multiplier, warmup=FLAGS.warmup, iters=FLAGS.iters,
            classes=FLAGS.classes)
    if FLAGS.filter:
        pattern = re.compile(FLAGS.filter)
        configs = [c for c in configs if c.kind == "matmul" or pattern.search(c.label)]
    if FLAGS.agreement_model_dir:
        configs += [configs_lib.BenchConfig("agreement", precision=p, fold_bn=f,
                                            model_dir=FLAGS.agreement_model_dir)
                    for p, f in (("float32", True), ("mixed_bfloat16", False), ("mixed_bfloat16", True))]
    return configs


def main(argv):
    del argv
    try:
        configs = _configs()
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    if FLAGS.list:
        for c in configs:
            print(c.label)
        return
    if FLAGS.rounds < 1:
        raise app.UsageError(f"--rounds must be at least 1; got {FLAGS.rounds}")
    if not FLAGS.output_dir:
        FLAGS.output_dir = os.path.join("runs", f"benchmark_{FLAGS.preset}")
    records: list[dict] = []
    title = f"Benchmark (preset {FLAGS.preset})"

    def on_record(record):
        records.append(record)
        report.write_report(records, FLAGS.output_dir, title)

    runner.run_configs(configs, timeout_s=FLAGS.timeout_s,
                       max_total_s=FLAGS.max_minutes * 60 if FLAGS.max_minutes else None,
                       on_record=on_record, log=logging.info, rounds=FLAGS.rounds)
    report.write_report(records, FLAGS.output_dir, title)
    markdown = os.path.join(FLAGS.output_dir, "benchmark.md")
    logging.info("Wrote %s", markdown)
    with open(markdown) as f:  # the report as written (rounds merged)
        print(f.read())
    failed = [r for r in records if r["status"] in ("error", "timeout")]
    if failed:
        logging.error("%d configuration(s) failed: %s", len(failed), "; ".join(
            f"{r['label']}: {r.get('reason', '')}" for r in failed))
        sys.exit(1)


def run() -> None:
    """Entry point of ``python tools/benchmark.py``."""
    _app.run(main, "tools/benchmark.py")


if __name__ == "__main__":
    run()
