"""Cityscapes: 19 train ids from gtFine ``*_labelIds.png`` (docs/architecture.md §7.6).

Table copied from cityscapesScripts ``cityscapesscripts/helpers/labels.py`` (labelId → trainId;
``ignoreInEval`` classes and trainId 255/-1 → 255).
"""

import numpy as np

from keras_wideresnet.data.labels.base import IGNORE_LABEL, INVALID, LabelMap

CLASS_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip
NUM_CLASSES = len(CLASS_NAMES)

# (name, labelId, trainId) exactly as in labels.py; 255 = ignored.
LABELS = (
    ("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255),
    ("out of roi", 3, 255), ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255),
    ("road", 7, 0), ("sidewalk", 8, 1), ("parking", 9, 255), ("rail track", 10, 255),
    ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4), ("guard rail", 14, 255),
    ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8), ("terrain", 22, 9),
    ("sky", 23, 10), ("person", 24, 11), ("rider", 25, 12), ("car", 26, 13), ("truck", 27, 14),
    ("bus", 28, 15), ("caravan", 29, 255), ("trailer", 30, 255), ("train", 31, 16),
    ("motorcycle", 32, 17), ("bicycle", 33, 18),
)  # fmt: skip
# labels.py also lists ("license plate", -1, -1): it never occurs in the uint8 labelIds PNGs.

LABEL_ID_TO_TRAIN_ID = np.full(256, INVALID, np.int32)
for _name, _label_id, _train_id in LABELS:
    LABEL_ID_TO_TRAIN_ID[_label_id] = _train_id
LABEL_ID_TO_TRAIN_ID[IGNORE_LABEL] = IGNORE_LABEL  # already-ignored pixels stay ignored

LABEL_MAP = LabelMap(
    "cityscapes", CLASS_NAMES, LABEL_ID_TO_TRAIN_ID, "cityscapesScripts helpers/labels.py"
)
