"""PASCAL VOC 2012 (+SBD): 21 classes, masks already hold train ids, 255 = border/ignore
(docs/architecture.md §7.6)."""

from keras_wideresnet.data.labels.base import LabelMap, identity_lut

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
NUM_CLASSES = len(CLASS_NAMES)
LABEL_MAP = LabelMap(
    "voc", CLASS_NAMES, identity_lut(NUM_CLASSES),
    "VOCdevkit SegmentationClass palette indices / SBD cls .mat GTcls.Segmentation",
)  # fmt: skip
