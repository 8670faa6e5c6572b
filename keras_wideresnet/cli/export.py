"""Export a trained model for TF Serving.

    keras-wideresnet-export --model_dir=runs/voc --export_dir=serving/voc
    keras-wideresnet-export --gin_file=gin_configs/voc.gin --checkpoint=resnet38_a1_voc.weights.h5 \
        --export_dir=serving/voc --include_probabilities
    keras-wideresnet-export --model_dir=runs/imagenet --export_dir=out/litert --format=litert

Writes ``EXPORT_DIR/<version>/`` (TF Serving layout, next free version unless --version) with the
signatures serving_default (encoded image bytes), serving_image_tensor (uint8) and
serving_tf_example, preprocessing equal to keras-wideresnet-evaluate, and ``assets/labels.txt``.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from keras_wideresnet.cli import _app  # first: it sets TF's C++ log level before TF loads

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "gin file(s); default: MODEL_DIR/config.gin.")
flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
flags.DEFINE_string("model_dir", None, "Training model_dir (config.gin + checkpoints).")
flags.DEFINE_string("checkpoint", None,
                    "Checkpoint prefix or .weights.h5 (default: newest checkpoint in model_dir).")
flags.DEFINE_string("export_dir", None, "TF Serving model base path (or LiteRT/ONNX folder); "
                    "default: MODEL_DIR/export.")
flags.DEFINE_integer("version", None, "Version sub-directory (default: newest + 1).")
flags.DEFINE_bool("overwrite", False, "Replace an existing version / model file.")
flags.DEFINE_enum("format", "saved_model", ["saved_model", "litert", "onnx"], "Export format.")
flags.DEFINE_integer("top_k", 5, "Classification: number of top classes returned.")
flags.DEFINE_bool("include_probabilities", False,
                  "Segmentation: also return per-pixel class probabilities.")
flags.DEFINE_list("scales", None, "Segmentation test scales (default: the experiment's).")
flags.DEFINE_bool("flip", None, "Average with the mirrored image (default: the experiment's).")
flags.DEFINE_integer("tile_size", None, "Sliding-window tile side for large images.")
flags.DEFINE_bool("fold_batch_norm", True,
                  "Export the BN-folded inference form (same outputs, faster); false keeps Keras BN.")
flags.DEFINE_integer("eval_image_size", None, "Override the eval size (crop or longer side).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    source = FLAGS.checkpoint or FLAGS.model_dir
    if not source:
        raise app.UsageError("Pass --model_dir (a training run) or --checkpoint (a checkpoint "
                             "prefix or .weights.h5) to say which weights to export.")
    export_dir = FLAGS.export_dir or (FLAGS.model_dir and os.path.join(FLAGS.model_dir, "export"))
    if not export_dir:
        raise app.UsageError("Pass --export_dir (where the export goes): with --checkpoint alone "
                             "there is no MODEL_DIR/export to default to.")
    from keras_wideresnet.export.experiment_export import export_experiment
    from keras_wideresnet.config import gin_config

    experiment = gin_config.experiment_from_flags(FLAGS.gin_file, FLAGS.gin_bindings,
                                                  FLAGS.model_dir)
    experiment = experiment.with_eval_overrides(FLAGS.scales, FLAGS.flip, FLAGS.tile_size,
                                                FLAGS.eval_image_size)
    path = export_experiment(experiment, source, export_dir, export_format=FLAGS.format,
                             version=FLAGS.version, overwrite=FLAGS.overwrite, top_k=FLAGS.top_k,
                             include_probabilities=FLAGS.include_probabilities,
                             fold_bn=FLAGS.fold_batch_norm)
    logging.info("Exported %s", path)
    print(f"[keras_wideresnet] exported {path}")


def run() -> None:
    """Console entry point (``keras-wideresnet-export``)."""
    _app.run(main, "keras-wideresnet-export")


if __name__ == "__main__":
    run()
