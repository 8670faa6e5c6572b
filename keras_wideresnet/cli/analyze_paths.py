r"""Gradient magnitude by path length and effective depth; "wider or deeper" table.

Path analysis of a model (writes path_analysis.json, summary.txt and three PNGs)::

  # a trained run: its gin config rebuilds model, loss and eval data; the checkpoint is restored
  keras-wideresnet-analyze-paths --gin_file=gin_configs/quickstart/digits.gin \
      --checkpoint=runs/digits --output_dir=runs/digits/paths

  # a family member with (converted or trained) weights, on the quickstart data
  keras-wideresnet-analyze-paths --model=resnet38_a1 --width_multiplier=0.0625 --classes=10 \
      --weights=member.weights.h5 --quickstart_dir=/tmp/qs --output_dir=out/paths

  # a .keras file on TFRecords of our schema
  keras-wideresnet-analyze-paths --keras_model=model.keras --data_pattern='data/val-*' \
      --image_size=224 --output_dir=out/paths

The "wider or deeper" comparison (writes comparison.md and comparison.json)::

  keras-wideresnet-analyze-paths --mode=compare --quickstart_dir=/tmp/qs --output_dir=out/cmp \
      --member_run=gin_configs/analysis/wider_or_deeper/resnet38.gin@runs/wod_resnet38 \
      --member_run=gin_configs/analysis/wider_or_deeper/resnet16.gin@runs/wod_resnet16

Without --member_run, --mode=compare measures the default untrained members
(keras_wideresnet.analysis.wider_or_deeper_members) so the table's other columns can be checked.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging

from keras_wideresnet.cli import _app  # first: it sets TF's C++ log level before TF loads

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "paths", ["paths", "compare"], "Path analysis of one model, or the "
                  "wider-or-deeper comparison table.")
flags.DEFINE_string("output_dir", None, "Where JSON, PNG and Markdown files go; default: "
                    "CHECKPOINT/paths for a run's model_dir, else ./path_analysis.")
# Model (mode=paths): exactly one of --gin_file, --model, --keras_model.
flags.DEFINE_multi_string("gin_file", [], "gin config(s) of a training run (keras-wideresnet-train).")
flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
flags.DEFINE_string("checkpoint", None, "With --gin_file: model_dir, checkpoint prefix or "
                    ".weights.h5 to restore.")
flags.DEFINE_string("model", None, "Family spec name, e.g. resnet38_a1 (see list_specs()).")
flags.DEFINE_float("width_multiplier", 1.0, "With --model: width multiplier.")
flags.DEFINE_integer("classes", 10, "With --model / default members: classifier classes.")
flags.DEFINE_string("weights", None, "With --model: a .weights.h5 file.")
flags.DEFINE_string("keras_model", None, "A whole .keras model file.")
# Data: one of --data_pattern, --quickstart_dir, --npz (or the gin run's eval data).
flags.DEFINE_string("data_pattern", None, "TFRecord glob of our classification schema.")
flags.DEFINE_string("quickstart_dir", None, "Quickstart digits TFRecords (written if missing).")
flags.DEFINE_enum("quickstart_split", "validation", ["train", "validation"], "Quickstart split.")
flags.DEFINE_string("npz", None, ".npz with preprocessed images 'x' and labels 'y'.")
flags.DEFINE_integer("image_size", 32, "Input size for --data_pattern/--quickstart_dir/--model.")
flags.DEFINE_integer("batch_size", 32, "Images per batch (the loss is the batch mean).")
flags.DEFINE_integer("num_batches", 4, "Batches to sample from.")
# Measurement.
flags.DEFINE_integer("samples_per_k", 1000, "(batch, subset) samples per path length "
                     "(Veit et al.: 1000).")
flags.DEFINE_list("path_lengths", [], "Path lengths k to measure (default: all 0..n).")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_bool("training_mode", False, "Forward in training mode (batch-statistics BN).")
flags.DEFINE_enum("ed_method", "total", ["total", "cumulative", "relative"],
                  "Effective-depth definition (docs/analysis.md).")
flags.DEFINE_float("ed_fraction", None, "Effective-depth threshold (default per method).")
flags.DEFINE_integer("ed_reference_k", 0, "Reference k of --ed_method=relative.")
flags.DEFINE_string("from_json", None, "Re-plot an earlier path_analysis.json (e.g. with "
                    "another --ed_method) instead of measuring.")
flags.DEFINE_string("title", None, "Plot title (default: the model name).")
flags.DEFINE_bool("keep_samples", False, "Store every per-sample norm in the JSON.")
# Comparison.
flags.DEFINE_multi_string("member_run", [], "mode=compare: GIN_FILE@MODEL_DIR of a trained "
                          "member (repeat per member).")
flags.DEFINE_float("base_width", 1 / 16, "mode=compare without --member_run: width of the "
                   "ResNet-38 reference member.")
flags.DEFINE_list("members", [], "mode=compare without --member_run: which default members "
                  "(resnet68, resnet38, resnet20, resnet16; default all).")
flags.DEFINE_integer("timing_steps", 5, "mode=compare: timed training steps per member.")


def _validate_flags() -> None:
    """Cheap checks before TensorFlow is imported, so mistakes fail fast."""
    if not FLAGS.output_dir:
        run_dir = FLAGS.checkpoint if FLAGS.checkpoint and os.path.isdir(FLAGS.checkpoint) else None
        FLAGS.output_dir = os.path.join(run_dir, "paths") if run_dir else "path_analysis"
    data = [f for f in ("data_pattern", "quickstart_dir", "npz") if getattr(FLAGS, f)]
    if len(data) > 1:
        raise app.UsageError(f"Pass only one data source; got {data}.")
    if FLAGS.mode == "paths" and FLAGS.from_json:
        if not os.path.exists(FLAGS.from_json):
            raise app.UsageError(f"--from_json file {FLAGS.from_json!r} does not exist.")
        return
    if FLAGS.mode == "paths":
        chosen = [f for f in ("gin_file", "model", "keras_model") if getattr(FLAGS, f)]
        if len(chosen) != 1:
            raise app.UsageError("Pass exactly one model source: --gin_file (+ --checkpoint), "
                                 f"--model (+ --weights) or --keras_model. Got: "
                                 f"{chosen or 'none'}.")
        if FLAGS.gin_file and not FLAGS.checkpoint:
            raise app.UsageError("--gin_file needs --checkpoint (the run's model_dir).")
        if not data and not FLAGS.gin_file:
            raise app.UsageError("Pass a data source: --data_pattern, --quickstart_dir or --npz "
                                 "(or --gin_file to use the run's eval data).")
    elif not data:
        raise app.UsageError("--mode=compare needs --data_pattern, --quickstart_dir or --npz.")
    for flag in ("npz", "weights", "keras_model"):
        path = getattr(FLAGS, flag)
        if path and not os.path.exists(path):
            raise app.UsageError(f"--{flag} file {path!r} does not exist.")


def _data(experiment=None):
    from keras_wideresnet.analysis import sources

    if FLAGS.npz:
        return sources.npz_batches(FLAGS.npz, batch_size=FLAGS.batch_size,
                                   num_batches=FLAGS.num_batches)
    pattern = FLAGS.data_pattern
    if FLAGS.quickstart_dir:
        pattern = sources.quickstart_patterns(FLAGS.quickstart_dir,
                                              FLAGS.image_size)[FLAGS.quickstart_split]
    if pattern:
        return sources.tfrecord_batches(pattern, batch_size=FLAGS.batch_size,
                                        num_batches=FLAGS.num_batches,
                                        image_size=FLAGS.image_size)
    return sources.experiment_batches(experiment, FLAGS.num_batches)


def _ed_config():
    from keras_wideresnet.analysis import EffectiveDepthConfig

    return EffectiveDepthConfig(FLAGS.ed_method, FLAGS.ed_fraction, FLAGS.ed_reference_k)


def _paths_mode():
    from keras_wideresnet.analysis import sources
    from keras_wideresnet.analysis.plots import summary_lines

    if FLAGS.from_json:
        result, files = sources.replot_path_analysis(FLAGS.from_json, FLAGS.output_dir,
                                                     _ed_config(), title=FLAGS.title)
        print("\n".join(summary_lines(result)))
        for name, path in sorted(files.items()):
            print(f"[analyze_paths] wrote {name}: {path}")
        return
    experiment, loss_fn = None, "auto"
    if FLAGS.gin_file:
        model, experiment, loss_fn = sources.load_trained_model(
            _experiment(FLAGS.gin_file), FLAGS.checkpoint)
    elif FLAGS.model:
        model = sources.build_family_model(
            FLAGS.model, width_multiplier=FLAGS.width_multiplier, classes=FLAGS.classes,
            image_size=FLAGS.image_size, weights=FLAGS.weights)
    else:
        model = sources.load_keras_model(FLAGS.keras_model)
    data = _data(experiment)
    result, files = sources.run_path_analysis(
        model, data, FLAGS.output_dir, samples_per_k=FLAGS.samples_per_k,
        path_lengths=[int(k) for k in FLAGS.path_lengths] or None, seed=FLAGS.seed,
        loss_fn=loss_fn, training=FLAGS.training_mode, effective_depth_config=_ed_config(),
        title=FLAGS.title, keep_samples=FLAGS.keep_samples)
    print("\n".join(summary_lines(result)))
    for name, path in sorted(files.items()):
        print(f"[analyze_paths] wrote {name}: {path}")


def _experiment(gin_files):
    """The Experiment of ``gin_files`` with the tool's ``--gin_bindings``."""
    from keras_wideresnet.config import gin_config

    gin_config.parse_gin(list(gin_files), list(FLAGS.gin_bindings))
    return gin_config.load_experiment()


