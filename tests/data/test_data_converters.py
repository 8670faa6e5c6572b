"""Converters on miniature trees in each dataset's real on-disk layout."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_wideresnet.data import DataError, EncodeConfig, converters, labels, segmentation_dataset, writer
from keras_wideresnet.data import classification_dataset
from keras_wideresnet.data.labels import imagenet

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _records(pattern):
    """{source_id: (image uint8, mask or label)} straight from the shards."""
    out = {}
    for raw in tf.data.TFRecordDataset(sorted(glob.glob(pattern))):
        ex = tf.train.Example.FromString(raw.numpy()).features.feature
        sid = ex["image/source_id"].bytes_list.value[0].decode()
        image = tf.io.decode_image(ex["image/encoded"].bytes_list.value[0]).numpy()
        assert ex["image/height"].int64_list.value[0] == image.shape[0]
        assert ex["image/width"].int64_list.value[0] == image.shape[1]
        if "image/segmentation/class/encoded" in ex:
            assert ex["image/segmentation/class/format"].bytes_list.value[0] == b"png"
            target = tf.io.decode_png(ex["image/segmentation/class/encoded"].bytes_list.value[0]).numpy()[..., 0]
        else:
            target = ex["image/class/label"].int64_list.value[0]
        out[sid] = (image, target)
    return out


def _write(items, out, name, split, label_map, task="segmentation", **kw):
    return writer.write_split(items, str(out), dataset_name=name, split=split,
                              config=EncodeConfig(task, label_map), num_shards=kw.pop("num_shards", 2),
                              verbose=False, **kw)


def _voc_tree(root, helpers):
    voc = os.path.join(root, "VOCdevkit", "VOC2012")
    masks = {"a": np.array([[0, 1], [20, 255]]), "b": np.array([[15, 15], [0, 0]])}
    for i, (k, m) in enumerate(masks.items()):
        helpers.save_rgb(os.path.join(voc, "JPEGImages", k + ".jpg"), 10, 12, seed=i)
        helpers.save_mask(os.path.join(voc, "SegmentationClass", k + ".png"), np.kron(m, np.ones((5, 6))), palette=True)
    helpers.save_rgb(os.path.join(voc, "JPEGImages", "c.jpg"), 10, 12, seed=5)
    sets = os.path.join(voc, "ImageSets", "Segmentation")
    os.makedirs(sets)
    open(os.path.join(sets, "train.txt"), "w").write("a\n")
    open(os.path.join(sets, "val.txt"), "w").write("b\n")
    sbd = os.path.join(root, "benchmark_RELEASE", "dataset")
    os.makedirs(os.path.join(sbd, "cls"))
    scipy.io.savemat(os.path.join(sbd, "cls", "c.mat"),
                     {"GTcls": {"Segmentation": np.full((10, 12), 7, np.uint8), "CategoriesPresent": 7}})
    open(os.path.join(sbd, "train.txt"), "w").write("c\nb\n")
    open(os.path.join(sbd, "val.txt"), "w").write("a\n")
    return masks


def test_voc_and_sbd_train_aug(tmp_path, helpers):
    masks = _voc_tree(str(tmp_path), helpers)
    items = converters.voc_items(str(tmp_path), "train_aug", str(tmp_path / "benchmark_RELEASE"))
    assert sorted(i.source_id for i in items) == ["a", "c"]  # b is in VOC val
    _write(items, tmp_path / "out", "voc", "train_aug", labels.voc.LABEL_MAP)
    _write(converters.voc_items(str(tmp_path), "val"), tmp_path / "out", "voc", "val", labels.voc.LABEL_MAP)
    recs = _records(str(tmp_path / "out" / "voc-train_aug.tfrecord-*"))
    np.testing.assert_array_equal(recs["a"][1], np.kron(masks["a"], np.ones((5, 6))))
    np.testing.assert_array_equal(recs["c"][1], np.full((10, 12), 7))  # from the SBD .mat
    writer.write_tfds_metadata(str(tmp_path / "out"), task="segmentation", class_names=labels.voc.CLASS_NAMES)
    builder = tfds.builder_from_directory(str(tmp_path / "out"))
    assert builder.info.splits["train_aug"].num_examples == 2
    assert builder.info.splits["val"].num_examples == 1
    ex = next(iter(builder.as_dataset(split="val")))
    assert ex["image"]["segmentation"]["class"]["encoded"].shape == (10, 12, 1)
    # Read back through the eval pipeline: original label, padded canvas.
    image, target = next(iter(segmentation_dataset(str(tmp_path / "out" / "voc-val.tfrecord-*"),
                                                   is_training=False, global_batch_size=1, num_classes=21)))
    assert image.shape == (1, 16, 16, 3)
    np.testing.assert_array_equal(target["label"][0], np.kron(masks["b"], np.ones((5, 6))))


def test_cityscapes_ade20k_context_mappings(tmp_path, helpers):
    root = str(tmp_path)
    # Cityscapes gtFine labelIds → trainIds.
    stem = "aachen_000000_000019"
    helpers.save_rgb(f"{root}/cs/leftImg8bit/train/aachen/{stem}_leftImg8bit.png", 4, 8)
    raw = np.array([[7, 8, 26, 33, 0, 1, 24, 23]] * 4)
    helpers.save_mask(f"{root}/cs/gtFine/train/aachen/{stem}_gtFine_labelIds.png", raw)
    _write(converters.cityscapes_items(f"{root}/cs", "train"), tmp_path / "o1", "cityscapes", "train",
           labels.cityscapes.LABEL_MAP)
    rec = _records(str(tmp_path / "o1" / "cityscapes-train.tfrecord-*"))[stem]
    assert rec[1][0].tolist() == [0, 1, 13, 18, 255, 255, 11, 10]
    # ADE20K: 0 → 255, k → k − 1.
    ade = f"{root}/ADEChallengeData2016"
    helpers.save_rgb(f"{ade}/images/training/ADE_train_00000001.jpg", 3, 4)
    helpers.save_mask(f"{ade}/annotations/training/ADE_train_00000001.png", np.array([[0, 1, 150, 2]] * 3))
    _write(converters.ade20k_items(root, "train"), tmp_path / "o2", "ade20k", "training", labels.ade20k.LABEL_MAP)
    rec = _records(str(tmp_path / "o2" / "ade20k-training.tfrecord-*"))["ADE_train_00000001"]
    assert rec[1][0].tolist() == [255, 0, 149, 1]
    # PASCAL Context: 459-class .mat → 59 + background.
    helpers.save_rgb(f"{root}/VOCdevkit/VOC2010/JPEGImages/2008_000002.jpg", 2, 5)
    os.makedirs(f"{root}/ctx/trainval")
    scipy.io.savemat(f"{root}/ctx/trainval/2008_000002.mat",
                     {"LabelMap": np.array([[0, 2, 284, 458, 100]] * 2, np.uint16)})
    open(f"{root}/ctx/train.txt", "w").write("2008_000002\n")
    _write(converters.pascal_context_items(root, f"{root}/ctx", "train"), tmp_path / "o3", "pascal_context",
           "train", labels.pascal_context.LABEL_MAP)
    rec = _records(str(tmp_path / "o3" / "pascal_context-train.tfrecord-*"))["2008_000002"]
    assert rec[1][0].tolist() == [0, 1, labels.pascal_context.CLASS_NAMES.index("person"), 59, 0]


def test_imagenet_folders_and_flat_val(tmp_path, helpers):
    syn = imagenet.synsets()
    helpers.save_rgb(f"{tmp_path}/train/{syn[0]}/n_0.JPEG", 20, 30, fmt="JPEG")
    helpers.save_rgb(f"{tmp_path}/train/{syn[999]}/n_1.JPEG", 20, 30, fmt="JPEG")
    helpers.save_rgb(f"{tmp_path}/val/ILSVRC2012_val_00000001.JPEG", 20, 30, fmt="JPEG")
    (tmp_path / "gt.txt").write_text(f"ILSVRC2012_val_00000001.JPEG {syn[65]}\n")
    m = labels.get_label_map("imagenet")
    _write(converters.imagenet_items(str(tmp_path), "train"), tmp_path / "o", "imagenet", "train", m, "classification")
    _write(converters.imagenet_items(str(tmp_path), "val", str(tmp_path / "gt.txt")), tmp_path / "o", "imagenet",
           "val", m, "classification")
    assert {k: v[1] for k, v in _records(str(tmp_path / "o" / "imagenet-train.tfrecord-*")).items()} == {
        f"{syn[0]}/n_0": 0, f"{syn[999]}/n_1": 999}
    assert _records(str(tmp_path / "o" / "imagenet-val.tfrecord-*"))["ILSVRC2012_val_00000001"][1] == 65
    x, y = next(iter(classification_dataset(str(tmp_path / "o" / "imagenet-val.tfrecord-*"), is_training=False,
                                            global_batch_size=1, image_size=16, num_classes=1000)))
    assert x.shape == (1, 16, 16, 3) and y.numpy().tolist() == [65]


def _bad_tree(root, helpers):
    split = os.path.join(root, "train")
    helpers.save_rgb(os.path.join(split, "cat", "good.jpg"), 8, 8)
    helpers.save_rgb(os.path.join(split, "dog", "good2.png"), 8, 8)
    bad = os.path.join(split, "dog", "broken.jpg")
    open(bad, "wb").write(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    trunc = os.path.join(split, "cat", "trunc.jpg")
    helpers.save_rgb(trunc, 64, 64, seed=3)
    data = open(trunc, "rb").read()
    open(trunc, "wb").write(data[: len(data) // 2])
    return split, bad, trunc


def test_corrupt_and_truncated_images_error_or_skip(tmp_path, helpers):
    split, bad, trunc = _bad_tree(str(tmp_path), helpers)
    m = labels.generic(converters.folder_class_names(split))
    items = converters.folder_items(split, m.class_names)
    with pytest.raises(DataError, match=r"record .(cat/trunc|dog/broken).: image .*(trunc|broken)\.jpg is corrupt or truncated.*--skip_corrupt"):
        _write(items, tmp_path / "o", "folder", "train", m, "classification", num_shards=1)
    assert not glob.glob(str(tmp_path / "o" / "folder-train.tfrecord-*"))  # no half shard left
    result = _write(items, tmp_path / "o", "folder", "train", m, "classification", num_shards=1, skip_corrupt=True)
    assert result.num_written == 2
    assert sorted(s for s, _ in result.skipped) == ["cat/trunc", "dog/broken"]
    assert "truncated" in dict(result.skipped)["cat/trunc"]
    assert "cat/trunc" in (tmp_path / "o" / "skipped-train.txt").read_text()


def test_mask_size_label_range_and_missing_split(tmp_path, helpers):
    helpers.save_rgb(f"{tmp_path}/d/train/images/x.jpg", 6, 6)
    helpers.save_mask(f"{tmp_path}/d/train/masks/x.png", np.zeros((6, 7)))
    helpers.save_rgb(f"{tmp_path}/d/train/images/y.jpg", 6, 6)
    helpers.save_mask(f"{tmp_path}/d/train/masks/y.png", np.full((6, 6), 30))
    m = labels.generic(["bg", "fg"])
    items = converters.segmentation_folder_items(f"{tmp_path}/d", "train")
    with pytest.raises(DataError, match=r"'x'.*x\.png has shape \(6, 7\).*x\.jpg is 6x6"):
        _write([items[0]], tmp_path / "o", "seg", "train", m)
    with pytest.raises(DataError, match=r"'y'.*y\.png holds values \[30\].*outside"):
        _write([items[1]], tmp_path / "o", "seg", "train", m)
    os.makedirs(f"{tmp_path}/VOC2012/JPEGImages")
    with pytest.raises(DataError, match=r"split file .* not found: .*Segmentation/val\.txt"):
        converters.voc_items(str(tmp_path), "val")
    with pytest.raises(DataError, match="outside 0..1"):
        from keras_wideresnet.data import Item, encode_item
        encode_item(Item("z", f"{tmp_path}/d/train/images/x.jpg", label=5), EncodeConfig("classification", m))


def test_interrupted_run_resumes(tmp_path, helpers):
    split, bad, trunc = _bad_tree(str(tmp_path), helpers)
    os.remove(trunc)
    m = labels.generic(converters.folder_class_names(split))
    items = converters.folder_items(split, m.class_names)  # cat/good, dog/broken, dog/good2
    out = tmp_path / "o"
    with pytest.raises(DataError):
        _write(items, out, "folder", "train", m, "classification", num_shards=3)
    done = glob.glob(str(out / "folder-train.tfrecord-*"))
    assert [os.path.basename(p)[-14:] for p in done] == ["00000-of-00003"]  # failing shard 1 absent
    mtimes = {p: os.path.getmtime(p) for p in done}
    (out / "_progress" / "folder-train.tfrecord-00001-of-00003.tmp-99").write_bytes(b"partial")  # crashed run
    helpers.save_rgb(bad, 8, 8)  # user fixes the file and re-runs
    result = _write(items, out, "folder", "train", m, "classification", num_shards=3)
    assert result.num_written == 3 and not result.skipped
    assert {p: os.path.getmtime(p) for p in done} == mtimes  # complete shards were not rewritten
    assert not glob.glob(str(out / "_progress" / "*.tmp*"))
    with pytest.raises(DataError, match="num_shards"):
        _write(items, out, "folder", "train", m, "classification", num_shards=2)


def test_parallel_workers_write_the_same_records(tmp_path, helpers, monkeypatch, capfd):
    """The spawned-worker path (forced for a tiny job) writes what the in-process path writes,
    and a quiet parent keeps its workers' TF start-up lines off stderr."""
    split = os.path.join(str(tmp_path), "train")
    for i in range(5):
        helpers.save_rgb(os.path.join(split, f"c{i % 2}", f"{i}.jpg"), 8, 8, seed=i)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")  # as the CLIs set it
    m = labels.generic(converters.folder_class_names(split))
    items = converters.folder_items(split, m.class_names)
    one = _write(items, tmp_path / "one", "folder", "train", m, "classification", num_shards=3)
    two = _write(items, tmp_path / "two", "folder", "train", m, "classification", num_shards=3,
                 num_workers=2, min_items_per_worker=1)
    assert one.shard_lengths == two.shard_lengths and one.num_written == two.num_written == len(items)
    for a, b in zip(one.files, two.files):  # protobuf map order may differ: compare parsed
        def parsed(path):
            return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
        assert parsed(a) == parsed(b)
    err = capfd.readouterr().err  # the workers' TF import lines (this process imported TF before)
    assert "absl::InitializeLog" not in err and "cudart_stub" not in err, err


