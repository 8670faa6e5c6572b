"""Label-map container: class names plus a raw-annotation → train-id lookup table
(docs/architecture.md §7.6)."""

from __future__ import annotations

import dataclasses

import numpy as np

IGNORE_LABEL = 255
INVALID = -1  # raw values that must not occur in an annotation of this dataset


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """Class names and the table that turns raw annotation values into train ids.

    ``lut[raw] = train id`` (0..num_classes-1 or 255 = ignore); ``INVALID`` marks raw values
    that do not exist in the dataset's annotation format (they raise an error in the converter).
    ``lut`` is ``None`` for classification-only label maps.
    """

    name: str
    class_names: tuple[str, ...]
    lut: np.ndarray | None = None
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def map_mask(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps a raw mask; returns ``(train_ids uint8, sorted invalid raw values found)``."""
        if self.lut is None:
            raise ValueError(f"label map {self.name!r} has no segmentation lookup table")
        raw = np.asarray(raw)
        values = np.unique(raw)
        too_big = values[(values < 0) | (values >= len(self.lut))]
        inside = values[(values >= 0) & (values < len(self.lut))]
        bad = np.concatenate([too_big, inside[self.lut[inside] == INVALID]])
        if bad.size:
            return np.zeros(raw.shape, np.uint8), np.sort(bad)
        return self.lut[raw].astype(np.uint8), bad


def identity_lut(num_classes: int, ignore: int = IGNORE_LABEL) -> np.ndarray:
    """Train ids stored as-is: 0..num_classes-1 and the ignore label; anything else is invalid."""
    lut = np.full(256, INVALID, np.int32)
    lut[:num_classes] = np.arange(num_classes)
    lut[ignore] = ignore
    return lut


def generic(class_names: list[str] | tuple[str, ...], name: str = "generic") -> LabelMap:
    """Label map for a user's own data whose masks already hold train ids (and 255)."""
    return LabelMap(name, tuple(class_names), identity_lut(len(class_names)), "user supplied")
