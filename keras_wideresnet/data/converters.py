"""Item lists from the official on-disk layouts of each dataset (docs/architecture.md §7.6).

Each ``*_items`` function only lists (image, label/mask) pairs in a deterministic order and raises
``DataError`` for a missing split directory or split file; validation and encoding happen in
``encode.py`` inside the writer's worker processes. Layouts are documented in docs/data.md.
"""

from __future__ import annotations

import os
from typing import Sequence

from keras_wideresnet.data.encode import Item
from keras_wideresnet.data.errors import DataError
from keras_wideresnet.data.labels import imagenet as imagenet_labels

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _require_dir(path: str, what: str) -> str:
    if not os.path.isdir(path):
        raise DataError(f"{what} not found: {path}. Check --data_dir and the dataset layout (docs/data.md).")
    return path


def _read_split_file(path: str, what: str) -> list[str]:
    if not os.path.isfile(path):
        raise DataError(
            f"split file for {what} not found: {path}. Download the dataset's split lists or pass "
            "--split_file (one image id per line)."
        )
    with open(path, encoding="utf-8") as f:
        ids = [line.split()[0] for line in f if line.strip()]
    if not ids:
        raise DataError(f"split file {path} for {what} is empty.")
    return ids


def _images_in(directory: str) -> list[str]:
    return sorted(
        os.path.join(directory, n) for n in os.listdir(directory)
        if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")
    )  # fmt: skip


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


# --- classification -------------------------------------------------------------------------------


def folder_class_names(root: str) -> list[str]:
    """Sorted sub-folder names of a class-per-folder split directory."""
    _require_dir(root, "class-per-folder split directory")
    names = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)) and not n.startswith("."))
    if not names:
        raise DataError(f"{root} has no class sub-folders; expected <split>/<class_name>/<image files>.")
    return names


def folder_items(split_dir: str, class_names: Sequence[str]) -> list[Item]:
    """Generic ``<split_dir>/<class>/<image>`` tree; label = index of the class in ``class_names``."""
    present = folder_class_names(split_dir)
    unknown = sorted(set(present) - set(class_names))
    if unknown:
        raise DataError(
            f"{split_dir} has class folders {unknown[:10]} that are not among the {len(class_names)} "
            "classes of the training split; every split must use the same class folders."
        )
    index = {n: i for i, n in enumerate(class_names)}
    items = []
    for name in present:
        for path in _images_in(os.path.join(split_dir, name)):
            items.append(Item(f"{name}/{_stem(path)}", path, label=index[name]))
    return items


def imagenet_items(root: str, split: str, val_labels_file: str | None = None) -> list[Item]:
    """ImageNet: ``<root>/train/<wnid>/*.JPEG``; ``<root>/val`` either in wnid folders or flat.

    A flat ``val/`` needs the ground-truth list: one WordNet id per line in sorted file-name order
    (TFDS' ``imagenet2012/validation_labels.txt``, used by default) or ``<file name> <wnid>`` lines.
    """
    split_dir = _require_dir(os.path.join(root, split), f"ImageNet split directory {split!r}")
    synsets = imagenet_labels.synsets()
    to_label = imagenet_labels.synset_to_label()
    subdirs = [n for n in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, n))]
    if subdirs:
        return folder_items(split_dir, synsets)
    files = _images_in(split_dir)
    if val_labels_file is None:
        import tensorflow_datasets as tfds

        val_labels_file = os.path.join(
            os.path.dirname(tfds.__file__), "datasets", "imagenet2012", "validation_labels.txt"
        )
    if not os.path.isfile(val_labels_file):
        raise DataError(f"ImageNet validation ground-truth list not found: {val_labels_file}; pass --val_labels_file.")
    with open(val_labels_file, encoding="utf-8") as f:
        rows = [line.split() for line in f if line.strip()]
    if rows and len(rows[0]) == 2:
        by_name = {r[0]: r[1] for r in rows}
    else:
        if len(rows) != len(files):
            raise DataError(
                f"{val_labels_file} lists {len(rows)} labels but {split_dir} holds {len(files)} images; "
                "a one-column list must have one line per image in sorted file-name order."
            )
        by_name = {os.path.basename(p): r[0] for p, r in zip(files, rows)}
    items = []
    for path in files:
        wnid = by_name.get(os.path.basename(path))
        if wnid is None:
            raise DataError(f"{val_labels_file} has no label for image {path}.")
        if wnid not in to_label:
            raise DataError(f"{val_labels_file}: {wnid!r} (for {path}) is not one of the 1000 ImageNet synsets.")
        items.append(Item(_stem(path), path, label=to_label[wnid]))
    return items


