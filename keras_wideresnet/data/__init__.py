"""Data layer: TFRecord schema, converters, input pipelines, quickstart data (issue #3; paper spec §3)."""

from keras_wideresnet.data.classification import classification_dataset
from keras_wideresnet.data.encode import EncodeConfig, Item, encode_item
from keras_wideresnet.data.errors import DataError
from keras_wideresnet.data.labels import get_label_map
from keras_wideresnet.data.quickstart import write_quickstart
from keras_wideresnet.data.schema import IGNORE_LABEL, make_example, parse_spec, tfds_features
from keras_wideresnet.data.segmentation import invert_eval_preprocessing, segmentation_dataset
from keras_wideresnet.data.throughput import decode_only_dataset, measure_throughput
from keras_wideresnet.data.writer import write_split, write_tfds_metadata

__all__ = [
    "DataError", "EncodeConfig", "IGNORE_LABEL", "Item", "classification_dataset", "decode_only_dataset",
    "encode_item", "get_label_map", "invert_eval_preprocessing", "make_example", "measure_throughput",
    "parse_spec", "segmentation_dataset", "tfds_features", "write_quickstart", "write_split",
    "write_tfds_metadata",
]  # fmt: skip
