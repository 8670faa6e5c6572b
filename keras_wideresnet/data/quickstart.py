"""Embedded quickstart datasets written as TFRecords through the converter path.

* classification: scikit-learn's ``load_digits`` — 1,797 real 8×8 handwritten digits (10 classes),
  upscaled to ``image_size`` RGB JPEGs; every 6th image is validation.
* segmentation: SYNTHETIC scenes (clearly not real data): ``image_size``² noisy backgrounds with
  a few coloured discs, squares and triangles; masks hold 0 = background, 1 = disc, 2 = square,
  3 = triangle. Deterministic by ``seed``.
"""

from __future__ import annotations

import glob
import io
import json
import os

import numpy as np
from PIL import Image, ImageDraw

from keras_wideresnet._extras import require
from keras_wideresnet.data import schema, writer
from keras_wideresnet.data.encode import EncodeConfig, Item
from keras_wideresnet.data.labels.base import generic

DIGIT_CLASS_NAMES = tuple(str(i) for i in range(10))
SYNTHETIC_CLASS_NAMES = ("background", "disc", "square", "triangle")
_SHAPE_COLOURS = {1: (220, 60, 50), 2: (50, 170, 60), 3: (60, 80, 220)}


def _jpeg(array: np.ndarray, quality: int = 95) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def digits_items(image_size: int = 32) -> tuple[list[Item], list[Item]]:
    """(train, validation) items of scikit-learn's digits, upscaled to ``image_size`` RGB JPEG."""
    datasets = require("sklearn.datasets", "quickstart", "The quickstart digits data")

    digits = datasets.load_digits()
    train, val = [], []
    for i, (img, label) in enumerate(zip(digits.images, digits.target)):
        grey = (img / 16.0 * 255.0).round().astype(np.uint8)
        big = Image.fromarray(grey).resize((image_size, image_size), Image.BILINEAR)
        rgb = np.stack([np.asarray(big)] * 3, axis=-1)
        item = Item(f"digits_{i:04d}", _jpeg(rgb), label=int(label))
        (val if i % 6 == 5 else train).append(item)
    return train, val