# --- segmentation ---------------------------------------------------------------------------------


def _voc2012_dir(voc_root: str) -> str:
    for candidate in (os.path.join(voc_root, "VOCdevkit", "VOC2012"), os.path.join(voc_root, "VOC2012"), voc_root):
        if os.path.isdir(os.path.join(candidate, "JPEGImages")):
            return candidate
    raise DataError(f"PASCAL VOC 2012 not found under {voc_root}: expected VOCdevkit/VOC2012/JPEGImages.")


def _sbd_dir(sbd_root: str) -> str:
    for candidate in (os.path.join(sbd_root, "benchmark_RELEASE", "dataset"), os.path.join(sbd_root, "dataset"), sbd_root):
        if os.path.isdir(os.path.join(candidate, "cls")):
            return candidate
    raise DataError(f"SBD not found under {sbd_root}: expected benchmark_RELEASE/dataset/cls/*.mat.")


def voc_items(voc_root: str, split: str, sbd_root: str | None = None) -> list[Item]:
    """PASCAL VOC 2012 ``train``/``val``/``trainval``, or ``train_aug`` = VOC train + SBD train/val − VOC val.

    ``train_aug`` (10,582 images, ademxapp's "train+" list, docs/architecture.md §7.6) takes the VOC
    ``SegmentationClass`` PNG where one exists and the SBD ``cls/<id>.mat`` (``GTcls.Segmentation``) otherwise.
    """
    voc = _voc2012_dir(voc_root)
    sets = os.path.join(voc, "ImageSets", "Segmentation")

    def voc_item(image_id: str) -> Item:
        return Item(image_id, os.path.join(voc, "JPEGImages", image_id + ".jpg"),
                    mask=os.path.join(voc, "SegmentationClass", image_id + ".png"))

    if split in ("train", "val", "trainval"):
        return [voc_item(i) for i in _read_split_file(os.path.join(sets, split + ".txt"), f"VOC {split}")]
    if split != "train_aug":
        raise DataError(f"unknown VOC split {split!r}; use train, val, trainval or train_aug.")
    if sbd_root is None:
        raise DataError("VOC split train_aug needs the SBD release: pass --sbd_dir (benchmark_RELEASE).")
    sbd = _sbd_dir(sbd_root)
    val = set(_read_split_file(os.path.join(sets, "val.txt"), "VOC val"))
    ids = set(_read_split_file(os.path.join(sets, "train.txt"), "VOC train"))
    ids |= set(_read_split_file(os.path.join(sbd, "train.txt"), "SBD train"))
    ids |= set(_read_split_file(os.path.join(sbd, "val.txt"), "SBD val"))
    items = []
    for image_id in sorted(ids - val):
        png = os.path.join(voc, "SegmentationClass", image_id + ".png")
        image = os.path.join(voc, "JPEGImages", image_id + ".jpg")
        if not os.path.exists(image):
            image = os.path.join(sbd, "img", image_id + ".jpg")
        if os.path.exists(png):
            items.append(Item(image_id, image, mask=png))
        else:
            items.append(Item(image_id, image, mask=os.path.join(sbd, "cls", image_id + ".mat"), mask_kind="sbd_mat"))
    return items


