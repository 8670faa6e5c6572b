"""Exact label mappings per dataset."""

import numpy as np

from keras_wideresnet.data import labels


def test_class_counts():
    assert labels.voc.NUM_CLASSES == 21
    assert labels.cityscapes.NUM_CLASSES == 19
    assert labels.ade20k.NUM_CLASSES == 150
    assert labels.pascal_context.NUM_CLASSES == 60
    assert len(labels.imagenet.synsets()) == 1000
    assert labels.imagenet.synsets()[0] == "n01440764"
    assert len(set(labels.ade20k.CLASS_NAMES)) == 150


def test_cityscapes_label_ids_to_train_ids():
    lut = labels.cityscapes.LABEL_ID_TO_TRAIN_ID
    expected = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
    for label_id in range(34):
        assert lut[label_id] == expected.get(label_id, 255), label_id
    mapped, bad = labels.cityscapes.LABEL_MAP.map_mask(np.array([[7, 33], [0, 9]]))
    assert bad.size == 0 and mapped.tolist() == [[0, 18], [255, 255]]
    _, bad = labels.cityscapes.LABEL_MAP.map_mask(np.array([[40]]))
    assert bad.tolist() == [40]


def test_ade20k_shift_and_ignore():
    mapped, bad = labels.ade20k.LABEL_MAP.map_mask(np.array([[0, 1, 150]]))
    assert bad.size == 0 and mapped.tolist() == [[255, 0, 149]]
    assert labels.ade20k.CLASS_NAMES[0] == "wall" and labels.ade20k.CLASS_NAMES[149] == "flag"
    _, bad = labels.ade20k.LABEL_MAP.map_mask(np.array([[151]]))
    assert bad.tolist() == [151]


def test_pascal_context_59_plus_background():
    m = labels.pascal_context.LABEL_MAP
    raw = np.array([[0, 2, 458, 1, 284, 459]])
    mapped, bad = m.map_mask(raw)
    assert bad.size == 0
    person = labels.pascal_context.CLASS_NAMES.index("person")
    assert mapped.tolist() == [[0, 1, 59, 0, person, 0]]
    assert labels.pascal_context.CLASS_NAMES[1] == "aeroplane" and labels.pascal_context.CLASS_NAMES[-1] == "wood"
    _, bad = m.map_mask(np.array([[460]]))
    assert bad.tolist() == [460]


def test_voc_identity_and_range():
    mapped, bad = labels.voc.LABEL_MAP.map_mask(np.array([[0, 20, 255]]))
    assert bad.size == 0 and mapped.tolist() == [[0, 20, 255]]
    _, bad = labels.voc.LABEL_MAP.map_mask(np.array([[21, 3]]))
    assert bad.tolist() == [21]
