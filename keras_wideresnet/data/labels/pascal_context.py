"""PASCAL Context, 60 classes: the 59 most frequent classes plus background (docs/architecture.md §7.6).

Full annotations (``trainval/<image id>.mat``, key ``LabelMap``, from the PASCAL-Context release
``trainval.tar.gz``, https://cs.stanford.edu/~roozbeh/pascal-context/) hold ids 1..459 of the
release's ``labels.txt`` (0 = unlabelled). The 59-class subset and its order are those of the
release's ``59_labels.txt``/the Detail API as used by mmsegmentation
(``tools/dataset_converters/pascal_context.py``, ``_mapping``) and PyTorch-Encoding: the
sorted raw ids below map to 1..59, every other raw id (including 0) to 0 = background.
"""

import numpy as np

from keras_wideresnet.data.labels.base import INVALID, LabelMap

NUM_RAW_CLASSES = 459

# (raw id in the 459-class labels.txt, name), sorted by raw id = train-id order 1..59.
SELECTED = (
    (2, "aeroplane"), (9, "bag"), (18, "bed"), (19, "bedclothes"), (22, "bench"), (23, "bicycle"),
    (25, "bird"), (31, "boat"), (33, "book"), (34, "bottle"), (44, "building"), (45, "bus"),
    (46, "cabinet"), (59, "car"), (65, "cat"), (68, "ceiling"), (72, "chair"), (80, "cloth"),
    (85, "computer"), (98, "cow"), (104, "cup"), (105, "curtain"), (113, "dog"), (115, "door"),
    (144, "fence"), (158, "floor"), (159, "flower"), (162, "food"), (187, "grass"),
    (189, "ground"), (207, "horse"), (220, "keyboard"), (232, "light"), (258, "motorbike"),
    (259, "mountain"), (260, "mouse"), (284, "person"), (295, "plate"), (296, "platform"),
    (308, "pottedplant"), (324, "road"), (326, "rock"), (347, "sheep"), (349, "shelves"),
    (354, "sidewalk"), (355, "sign"), (360, "sky"), (366, "snow"), (368, "sofa"), (397, "table"),
    (415, "track"), (416, "train"), (420, "tree"), (424, "truck"), (427, "tvmonitor"),
    (440, "wall"), (445, "water"), (454, "window"), (458, "wood"),
)  # fmt: skip
CLASS_NAMES = ("background",) + tuple(name for _, name in SELECTED)
NUM_CLASSES = len(CLASS_NAMES)

RAW_TO_TRAIN_ID = np.zeros(NUM_RAW_CLASSES + 1, np.int32)  # 0..459; unlisted → background
for _train_id, (_raw, _name) in enumerate(SELECTED, start=1):
    RAW_TO_TRAIN_ID[_raw] = _train_id
assert (RAW_TO_TRAIN_ID != INVALID).all()

LABEL_MAP = LabelMap(
    "pascal_context", CLASS_NAMES, RAW_TO_TRAIN_ID,
    "PASCAL-Context trainval .mat LabelMap (459 classes) → 59 + background (mmseg/Detail mapping)",
)  # fmt: skip
