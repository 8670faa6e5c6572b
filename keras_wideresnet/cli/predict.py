"""Segment an image or a folder and write colour-palette masks and overlays (PNG).

    keras-wideresnet-predict --model_dir=runs/shapes --input=photo.jpg --output_dir=preds
"""

from __future__ import annotations

import os

from absl import app, flags

from keras_wideresnet.cli import _app  # first: it sets TF's C++ log level before TF loads

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "gin file(s); default: MODEL_DIR/config.gin.")
flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
flags.DEFINE_string("model_dir", None, "Training model_dir (config.gin + checkpoints).")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or .weights.h5 (default: newest in model_dir).")
flags.DEFINE_string("input", None, "An image file or a folder of images.")
flags.DEFINE_string("output_dir", "predictions", "Where <name>_mask.png and <name>_overlay.png go.")
flags.DEFINE_list("scales", None, "Test scales (default: the experiment's).")
flags.DEFINE_bool("flip", None, "Average with the mirrored image (default: the experiment's).")


def main(argv):
    del argv
    from keras_wideresnet.evaluation import predict
    from keras_wideresnet.config import gin_config
    from keras_wideresnet.tasks import get_task
    from keras_wideresnet.training.checkpoints import restore_model

    if not FLAGS.input or not os.path.exists(FLAGS.input):
        raise app.UsageError(f"--input {FLAGS.input!r} does not exist: pass an image or a folder.")
    experiment = gin_config.experiment_from_flags(FLAGS.gin_file, FLAGS.gin_bindings,
                                                  FLAGS.model_dir)
    experiment = experiment.with_eval_overrides(FLAGS.scales, FLAGS.flip)
    if get_task(experiment.task).record_kind != "segmentation":
        raise app.UsageError("keras-wideresnet-predict writes masks for segmentation experiments; "
                             "use keras-wideresnet-evaluate or the exported model for classifiers.")
    model = experiment.build_model()
    restore_model(model, FLAGS.checkpoint or FLAGS.model_dir)
    paths = ([os.path.join(FLAGS.input, f) for f in sorted(os.listdir(FLAGS.input))
              if f.lower().endswith(predict.IMAGE_EXTENSIONS)]
             if os.path.isdir(FLAGS.input) else [FLAGS.input])
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    for i, path in enumerate(paths, 1):
        image = predict.read_image(path)
        class_map = predict.segment_image(model, image, experiment.eval_image_size,
                                          experiment.eval_scales, experiment.eval_flip,
                                          experiment.eval_tile_size)
        stem = os.path.splitext(os.path.basename(path))[0]
        predict.save_mask_and_overlay(class_map, image,
                                      os.path.join(FLAGS.output_dir, f"{stem}_mask.png"),
                                      os.path.join(FLAGS.output_dir, f"{stem}_overlay.png"))
        print(f"[{i}/{len(paths)}] {path} -> {FLAGS.output_dir}/{stem}_mask.png", flush=True)


def run() -> None:
    """Console entry point (``keras-wideresnet-predict``)."""
    _app.run(main, "keras-wideresnet-predict")


if __name__ == "__main__":
    run()
