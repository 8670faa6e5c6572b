"""Validate and encode one image (+label or mask) into a ``tf.train.Example``.

Runs inside converter worker processes; checks every item for bad input: corrupt or
truncated images, masks whose size differs from their image, labels outside the dataset's range.
"""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
from PIL import Image

from keras_wideresnet._extras import require
from keras_wideresnet.data import schema
from keras_wideresnet.data.errors import DataError
from keras_wideresnet.data.labels.base import LabelMap

MASK_KINDS = ("png", "sbd_mat", "context_mat", "array")
_SKIP_HINT = "Fix or remove the file, or pass --skip_corrupt (skip_corrupt=True) to skip such items."


@dataclasses.dataclass(frozen=True)
class Item:
    """One record to write. ``image`` is a path or encoded bytes; ``mask`` a path or a raw array."""

    source_id: str
    image: str | bytes
    label: int | None = None
    mask: str | np.ndarray | None = None
    mask_kind: str = "png"

    @property
    def image_name(self) -> str:
        return self.image if isinstance(self.image, str) else f"<bytes of {self.source_id}>"

    @property
    def mask_name(self) -> str:
        return self.mask if isinstance(self.mask, str) else f"<array of {self.source_id}>"


@dataclasses.dataclass(frozen=True)
class EncodeConfig:
    """What the converter checks: the task and the label map (class range and mask table)."""

    task: str
    label_map: LabelMap

    def __post_init__(self):
        if self.task not in schema.TASKS:
            raise ValueError(f"task must be one of {schema.TASKS}. Received: task={self.task!r}")


def _read_image(item: Item) -> tuple[bytes, str, int, int]:
    name = item.image_name
    try:
        if isinstance(item.image, str):
            with open(item.image, "rb") as f:
                data = f.read()
        else:
            data = bytes(item.image)
    except OSError as e:
        raise DataError(f"record {item.source_id!r}: cannot read image {name} ({e}). {_SKIP_HINT}") from e
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            im.load()  # raises on truncated/corrupt data
            if fmt in ("JPEG", "PNG") and im.mode == "RGB":
                return data, fmt.lower(), im.height, im.width
            rgb = im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(
            f"record {item.source_id!r}: image {name} is corrupt or truncated ({e}). {_SKIP_HINT}"
        ) from e
    # Grey, CMYK, palette, RGBA, BMP, GIF, ...: re-encode as RGB (JPEG stays lossy-JPEG, rest PNG).
    out = io.BytesIO()
    out_fmt = "jpeg" if fmt == "JPEG" else "png"
    rgb.save(out, format=out_fmt.upper(), **({"quality": 95} if out_fmt == "jpeg" else {}))
    return out.getvalue(), out_fmt, rgb.height, rgb.width


def _read_mask(item: Item) -> np.ndarray:
    name = item.mask_name
    try:
        if item.mask_kind == "array" or not isinstance(item.mask, str):
            return np.asarray(item.mask)
        if item.mask_kind == "png":
            with Image.open(item.mask) as im:
                im.load()
                if im.mode not in ("P", "L", "I", "I;16"):
                    raise DataError(
                        f"record {item.source_id!r}: mask {name} has mode {im.mode}; masks must be "
                        "single-channel class-index PNGs (palette or greyscale). Convert colour masks "
                        "to class indices first."
                    )
                return np.array(im)
        sio = require("scipy.io", "sbd", f"Reading the .mat mask of {item.source_id!r}")

        mat = sio.loadmat(item.mask, squeeze_me=True, struct_as_record=False)
        if item.mask_kind == "sbd_mat":
            return np.asarray(mat["GTcls"].Segmentation)
        if item.mask_kind == "context_mat":
            return np.asarray(mat["LabelMap"])
        raise ValueError(f"unknown mask_kind {item.mask_kind!r}; expected one of {MASK_KINDS}")
    except DataError:
        raise
    except (OSError, SyntaxError, KeyError, AttributeError, ValueError) as e:
        raise DataError(
            f"record {item.source_id!r}: mask {name} is missing, corrupt or not in the expected "
            f"{item.mask_kind!r} format ({type(e).__name__}: {e}). {_SKIP_HINT}"
        ) from e


def encode_mask_png(mask: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.asarray(mask, np.uint8), mode="L").save(out, format="PNG")
    return out.getvalue()


def encode_item(item: Item, config: EncodeConfig) -> bytes:
    """Validates ``item`` and returns the serialized ``tf.train.Example``; raises ``DataError``."""
    encoded, fmt, height, width = _read_image(item)
    filename = os.path.basename(item.image) if isinstance(item.image, str) else item.source_id
    num_classes = config.label_map.num_classes
    if schema.holds_class_label(config.task):
        if item.label is None or not 0 <= int(item.label) < num_classes:
            raise DataError(
                f"record {item.source_id!r} ({item.image_name}): label {item.label} is outside "
                f"0..{num_classes - 1} of dataset {config.label_map.name!r}. Fix the label list or "
                "the class folders, or pass --skip_corrupt."
            )
        example = schema.make_example(
            encoded=encoded, image_format=fmt, height=height, width=width,
            source_id=item.source_id, filename=filename, label=int(item.label),
        )  # fmt: skip
        return example.SerializeToString()
    if item.mask is None:
        raise DataError(f"record {item.source_id!r}: no mask given for image {item.image_name}.")
    raw = _read_mask(item)
    if raw.ndim != 2 or raw.shape != (height, width):
        raise DataError(
            f"record {item.source_id!r}: mask {item.mask_name} has shape {raw.shape} but image "
            f"{item.image_name} is {height}x{width}; a mask must match its image pixel for pixel. "
            f"{_SKIP_HINT}"
        )
    mapped, bad = config.label_map.map_mask(raw)
    if bad.size:
        raise DataError(
            f"record {item.source_id!r}: mask {item.mask_name} holds values {bad.tolist()[:10]} outside "
            f"the annotation range of dataset {config.label_map.name!r} ({num_classes} classes, "
            f"ignore {schema.IGNORE_LABEL}). Check --dataset and the mask files, or pass --skip_corrupt."
        )
    example = schema.make_example(
        encoded=encoded, image_format=fmt, height=height, width=width,
        source_id=item.source_id, filename=filename, mask_png=encode_mask_png(mapped),
    )  # fmt: skip
    return example.SerializeToString()
