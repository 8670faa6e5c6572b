"""TFRecord schema shared by converters, quickstart data and pipelines.

Keys follow TF Model Garden (``official/vision/data/tf_example_feature_key.py``): ``image/encoded``, ``image/format``,
``image/height``, ``image/width``, ``image/channels``, ``image/source_id``, ``image/filename``,
``image/class/label`` (classification) and ``image/segmentation/class/encoded`` (PNG) plus
``image/segmentation/class/format`` (segmentation). Ignore label: 255 (docs/architecture.md §7.6).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_CHANNELS = "image/channels"
IMAGE_SOURCE_ID = "image/source_id"
IMAGE_FILENAME = "image/filename"
CLASS_LABEL = "image/class/label"
MASK_ENCODED = "image/segmentation/class/encoded"
MASK_FORMAT = "image/segmentation/class/format"

IGNORE_LABEL = 255
TASKS = ("classification", "segmentation")  # the record kinds: a class label, or a mask


def holds_class_label(record_kind: str) -> bool:
    """Whether records of this kind hold a class label (``"classification"``); the other kind,
    ``"segmentation"``, holds a mask. Every data module asks this instead of comparing names."""
    if record_kind not in TASKS:
        raise ValueError(f"task (the record kind) must be one of {TASKS}. Received: {record_kind!r}")
    return record_kind == TASKS[0]


def _bytes(value: bytes | str) -> tf.train.Feature:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def make_example(
    *,
    encoded: bytes,
    image_format: str,
    height: int,
    width: int,
    source_id: str,
    filename: str = "",
    channels: int = 3,
    label: int | None = None,
    mask_png: bytes | None = None,
) -> tf.train.Example:
    """Builds one ``tf.train.Example`` with the Model Garden keys."""
    feature = {
        IMAGE_ENCODED: _bytes(encoded),
        IMAGE_FORMAT: _bytes(image_format),
        IMAGE_HEIGHT: _int64(height),
        IMAGE_WIDTH: _int64(width),
        IMAGE_CHANNELS: _int64(channels),
        IMAGE_SOURCE_ID: _bytes(source_id),
        IMAGE_FILENAME: _bytes(filename or source_id),
    }
    if label is not None:
        feature[CLASS_LABEL] = _int64(label)
    if mask_png is not None:
        feature[MASK_ENCODED] = _bytes(mask_png)
        feature[MASK_FORMAT] = _bytes("png")
    return tf.train.Example(features=tf.train.Features(feature=feature))


def parse_spec(task: str) -> dict[str, tf.io.FixedLenFeature]:
    """``tf.io.parse_single_example`` spec; every key but the image and its label is optional.

    Optional keys get defaults so that records written by Model Garden's own tools (which may
    omit ``image/channels``, ``image/source_id`` or ``image/format``) read through our pipelines.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}. Received: task={task!r}")
    spec = {
        IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string),
        IMAGE_FORMAT: tf.io.FixedLenFeature((), tf.string, default_value=""),
        IMAGE_HEIGHT: tf.io.FixedLenFeature((), tf.int64, default_value=-1),
        IMAGE_WIDTH: tf.io.FixedLenFeature((), tf.int64, default_value=-1),
        IMAGE_SOURCE_ID: tf.io.FixedLenFeature((), tf.string, default_value=""),
        IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, default_value=""),
    }
    if holds_class_label(task):
        spec[CLASS_LABEL] = tf.io.FixedLenFeature((), tf.int64)
    else:
        spec[MASK_ENCODED] = tf.io.FixedLenFeature((), tf.string)
    return spec


def record_name(parsed: dict[str, tf.Tensor]) -> tf.Tensor:
    """A printable name for a parsed record (source id, else file name) for error messages."""
    return tf.where(
        tf.strings.length(parsed[IMAGE_SOURCE_ID]) > 0, parsed[IMAGE_SOURCE_ID], parsed[IMAGE_FILENAME]
    )


def tfds_features(task: str, class_names: Sequence[str]):
    """The ``tfds.features.FeaturesDict`` describing our records.

    TFDS flattens nested dicts with ``/``, so ``{"image": {"encoded": ...}}`` *is* the
    ``image/encoded`` key: ``tfds.builder_from_directory`` reads our shards unchanged.
    """
    import tensorflow_datasets as tfds

    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}. Received: task={task!r}")
    image = {
        "encoded": tfds.features.Image(shape=(None, None, 3)),
        "format": tfds.features.Text(),
        "height": tfds.features.Scalar(tf.int64),
        "width": tfds.features.Scalar(tf.int64),
        "channels": tfds.features.Scalar(tf.int64),
        "source_id": tfds.features.Text(),
        "filename": tfds.features.Text(),
    }
    if holds_class_label(task):
        image["class"] = {"label": tfds.features.ClassLabel(names=list(class_names))}
    else:
        image["segmentation"] = {
            "class": {
                "encoded": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                "format": tfds.features.Text(),
            }
        }
    return tfds.features.FeaturesDict({"image": image})