def _compare_mode():
    from keras_wideresnet.analysis import (
        Member,
        compare_members,
        comparison_markdown,
        sources,
        wider_or_deeper_members,
    )

    members = []
    for entry in FLAGS.member_run:
        gin_file, sep, model_dir = entry.rpartition("@")
        if not sep or not gin_file or not model_dir:
            raise app.UsageError(f"--member_run must look like GIN_FILE@MODEL_DIR. Got {entry!r}.")
        model, _, _ = sources.load_trained_model(_experiment([gin_file]), model_dir)
        label = os.path.splitext(os.path.basename(gin_file))[0]
        members.append(Member(model=model, metrics=model_dir, label=label))
    if not members:
        members = wider_or_deeper_members(FLAGS.base_width, FLAGS.classes,
                                          names=FLAGS.members or None)
    rows = compare_members(members, _data(), classes=FLAGS.classes,
                           samples_per_k=FLAGS.samples_per_k,
                           path_lengths=[int(k) for k in FLAGS.path_lengths] or None,
                           seed=FLAGS.seed, timing_steps=FLAGS.timing_steps,
                           effective_depth_config=_ed_config())
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    table = comparison_markdown(rows)
    with open(os.path.join(FLAGS.output_dir, "comparison.md"), "w", encoding="utf-8") as f:
        f.write(table)
    with open(os.path.join(FLAGS.output_dir, "comparison.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=2)
    print(table)
    print(f"[analyze_paths] wrote {os.path.join(FLAGS.output_dir, 'comparison.md')}")


def main(argv):
    del argv
    _validate_flags()
    logging.set_verbosity(logging.INFO)
    try:
        _paths_mode() if FLAGS.mode == "paths" else _compare_mode()
    except (ValueError, FileNotFoundError) as e:
        print(f"[analyze_paths] error: {e}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    """Console entry point (``keras-wideresnet-analyze-paths``)."""
    _app.run(main, "keras-wideresnet-analyze-paths")


if __name__ == "__main__":
    run()
