"""Input pipelines: shapes, ranges, determinism, ignore padding, eval inversion, sharding, TFDS, MG schema."""

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_wideresnet.applications import IMAGENET_MEAN, IMAGENET_STD
from keras_wideresnet.data import (classification_dataset, decode_only_dataset, invert_eval_preprocessing,
                                   measure_throughput, segmentation_dataset, write_quickstart)
from tests.tolerances import gamma

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOW = (0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
HIGH = (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
# A decoded colour through float32 resizing (weights of up to 4 x 4 taps summing to 1), /255,
# - mean and / std: about 32 roundings of a value in [0, 1], then / std scales the error.
PIXEL_ATOL = gamma(32) / min(IMAGENET_STD)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_quickstart(str(tmp_path_factory.mktemp("digits")), task="classification")


def _png(arr):
    out = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def _mg_record(path, image, label=None, mask=None):
    """A record with only Model Garden's keys (no channels/source_id/filename)."""
    f = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[_png(image)])),
         "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[image.shape[0]])),
         "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[image.shape[1]]))}
    if label is not None:
        f["image/class/label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))
    if mask is not None:
        f["image/segmentation/class/encoded"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[_png(mask)]))
    with tf.io.TFRecordWriter(path) as w:
        w.write(tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString())


def test_quickstart_digits_train_and_eval(digits):
    assert digits["num_classes"] == 10 and digits["num_train"] + digits["num_validation"] == 1797
    kw = dict(is_training=True, global_batch_size=16, image_size=24, seed=3, deterministic=True)
    x, y = next(iter(classification_dataset(digits["train"], **kw)))
    assert x.shape == (16, 24, 24, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert (x.numpy() >= LOW - 1e-4).all() and (x.numpy() <= HIGH + 1e-4).all()
    assert set(y.numpy()) <= set(range(10))
    x2, y2 = next(iter(classification_dataset(digits["train"], **kw)))
    np.testing.assert_array_equal(x.numpy(), x2.numpy())
    np.testing.assert_array_equal(y.numpy(), y2.numpy())
    x3, _ = next(iter(classification_dataset(digits["train"], **dict(kw, seed=4))))
    assert not np.allclose(x.numpy(), x3.numpy())
    ev = list(classification_dataset(digits["validation"], is_training=False, global_batch_size=64, image_size=32))
    assert sum(int(b[1].shape[0]) for b in ev) == digits["num_validation"]  # no repeat, keeps the remainder


def test_eval_stream_length_from_metadata(digits, tmp_path):
    """An eval stream knows its batch count from dataset_info.json; a stale or missing
    metadata file leaves it unknown rather than wrong."""
    ev = classification_dataset(digits["validation"], is_training=False, global_batch_size=64, image_size=32)
    assert int(ev.cardinality()) == -(-digits["num_validation"] // 64) == len(list(ev))
    train = classification_dataset(digits["train"], is_training=True, global_batch_size=64, image_size=32)
    assert int(train.cardinality()) == tf.data.INFINITE_CARDINALITY
    # A copy of the validation shard with one record fewer: sizes no longer match the metadata.
    out = tmp_path / "stale"
    out.mkdir()
    src = os.path.dirname(digits["validation"])
    with open(os.path.join(src, "dataset_info.json")) as f:
        (out / "dataset_info.json").write_text(f.read())
    name = os.path.basename(tf.io.gfile.glob(digits["validation"])[0])
    with tf.io.TFRecordWriter(str(out / name)) as w:
        for r in list(tf.data.TFRecordDataset(tf.io.gfile.glob(digits["validation"])))[1:]:
            w.write(r.numpy())
    stale = classification_dataset(str(out / "*-validation.tfrecord-*"), is_training=False,
                                   global_batch_size=64, image_size=32)
    assert int(stale.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    assert sum(int(b[1].shape[0]) for b in stale) == digits["num_validation"] - 1
    os.remove(out / "dataset_info.json")
    assert int(classification_dataset(str(out / "*"), is_training=False, global_batch_size=64,
                                      image_size=32).cardinality()) == tf.data.UNKNOWN_CARDINALITY


def test_eval_centre_crop_and_model_garden_record(tmp_path):
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 10:50] = (200, 100, 50)  # the centre 40x40 square
    image[:, :10] = image[:, 50:] = (0, 255, 0)
    _mg_record(str(tmp_path / "mg.tfrecord"), image, label=7)
    x, y = next(iter(classification_dataset(str(tmp_path / "mg.tfrecord"), is_training=False, global_batch_size=1,
                                            image_size=20, eval_resize_shorter=20, num_classes=10)))
    expected = (np.array([200, 100, 50]) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(x.numpy()[0], np.broadcast_to(expected, (20, 20, 3)), atol=PIXEL_ATOL)
    assert y.numpy().tolist() == [7]
    with pytest.raises(tf.errors.InvalidArgumentError, match="label outside"):
        next(iter(classification_dataset(str(tmp_path / "mg.tfrecord"), is_training=False, global_batch_size=1,
                                         image_size=20, num_classes=5)))
    # Model Garden segmentation keys read through the segmentation pipeline.
    mask = np.zeros((40, 60), np.uint8)
    mask[:, 30:] = 2
    _mg_record(str(tmp_path / "mg_seg.tfrecord"), image, mask=mask)
    img, target = next(iter(segmentation_dataset(str(tmp_path / "mg_seg.tfrecord"), is_training=False,
                                                 global_batch_size=1, eval_size=30)))
    assert img.shape == (1, 24, 32, 3)  # 20x30 scaled, padded to multiples of 8
    np.testing.assert_array_equal(target["label"][0].numpy(), mask)
    np.testing.assert_allclose(target["image_info"][0].numpy(), [[40, 60], [20, 30], [0.5, 0.5], [0, 0]])


def test_segmentation_training_pads_with_mean_and_ignore(tmp_path):
    image = np.full((16, 16, 3), 255, np.uint8)
    _mg_record(str(tmp_path / "s.tfrecord"), image, mask=np.ones((16, 16), np.uint8))
    ds = segmentation_dataset(str(tmp_path / "s.tfrecord"), is_training=True, global_batch_size=4, crop_size=32,
                              scale_range=(1.0, 1.0), seed=0, num_classes=3)
    for x, y in ds.take(3):
        x, y = x.numpy(), y.numpy()
        assert x.shape == (4, 32, 32, 3) and y.shape == (4, 32, 32) and y.dtype == np.int32
        assert set(np.unique(y)) == {1, 255}
        assert (y == 1).sum(axis=(1, 2)).tolist() == [256] * 4  # the whole 16x16 image is inside the crop
        np.testing.assert_allclose(x[y == 255], 0.0, atol=PIXEL_ATOL)  # mean colour after normalisation
        np.testing.assert_allclose(x[y == 1], np.broadcast_to(HIGH, x[y == 1].shape), atol=PIXEL_ATOL)
    s = write_quickstart(str(tmp_path / "qs"), task="segmentation", num_train=8, num_validation=4)
    x, y = next(iter(segmentation_dataset(s["train"], is_training=True, global_batch_size=2, crop_size=40,
                                          origin_size=64, seed=1, num_classes=4)))
    assert x.shape == (2, 40, 40, 3) and set(np.unique(y.numpy())) <= {0, 1, 2, 3, 255}


def test_invert_eval_preprocessing(tmp_path):
    label = np.zeros((30, 45), np.uint8)
    label[:, 20:] = 1
    label[20:, :] = 2
    _mg_record(str(tmp_path / "e.tfrecord"), np.zeros((30, 45, 3), np.uint8), mask=label)
    _mg_record(str(tmp_path / "f.tfrecord"), np.zeros((12, 10, 3), np.uint8), mask=np.full((12, 10), 1, np.uint8))
    ds = segmentation_dataset(str(tmp_path / "*.tfrecord"), is_training=False, global_batch_size=2, eval_size=60)
    image, target = next(iter(ds))
    info = target["image_info"].numpy()
    assert image.shape[1] % 8 == 0 and image.shape[2] % 8 == 0
    assert target["label"].shape == (2, 30, 45)
    # Perfect canvas-resolution one-hot predictions → inverted back to the original labels.
    onehots = []
    for b in range(2):
        oh, ow = info[b, 0].astype(int)
        sh, sw = info[b, 1].astype(int)
        lab = target["label"][b, :oh, :ow].numpy()
        scaled = tf.image.resize(lab[..., None], [sh, sw], method="nearest")[..., 0]
        onehot = tf.one_hot(scaled, 3)
        onehots.append(tf.pad(onehot, [[0, image.shape[1] - sh], [0, image.shape[2] - sw], [0, 0]]))
    restored = invert_eval_preprocessing(tf.stack(onehots), target["image_info"], output_stride=1)
    assert restored.shape == (2, 30, 45, 3)
    for b in range(2):
        oh, ow = info[b, 0].astype(int)
        pred = tf.argmax(restored[b, :oh, :ow], -1).numpy()
        assert (pred == target["label"][b, :oh, :ow].numpy()).mean() > 0.97
        assert np.abs(restored[b, oh:, :]).sum() == 0 and np.abs(restored[b, :, ow:]).sum() == 0
    # Stride-8 logits: the stride is inferred and a constant prediction maps to every pixel.
    logits8 = tf.one_hot(tf.fill([2, image.shape[1] // 8, image.shape[2] // 8], 2), 3)
    a = invert_eval_preprocessing(logits8, target["image_info"])
    b = invert_eval_preprocessing(logits8, target["image_info"], output_stride=8)
    np.testing.assert_allclose(a.numpy(), b.numpy())
    for k in range(2):
        oh, ow = info[k, 0].astype(int)
        assert (tf.argmax(a[k, :oh, :ow], -1).numpy() == 2).all()
    single = invert_eval_preprocessing(logits8[1], target["image_info"][1])
    assert single.shape == tuple(info[1, 0].astype(int)) + (3,)


def test_input_context_sharding(digits):
    seen = []
    for pid in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid, num_replicas_in_sync=2)
        batches = list(classification_dataset(digits["validation"], is_training=False, global_batch_size=32,
                                              image_size=8, input_context=ctx))
        assert batches[0][0].shape[0] == 16
        seen.append(sum(int(b[1].shape[0]) for b in batches))
    assert sum(seen) == digits["num_validation"] and abs(seen[0] - seen[1]) <= 1  # record-level split, 1 file
    with pytest.raises(ValueError, match="divisible"):
        classification_dataset(digits["train"], is_training=True, global_batch_size=3, input_context=ctx)


def test_distribute_datasets_from_function(digits):
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
        from keras_wideresnet.data import classification_dataset
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        dist = strategy.distribute_datasets_from_function(lambda ctx: classification_dataset(
            {digits["train"]!r}, is_training=True, global_batch_size=8, image_size=16, input_context=ctx, seed=0))
        x, y = next(iter(dist))
        print("SHAPES", [t.shape.as_list() for t in strategy.experimental_local_results(x)])
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SHAPES [[4, 16, 16, 3], [4, 16, 16, 3]]" in proc.stdout


def test_tfds_sources_with_mock_data():
    import tensorflow_datasets as tfds

    raw = np.array([[0, 1, 150, 2]] * 4, np.uint8)  # ADE20K raw ids

    def scene_parse(self, split=None, decoders=None, **kwargs):
        del self, split, kwargs
        assert set(decoders) == {"image", "annotation"}  # both stay encoded (SkipDecoding)
        return tf.data.Dataset.from_tensors(
            {"image": _png(np.zeros((4, 4, 3))), "annotation": _png(np.stack([raw] * 3, -1))}).repeat(3)

    with tfds.testing.mock_data(num_examples=4, as_dataset_fn=scene_parse):
        _, target = next(iter(segmentation_dataset("", tfds_name="scene_parse150", tfds_split="validation",
                                                   is_training=False, global_batch_size=1)))
        assert target["label"].numpy()[0, 0].tolist() == [255, 0, 149, 1]
    with tfds.testing.mock_data(num_examples=4):  # random examples with the real imagenet2012 feature spec
        x, y = next(iter(classification_dataset("", tfds_name="imagenet2012", tfds_split="validation",
                                                is_training=False, global_batch_size=2, image_size=16)))
        assert x.shape == (2, 16, 16, 3) and y.dtype == tf.int32
    from keras_wideresnet.data import DataError

    with pytest.raises(DataError, match="segmentation masks"):
        segmentation_dataset("", tfds_name="voc/2012", is_training=True, global_batch_size=1)


def test_throughput_reported(digits):
    train = classification_dataset(digits["train"], is_training=True, global_batch_size=32, image_size=32)
    assert measure_throughput(train, 5) > 0
    assert measure_throughput(decode_only_dataset(digits["train"]), 64) > 0


def test_photo_jpegs_for_the_throughput_benchmark():
    from keras_wideresnet.data import photo_jpegs

    encoded = photo_jpegs(4, height=75, width=100, quality=90)
    assert len(set(encoded)) == 4  # distinct crops
    for e in encoded:
        image = tf.io.decode_jpeg(e).numpy()
        assert image.shape == (75, 100, 3) and image.std() > 20  # real photographic content
