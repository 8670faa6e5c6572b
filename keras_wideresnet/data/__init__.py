"""Data layer: TFRecord schema, converters, input pipelines, quickstart data.

Recipes: docs/architecture.md §7; dataset layouts: docs/data.md.

Names are imported lazily (PEP 562) so that converter worker processes, which only need the
encoder and writer, do not import Keras and the model code.
"""

from keras_wideresnet._lazy import lazy_exports

_EXPORTS = {
    "classification_dataset": "classification",
    "EncodeConfig": "encode", "Item": "encode", "encode_item": "encode",
    "DataError": "errors",
    "dataset_class_names": "labels", "get_label_map": "labels",
    "quickstart_class_names": "quickstart", "quickstart_files": "quickstart",
    "write_quickstart": "quickstart",
    "IGNORE_LABEL": "schema", "make_example": "schema", "parse_spec": "schema", "tfds_features": "schema",
    "invert_eval_preprocessing": "segmentation", "segmentation_dataset": "segmentation",
    "decode_only_dataset": "throughput", "measure_throughput": "throughput", "photo_jpegs": "throughput",
    "write_split": "writer", "write_tfds_metadata": "writer",
}  # fmt: skip
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
