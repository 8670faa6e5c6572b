"""Evaluate a trained model the way the published numbers were produced.

    keras-wideresnet-evaluate --model_dir=runs/shapes --scales=0.75,1,1.25 --flip \
        --output_json=runs/shapes/eval.json

Segmentation: single- or multi-scale with flip averaging and optional sliding-window tiles,
scored at the original label resolution; prints a per-class IoU table. Classification: top-1/5
at the experiment's crop size (override with --eval_image_size), optional flip.
"""

from __future__ import annotations

import json

from absl import app, flags

from keras_wideresnet.cli import _app  # first: it sets TF's C++ log level before TF loads

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "gin file(s); default: MODEL_DIR/config.gin.")
flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
flags.DEFINE_string("model_dir", None, "Training model_dir (config.gin + checkpoints).")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or .weights.h5 (default: newest in model_dir).")
flags.DEFINE_list("scales", None, "Test scales, e.g. 0.75,1,1.25 (default: the experiment's).")
flags.DEFINE_bool("flip", None, "Average with the mirrored image (default: the experiment's).")
flags.DEFINE_integer("tile_size", None, "Sliding-window tile side for large images.")
flags.DEFINE_integer("eval_image_size", None, "Override the eval size (crop or longer side).")
flags.DEFINE_integer("eval_steps", None, "Evaluate only this many batches.")
flags.DEFINE_string("output_json", None, "Write the scores here as JSON.")


def main(argv):
    del argv
    from keras_wideresnet.evaluation import evaluator
    from keras_wideresnet.config import gin_config
    from keras_wideresnet.tasks import get_task
    from keras_wideresnet.training.checkpoints import restore_model

    experiment = gin_config.experiment_from_flags(FLAGS.gin_file, FLAGS.gin_bindings,
                                                  FLAGS.model_dir)
    experiment = experiment.with_eval_overrides(FLAGS.scales, FLAGS.flip, FLAGS.tile_size,
                                                FLAGS.eval_image_size, FLAGS.eval_steps)
    model = experiment.build_model()
    source = FLAGS.checkpoint or FLAGS.model_dir
    if not source:
        raise app.UsageError("Pass --model_dir or --checkpoint.")
    restored = restore_model(model, source)
    print(f"[keras_wideresnet] evaluating {restored}")
    scores = evaluator.evaluate(model, experiment)
    print(get_task(experiment.task).format_scores(scores))
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump(dict(scores, checkpoint=restored), f, indent=2)


def run() -> None:
    """Console entry point (``keras-wideresnet-evaluate``)."""
    _app.run(main, "keras-wideresnet-evaluate")


if __name__ == "__main__":
    run()