def synthetic_scene(rng: np.random.Generator, image_size: int = 64, max_shapes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One SYNTHETIC scene: (uint8 RGB image, uint8 mask with 0..3)."""
    base = rng.integers(90, 170, size=3)
    image = np.clip(base + rng.normal(0, 18, (image_size, image_size, 3)), 0, 255).astype(np.uint8)
    mask = Image.new("L", (image_size, image_size), 0)
    canvas = Image.fromarray(image)
    draw_img, draw_mask = ImageDraw.Draw(canvas), ImageDraw.Draw(mask)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        cls = int(rng.integers(1, 4))
        r = int(rng.integers(image_size // 10, image_size // 4))
        cx, cy = (int(v) for v in rng.integers(r, image_size - r, size=2))
        colour = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in _SHAPE_COLOURS[cls])
        if cls == 1:
            box = [cx - r, cy - r, cx + r, cy + r]
            draw_img.ellipse(box, fill=colour)
            draw_mask.ellipse(box, fill=cls)
        elif cls == 2:
            box = [cx - r, cy - r, cx + r, cy + r]
            draw_img.rectangle(box, fill=colour)
            draw_mask.rectangle(box, fill=cls)
        else:
            pts = [(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)]
            draw_img.polygon(pts, fill=colour)
            draw_mask.polygon(pts, fill=cls)
    return np.asarray(canvas), np.asarray(mask)


def synthetic_items(num_train: int, num_validation: int, image_size: int, seed: int) -> tuple[list[Item], list[Item]]:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(num_train + num_validation):
        image, mask = synthetic_scene(rng, image_size)
        items.append(Item(f"synthetic_{i:05d}", _jpeg(image), mask=mask, mask_kind="array"))
    return items[:num_train], items[num_train:]


def write_quickstart(
    out_dir: str,
    *,
    task: str = "classification",
    image_size: int | None = None,
    num_train: int = 240,
    num_validation: int = 60,
    seed: int = 0,
    num_shards: int = 2,
    verbose: bool = False,
) -> dict:
    """Writes the quickstart dataset as sharded TFRecords + TFDS metadata under ``out_dir``.

    ``num_train``/``num_validation`` apply to the synthetic segmentation scenes only (the digits
    split is fixed: 1,498 train / 299 validation). Returns ``{"train", "validation"}`` glob patterns,
    ``num_classes``, ``class_names``, ``num_train``, ``num_validation``.
    """
    if task not in schema.TASKS:
        raise ValueError(f"task must be 'classification' or 'segmentation'. Received: task={task!r}")
    if schema.holds_class_label(task):
        name, class_names = "digits", DIGIT_CLASS_NAMES
        train, val = digits_items(image_size or 32)
        description = "scikit-learn handwritten digits (real, 8x8 upscaled)"
    else:
        name, class_names = "synthetic_shapes", SYNTHETIC_CLASS_NAMES
        train, val = synthetic_items(num_train, num_validation, image_size or 64, seed)
        description = "SYNTHETIC coloured-shape scenes (generated, not real data)"
    config = EncodeConfig(task, generic(class_names, name))
    done_record = os.path.join(out_dir, writer.PROGRESS_DIR, f"{name}.done.json")
    with writer.exclusive_lock(out_dir):  # two workers on one host may both get here at once
        if os.path.exists(done_record):  # written last, so everything it names is complete
            with open(done_record, encoding="utf-8") as f:
                return json.load(f)
        results = {}
        for split, items, shuffle in (("train", train, seed), ("validation", val, None)):
            results[split] = writer.write_split(
                items, out_dir, dataset_name=name, split=split, config=config,
                num_shards=num_shards if split == "train" else 1, num_workers=1,
                shuffle_seed=shuffle, verbose=verbose,
            )  # fmt: skip
        writer.write_tfds_metadata(
            out_dir, task=task, class_names=class_names, splits=list(results.values()),
            description=description,
        )  # fmt: skip
        summary = {
            "train": results["train"].pattern,
            "validation": results["validation"].pattern,
            "num_classes": len(class_names),
            "class_names": list(class_names),
            "num_train": results["train"].num_written,
            "num_validation": results["validation"].num_written,
        }
        with open(done_record + f".tmp-{os.getpid()}", "w", encoding="utf-8") as f:
            json.dump(summary, f)
        os.replace(done_record + f".tmp-{os.getpid()}", done_record)
    return summary


def quickstart_class_names(task: str = "classification") -> tuple[str, ...]:
    """Class names of the embedded quickstart data, in label order."""
    names = {"classification": DIGIT_CLASS_NAMES, "segmentation": SYNTHETIC_CLASS_NAMES}
    if task not in names:
        raise ValueError(f"task must be one of {sorted(names)}. Received: task={task!r}")
    return tuple(names[task])


def quickstart_files(task: str = "classification", split: str = "train",
                     data_dir: str = "quickstart_data") -> str:
    """File pattern of the embedded quickstart data in ``data_dir/<task>``, written on first use.

    Classification: scikit-learn's 1,797 real 8×8 digits; segmentation: SYNTHETIC shape scenes.
    """
    out_dir = os.path.join(data_dir, task)
    if not glob.glob(os.path.join(out_dir, writer.PROGRESS_DIR, "*.done.json")):
        print(f"[keras_wideresnet] writing the {task} quickstart data to {out_dir}", flush=True)
        write_quickstart(out_dir, task=task)
    matches = sorted(glob.glob(os.path.join(out_dir, f"*-{split}.tfrecord-*")))
    if not matches:
        raise FileNotFoundError(f"No {split!r} records in {out_dir!r}; delete the folder to "
                                "have the quickstart data written again.")
    return os.path.join(out_dir, f"*-{split}.tfrecord-*")
