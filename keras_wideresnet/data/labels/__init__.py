"""Class names and label mappings per dataset (docs/architecture.md §7.6)."""

from __future__ import annotations

from keras_wideresnet.data.labels import ade20k, cityscapes, imagenet, pascal_context, voc
from keras_wideresnet.data.labels.base import IGNORE_LABEL, INVALID, LabelMap, generic, identity_lut

_SEGMENTATION = {
    "voc": voc.LABEL_MAP,
    "cityscapes": cityscapes.LABEL_MAP,
    "ade20k": ade20k.LABEL_MAP,
    "pascal_context": pascal_context.LABEL_MAP,
}


def get_label_map(name: str) -> LabelMap:
    """Label map by dataset name: voc, cityscapes, ade20k, pascal_context, imagenet."""
    if name == "imagenet":
        return imagenet.label_map()
    if name not in _SEGMENTATION:
        raise ValueError(
            f"Unknown dataset {name!r}; choose one of {sorted(_SEGMENTATION) + ['imagenet']}."
        )
    return _SEGMENTATION[name]


def dataset_class_names(name: str) -> tuple[str, ...]:
    """Class names of a known dataset (voc, cityscapes, ade20k, pascal_context, imagenet)."""
    return tuple(get_label_map(name).class_names)


__all__ = [
    "IGNORE_LABEL", "INVALID", "LabelMap", "dataset_class_names", "generic", "identity_lut",
    "get_label_map",
    "ade20k", "cityscapes", "imagenet", "pascal_context", "voc",
]  # fmt: skip