def cityscapes_items(root: str, split: str) -> list[Item]:
    """Cityscapes ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` + ``gtFine/.../*_gtFine_labelIds.png``."""
    if split not in ("train", "val"):
        raise DataError(f"Cityscapes split must be train or val (test has no public labels). Received: {split!r}")
    img_root = _require_dir(os.path.join(root, "leftImg8bit", split), f"Cityscapes leftImg8bit/{split}")
    gt_root = _require_dir(os.path.join(root, "gtFine", split), f"Cityscapes gtFine/{split}")
    items = []
    for city in sorted(os.listdir(img_root)):
        for path in _images_in(os.path.join(img_root, city)):
            stem = os.path.basename(path).replace("_leftImg8bit.png", "")
            mask = os.path.join(gt_root, city, stem + "_gtFine_labelIds.png")
            items.append(Item(stem, path, mask=mask))
    if not items:
        raise DataError(f"no *_leftImg8bit.png images under {img_root}.")
    return items


def ade20k_items(root: str, split: str) -> list[Item]:
    """ADE20K SceneParsing ``ADEChallengeData2016/images/<training|validation>/*.jpg`` + ``annotations/*.png``."""
    split = {"train": "training", "val": "validation"}.get(split, split)
    if split not in ("training", "validation"):
        raise DataError(f"ADE20K split must be training or validation. Received: {split!r}")
    base = root if os.path.isdir(os.path.join(root, "images")) else os.path.join(root, "ADEChallengeData2016")
    img_dir = _require_dir(os.path.join(base, "images", split), f"ADE20K images/{split}")
    ann_dir = _require_dir(os.path.join(base, "annotations", split), f"ADE20K annotations/{split}")
    return [Item(_stem(p), p, mask=os.path.join(ann_dir, _stem(p) + ".png")) for p in _images_in(img_dir)]


def pascal_context_items(
    voc2010_root: str, context_root: str, split: str, split_file: str | None = None
) -> list[Item]:
    """PASCAL Context on VOC 2010 images: ``VOCdevkit/VOC2010/JPEGImages/<id>.jpg`` and the full
    459-class annotations ``<context_root>/trainval/<id>.mat`` (``LabelMap``), mapped to 59 + background.

    The split list is ``split_file`` or, by default, ``<context_root>/<split>.txt`` then
    ``VOC2010/ImageSets/SegmentationContext/<split>.txt`` (mmsegmentation layout).
    """
    voc = voc2010_root
    for candidate in (os.path.join(voc2010_root, "VOCdevkit", "VOC2010"), os.path.join(voc2010_root, "VOC2010")):
        if os.path.isdir(candidate):
            voc = candidate
    _require_dir(os.path.join(voc, "JPEGImages"), "VOC2010 JPEGImages")
    ann_dir = _require_dir(os.path.join(context_root, "trainval"), "PASCAL-Context trainval/ annotations")
    if split_file is None:
        tried = [os.path.join(context_root, split + ".txt"),
                 os.path.join(voc, "ImageSets", "SegmentationContext", split + ".txt")]
        split_file = next((p for p in tried if os.path.isfile(p)), tried[0])
    ids = _read_split_file(split_file, f"PASCAL Context {split}")
    return [
        Item(i, os.path.join(voc, "JPEGImages", i + ".jpg"), mask=os.path.join(ann_dir, i + ".mat"),
             mask_kind="context_mat")
        for i in ids
    ]  # fmt: skip


def segmentation_folder_items(root: str, split: str) -> list[Item]:
    """Your own data: ``<root>/<split>/images/<name>.<ext>`` + ``<root>/<split>/masks/<name>.png`` (train ids)."""
    img_dir = _require_dir(os.path.join(root, split, "images"), f"{split}/images")
    mask_dir = _require_dir(os.path.join(root, split, "masks"), f"{split}/masks")
    return [Item(_stem(p), p, mask=os.path.join(mask_dir, _stem(p) + ".png")) for p in _images_in(img_dir)]
