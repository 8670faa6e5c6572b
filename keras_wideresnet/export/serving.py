"""The serving graph: decode → evaluation preprocessing → model → evaluation post-processing.

Classification follows the paper's test protocol (resize the shorter side, centre
crop, normalise, optional flip averaging); segmentation follows its segmentation testing (resize the longer side,
pad to a multiple of 8 at the top-left, multi-scale/flip/tiles via
:func:`keras_wideresnet.tasks.inference.segmentation_probs`, crop the scaled region and
resize back to the original size). Both call the evaluator's own inference functions, so the
exported model answers exactly as ``keras-wideresnet-evaluate`` does.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from keras_wideresnet.data import preprocessing
from keras_wideresnet.export import decode
from keras_wideresnet.export.config import ServingConfig
from keras_wideresnet.tasks import inference

SEGMENTATION_PAD_LABEL = -1  # class_map value outside an image's own height x width.


class ServingFunctions:
    """Builds the three signature bodies for one model and :class:`ServingConfig`.

    Args:
      model: Keras model mapping normalised float32 images to logits (as trained).
      config: What to do around the model.
      class_name_lookup: Maps int64 class ids to names (a table over the ``labels.txt``
        asset); ``None`` uses an in-graph constant.
    """

    def __init__(self, model: Callable, config: ServingConfig,
                 class_name_lookup: Callable[[tf.Tensor], tf.Tensor] | None = None):
        self.model = model
        self.config = config
        if class_name_lookup is None:
            names = tf.constant(list(config.class_names))
            class_name_lookup = lambda ids: tf.gather(names, ids)  # noqa: E731
        self._lookup = class_name_lookup

    # -- the three input types ---------------------------------------
    def from_image_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        """``serving_default``: a batch of encoded images of any sizes."""
        return self._run(image_bytes, encoded=True, input_name="image_bytes")

    def from_image_tensor(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """``serving_image_tensor``: uint8 ``[B, H, W, 3]``."""
        images = decode.check_image_tensor(images, "images")
        return self._run(images, encoded=False, input_name="images")

    def from_tf_example(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        """``serving_tf_example``: serialized ``tf.Example`` protos with ``image/encoded``."""
        encoded = decode.parse_examples(examples)
        return self._run(encoded, encoded=True, input_name="examples[image/encoded]")

    # -- shared body ------------------------------------------------------------------------
    def _run(self, elements: tf.Tensor, encoded: bool, input_name: str) -> dict[str, tf.Tensor]:
        check = tf.debugging.Assert(
            tf.shape(elements)[0] > 0,
            [f"Invalid input `{input_name}`: the request holds no images (batch size 0)."])
        with tf.control_dependencies([check]):
            elements = tf.identity(elements)
        body = {"classification": self._classify, "segmentation": self._segment}[self.config.task]
        return body(elements, encoded, input_name)

    def _classify(self, elements, encoded: bool, input_name: str):
        cfg = self.config

        def prepare(element):
            if encoded:
                return preprocessing.classification_from_bytes(
                    decode.check_image_bytes(element, input_name), cfg.image_size,
                    cfg.resize_shorter)
            return preprocessing.classification_from_image(element, cfg.image_size,
                                                           cfg.resize_shorter)

        images = tf.map_fn(prepare, elements, fn_output_signature=tf.TensorSpec(
            [cfg.image_size, cfg.image_size, 3], tf.float32))
        probs = inference.classification_probs(self.model, images, flip=cfg.flip)
        scores, ids = tf.math.top_k(probs, k=cfg.effective_top_k)
        return {
            "probabilities": probs,
            "top_k_classes": ids,
            "top_k_scores": scores,
            "top_k_names": self._lookup(tf.cast(ids, tf.int64)),
        }

    def _segment(self, elements, encoded: bool, input_name: str):
        cfg = self.config
        to_image = ((lambda e: decode.decode_image(e, input_name)) if encoded
                    else (lambda image: image))
        num_classes = cfg.num_classes

        def segment_one(element):
            image = to_image(element)
            size = tf.shape(image)[:2]
            canvas, info = preprocessing.segmentation_eval_image(image, cfg.image_size,
                                                                 cfg.pad_multiple)
            probs = inference.segmentation_probs(self.model, canvas[tf.newaxis], scales=cfg.scales,
                                                 flip=cfg.flip, tile_size=cfg.tile_size)[0]
            probs = preprocessing.invert_segmentation_preprocessing(probs, info)
            probs.set_shape([None, None, num_classes])
            flat = tf.reshape(probs, [-1, num_classes])
            return flat, size

        flat, sizes = tf.map_fn(
            segment_one, elements,
            fn_output_signature=(tf.RaggedTensorSpec([None, num_classes], tf.float32, ragged_rank=0),
                                 tf.TensorSpec([2], tf.int32)))
        heights, widths = sizes[:, 0], sizes[:, 1]
        # Scatter each image's pixels into a [B, max H, max W] canvas (vectorised un-ragging).
        rows = tf.cast(flat.value_rowids(), tf.int32)
        pixel = tf.range(tf.shape(flat.values)[0], dtype=tf.int32) - tf.cast(
            tf.gather(flat.row_starts(), rows), tf.int32)
        w = tf.gather(widths, rows)
        indices = tf.stack([rows, pixel // w, pixel % w], axis=1)
        out_shape = tf.stack([tf.shape(sizes)[0], tf.reduce_max(heights), tf.reduce_max(widths)])
        labels = tf.argmax(flat.values, axis=-1, output_type=tf.int32)
        class_map = tf.tensor_scatter_nd_update(
            tf.fill(out_shape, tf.constant(SEGMENTATION_PAD_LABEL, tf.int32)), indices, labels)
        outputs = {"class_map": class_map, "height": heights, "width": widths}
        if cfg.include_probabilities:
            outputs["probabilities"] = tf.scatter_nd(
                indices, flat.values, tf.concat([out_shape, [num_classes]], axis=0))
        return outputs
