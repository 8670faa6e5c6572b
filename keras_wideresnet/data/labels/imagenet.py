"""ImageNet (ILSVRC 2012): 1000 classes in sorted WordNet-id order (docs/architecture.md §7.6).

Reads the package's ``resources/imagenet_class_index.json`` (provenance in resources/SOURCES.md).
"""

from __future__ import annotations

import functools
import json
import os

from keras_wideresnet.data.labels.base import LabelMap

NUM_CLASSES = 1000
_INDEX_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "resources", "imagenet_class_index.json"
)


@functools.lru_cache(maxsize=1)
def _index() -> tuple[tuple[str, ...], tuple[str, ...]]:
    with open(_INDEX_FILE, encoding="utf-8") as f:
        data = json.load(f)
    rows = [data[str(i)] for i in range(NUM_CLASSES)]
    return tuple(r[0] for r in rows), tuple(r[1] for r in rows)


def synsets() -> tuple[str, ...]:
    """The 1000 WordNet ids; index = class id."""
    return _index()[0]


def class_names() -> tuple[str, ...]:
    """Human-readable names; index = class id."""
    return _index()[1]


def synset_to_label() -> dict[str, int]:
    return {s: i for i, s in enumerate(synsets())}


def label_map() -> LabelMap:
    return LabelMap("imagenet", class_names(), None, "resources/imagenet_class_index.json")
