"""Convert official dataset layouts (or your own folders) to sharded TFRecords + TFDS metadata.

Thin CLI over keras_wideresnet.data.converters / writer. Layouts: docs/data.md.

  keras-wideresnet-create-tfrecords --dataset=voc --data_dir=/data/VOCdevkit --sbd_dir=/data/benchmark_RELEASE \
      --splits=train_aug,val --output_dir=/data/tfrecords/voc --num_shards=64 --num_workers=8
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from keras_wideresnet.cli import _app  # first: it sets TF's C++ log level before TF loads

from keras_wideresnet.data import converters, labels, writer  # noqa: E402
from keras_wideresnet.data.encode import EncodeConfig  # noqa: E402
from keras_wideresnet.data.errors import DataError  # noqa: E402

DATASETS = ("imagenet", "folder", "voc", "cityscapes", "ade20k", "pascal_context", "segmentation_folder")
DEFAULT_SPLITS = {
    "imagenet": "train,val", "folder": "train,val", "voc": "train_aug,val", "cityscapes": "train,val",
    "ade20k": "training,validation", "pascal_context": "train,val", "segmentation_folder": "train,val",
}  # fmt: skip

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", None, DATASETS, "Input layout to convert.")
flags.DEFINE_string("data_dir", None, "Root of the dataset download (see docs/data.md).")
flags.DEFINE_string("output_dir", None, "Where shards and TFDS metadata are written.")
flags.DEFINE_list("splits", None, "Splits to convert (default per dataset, e.g. voc: train_aug,val).")
flags.DEFINE_integer("num_shards", 16, "Shards per training split (eval splits get a quarter, at least 1).")
flags.DEFINE_integer("num_workers", 4, "Parallel worker processes writing shards.")
flags.DEFINE_bool("skip_corrupt", False, "Skip bad items (reported in skipped-<split>.txt) instead of failing.")
flags.DEFINE_string("sbd_dir", None, "VOC train_aug: SBD benchmark_RELEASE directory.")
flags.DEFINE_string("context_dir", None, "PASCAL Context: directory holding trainval/<id>.mat.")
flags.DEFINE_string("split_file", None, "PASCAL Context: explicit split list (one image id per line).")
flags.DEFINE_string("val_labels_file", None, "ImageNet flat val/: ground-truth list (default: TFDS copy).")
flags.DEFINE_list("class_names", None, "segmentation_folder: class names in train-id order.")
flags.DEFINE_string("name", None, "Dataset name used in file names (default: --dataset).")
flags.DEFINE_integer("seed", 0, "Shuffle seed for training splits (same seed → same shards on re-run).")
flags.mark_flags_as_required(["dataset", "data_dir", "output_dir"])

_TRAIN_SPLITS = {"train", "train_aug", "training", "trainval"}


def _items(dataset: str, split: str, class_names):
    d = FLAGS.data_dir
    if dataset == "imagenet":
        return converters.imagenet_items(d, split, FLAGS.val_labels_file)
    if dataset == "folder":
        return converters.folder_items(os.path.join(d, split), class_names)
    if dataset == "voc":
        return converters.voc_items(d, split, FLAGS.sbd_dir)
    if dataset == "cityscapes":
        return converters.cityscapes_items(d, split)
    if dataset == "ade20k":
        return converters.ade20k_items(d, split)
    if dataset == "pascal_context":
        if not FLAGS.context_dir:
            raise DataError("--dataset=pascal_context needs --context_dir (the folder holding trainval/*.mat).")
        return converters.pascal_context_items(d, FLAGS.context_dir, split, FLAGS.split_file)
    return converters.segmentation_folder_items(d, split)


def convert() -> dict:
    """Runs the conversion described by the flags; returns {split: SplitResult}."""
    dataset = FLAGS.dataset
    splits = FLAGS.splits or DEFAULT_SPLITS[dataset].split(",")
    if dataset in ("imagenet", "folder"):
        task = "classification"
        if dataset == "imagenet":
            label_map = labels.get_label_map("imagenet")
        else:
            label_map = labels.generic(converters.folder_class_names(os.path.join(FLAGS.data_dir, splits[0])), "folder")
    else:
        task = "segmentation"
        if dataset == "segmentation_folder":
            if not FLAGS.class_names:
                raise DataError("--dataset=segmentation_folder needs --class_names (train-id order).")
            label_map = labels.generic(FLAGS.class_names, "segmentation_folder")
        else:
            label_map = labels.get_label_map(dataset)
    config = EncodeConfig(task, label_map)
    name = FLAGS.name or dataset
    with writer.exclusive_lock(FLAGS.output_dir):  # a second run on this folder waits, then resumes
        results = {}
        for split in splits:
            items = _items(dataset, split, label_map.class_names)
            is_train = split in _TRAIN_SPLITS
            shards = FLAGS.num_shards if is_train else max(1, FLAGS.num_shards // 4)
            results[split] = writer.write_split(
                items, FLAGS.output_dir, dataset_name=name, split=split, config=config, num_shards=shards,
                num_workers=FLAGS.num_workers, skip_corrupt=FLAGS.skip_corrupt,
                shuffle_seed=FLAGS.seed if is_train else None,
            )  # fmt: skip
            r = results[split]
            logging.info("%s/%s: wrote %d records to %s; skipped %d.", name, split, r.num_written, r.pattern, len(r.skipped))
            print(f"{name}/{split}: {r.num_written} records, {len(r.skipped)} skipped -> {r.pattern}", flush=True)
        writer.write_tfds_metadata(FLAGS.output_dir, task=task, class_names=label_map.class_names,
                                   splits=list(results.values()), description=f"{dataset} converted by keras_wideresnet ({label_map.source})")
    return results


def main(argv):
    del argv
    convert()  # a DataError or a missing extra is a one-line error (keras_wideresnet.cli._app)
    return 0


def run() -> None:
    """Console entry point (``keras-wideresnet-create-tfrecords``)."""
    _app.run(main, "keras-wideresnet-create-tfrecords")


if __name__ == "__main__":
    run()
