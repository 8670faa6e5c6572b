r"""Converts a released ademxapp MXNet ``.params`` file into Keras ``.weights.h5`` (no MXNet).

See docs/weights.md. Example::

  keras-wideresnet-convert-weights --input ilsvrc-cls_rna-a1_cls1000_ep-0001.params \
      --model resnet38_a1 --output resnet38_a1.weights.h5
  keras-wideresnet-convert-weights --input voc_rna-a1_cls21_s8_ep-0001.params \
      --model resnet38_a1 --num_classes 21 --output_stride 8 --output voc_a1_os8.weights.h5

Then ``ResNet38(variant="a1", weights="resnet38_a1.weights.h5")`` or
``ResNet38Segmenter(21, weights="voc_a1_os8.weights.h5")``; for Model A use
``ResNet38(variant="a", pool_padding="caffe", weights=...)``.
"""

from absl import app, flags, logging

from keras_wideresnet.cli import _app  # first: it sets TF's C++ log level before TF loads

from keras_wideresnet.weights import RELEASED_MODELS, export_keras_weights

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "ademxapp .params file.", required=True)
flags.DEFINE_enum("model", None, sorted(RELEASED_MODELS), "Architecture of the file.",
                  required=True)
flags.DEFINE_string("output", None, "Output Keras weights, ending in .weights.h5.", required=True)
flags.DEFINE_integer("num_classes", None, "Expected classes (checked against linear{C}).")
flags.DEFINE_integer("output_stride", None, "Output stride (segmentation files: 8).")
flags.DEFINE_float("width_multiplier", 1.0, "Width multiplier (1.0 for the released files).")
flags.DEFINE_bool("check_md5", True, "Verify known release files against their published md5.")


def main(argv):
    del argv
    logging.info("Converting %s (%s)", FLAGS.input, FLAGS.model)
    model = export_keras_weights(
        FLAGS.input, FLAGS.output, model=FLAGS.model, num_classes=FLAGS.num_classes,
        output_stride=FLAGS.output_stride, width_multiplier=FLAGS.width_multiplier,
        check_md5=FLAGS.check_md5, verbose=True)
    logging.info("Wrote %s (model %s, %d weights)", FLAGS.output, model.name,
                 len(model.weights))


def run() -> None:
    """Console entry point (``keras-wideresnet-convert-weights``)."""
    _app.run(main, "keras-wideresnet-convert-weights")


if __name__ == "__main__":
    run()