def test_cli_ade20k_small_job(tmp_path, helpers):
    ade = tmp_path / "ADEChallengeData2016"
    for split in ("training", "validation"):
        for i in range(3):
            helpers.save_rgb(f"{ade}/images/{split}/ADE_{split}_{i}.jpg", 6, 8, seed=i)
            helpers.save_mask(f"{ade}/annotations/{split}/ADE_{split}_{i}.png", np.full((6, 8), i))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, os.path.join(REPO, "tools", "create_tfrecords.py"), "--dataset=ade20k",
           f"--data_dir={tmp_path}", f"--output_dir={tmp_path / 'out'}", "--num_shards=4", "--num_workers=2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ade20k/training: 3 records, 0 skipped" in proc.stdout
    splits = tfds.builder_from_directory(str(tmp_path / "out")).info.splits
    assert splits["training"].num_examples == 3 and splits["validation"].num_examples == 3
    labels_seen = sorted(int(v[1].max()) for v in _records(str(tmp_path / "out" / "ade20k-training*")).values())
    assert labels_seen == [0, 1, 255]  # raw 0 → 255, 1 → 0, 2 → 1
    bad = subprocess.run(cmd[:3] + [f"--data_dir={tmp_path / 'nope'}", f"--output_dir={tmp_path / 'o2'}"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 1 and "ADE20K images/training not found" in bad.stderr


def test_shards_that_hold_only_skipped_items_are_dropped(tmp_path, helpers):
    split, bad, trunc = _bad_tree(str(tmp_path), helpers)
    os.remove(trunc)
    m = labels.generic(converters.folder_class_names(split))
    items = converters.folder_items(split, m.class_names)  # cat/good, dog/broken, dog/good2: one per shard
    out = tmp_path / "o"
    result = _write(items, out, "folder", "train", m, "classification", num_shards=3, skip_corrupt=True)
    names = sorted(os.path.basename(p) for p in glob.glob(str(out / "folder-train.tfrecord-*")))
    assert names == ["folder-train.tfrecord-00000-of-00002", "folder-train.tfrecord-00001-of-00002"]
    assert result.shard_lengths == [1, 1] and result.num_written == 2 and len(result.skipped) == 1
    writer.write_tfds_metadata(str(out), task="classification", class_names=m.class_names, splits=[result])
    assert tfds.builder_from_directory(str(out)).info.splits["train"].num_examples == 2
    mtimes = {p: os.path.getmtime(p) for p in result.files}
    again = _write(items, out, "folder", "train", m, "classification", num_shards=3, skip_corrupt=True)
    assert again.files == result.files and again.shard_lengths == [1, 1] and len(again.skipped) == 1
    assert {p: os.path.getmtime(p) for p in again.files} == mtimes  # found finished, not rewritten
