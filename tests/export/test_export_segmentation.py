"""Segmentation export: per-pixel class maps at each original size for a batch of different
sizes, equal to the evaluation pipeline + test-time inference; ``saved_model_cli run`` on real
JPEGs; bad input."""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_wideresnet import applications
from keras_wideresnet.data import invert_eval_preprocessing, make_example, segmentation_dataset
from keras_wideresnet.evaluation import segmentation_probs
from keras_wideresnet.export import ServingConfig, export_saved_model
from tests.tolerances import conv_depth_and_reduction, prob_rtol

CLASSES = ("background", "flower", "building")
EVAL_SIZE = 64
SCALES = (0.75, 1.0)
ORDER = ("china", "flower_crop_png")  # 427x640 landscape JPEG, 200x133 portrait PNG


@pytest.fixture(scope="module")
def seg(tmp_path_factory, photos, calibrate_head):
    keras.utils.set_random_seed(1)
    model = applications.ResNet38Segmenter(len(CLASSES), width_multiplier=1 / 32, depth=16)
    calibrate_head(model, f"linear{len(CLASSES)}",
                   np.random.default_rng(1).normal(size=(2, EVAL_SIZE, EVAL_SIZE, 3)))
    config = ServingConfig("segmentation", CLASSES, image_size=EVAL_SIZE, scales=SCALES,
                           flip=False, include_probabilities=True)
    path = export_saved_model(model, config, str(tmp_path_factory.mktemp("seg_export")), version=7)

    # Expected: the eval pipeline (one image per batch) + the evaluator's inference and inversion.
    records = str(tmp_path_factory.mktemp("seg_records") / "eval.tfrecord")
    sizes = []
    with tf.io.TFRecordWriter(records) as writer:
        for name in ORDER:
            image = tf.io.decode_image(photos[name], channels=3)
            h, w = int(image.shape[0]), int(image.shape[1])
            sizes.append((h, w))
            mask = tf.io.encode_png(tf.zeros([h, w, 1], tf.uint8)).numpy()
            writer.write(make_example(encoded=photos[name], image_format="jpeg", height=h, width=w,
                                      source_id=name, mask_png=mask).SerializeToString())
    ds = segmentation_dataset(records, is_training=False, global_batch_size=1, eval_size=EVAL_SIZE,
                              deterministic=True)
    expected = []
    for canvas, extras in ds:
        probs = segmentation_probs(model, canvas, scales=SCALES, flip=False)
        expected.append(invert_eval_preprocessing(probs, extras["image_info"])[0].numpy())
    assert [e.shape[:2] for e in expected] == sizes
    # The SavedModel runs the same float32 maths with other kernels: the probability bound of
    # the model's architecture (bilinear resizing of probabilities keeps relative errors).
    rtol = max(prob_rtol(e, *conv_depth_and_reduction(model)) for e in expected)
    return types.SimpleNamespace(model=model, path=path, expected=expected, sizes=sizes, rtol=rtol)


def _check_outputs(out, seg, indices):
    heights, widths = np.asarray(out["height"]), np.asarray(out["width"])
    assert list(zip(heights, widths)) == [seg.sizes[i] for i in indices]
    class_map, probs = np.asarray(out["class_map"]), np.asarray(out["probabilities"])
    assert class_map.shape == (len(indices), heights.max(), widths.max())
    assert probs.shape == class_map.shape + (len(CLASSES),)
    for row, i in enumerate(indices):
        h, w = seg.sizes[i]
        expected = seg.expected[i]
        np.testing.assert_allclose(probs[row, :h, :w], expected, rtol=seg.rtol)
        # Compare labels where the expected winner is clear: ahead of the runner-up by more than
        # both can move within the tolerance (closer ties may break either way).
        top2 = np.sort(expected, axis=-1)[..., -2:]
        clear = top2[..., 1] - top2[..., 0] > 2 * seg.rtol * top2[..., 1]
        assert clear.mean() > 0.9
        np.testing.assert_array_equal(class_map[row, :h, :w][clear], expected.argmax(-1)[clear])
        assert (class_map[row, h:, :] == -1).all() and (class_map[row, :, w:] == -1).all()
        assert (probs[row, h:, :] == 0).all() and (probs[row, :, w:] == 0).all()
    # A random net should not be constant, or the class-map check proves little.
    assert len(np.unique(class_map[class_map >= 0])) >= 2


def test_batch_of_different_sizes_matches_evaluation(seg, photos):
    loaded = tf.saved_model.load(seg.path)
    out = loaded.signatures["serving_default"](
        image_bytes=tf.constant([photos[n] for n in ORDER]))
    _check_outputs(out, seg, [0, 1])

    crop = tf.io.decode_png(photos["flower_crop_png"], channels=3)[None]
    _check_outputs(loaded.signatures["serving_image_tensor"](images=crop), seg, [1])

    example = make_example(encoded=photos["china"], image_format="jpeg", height=-1, width=-1,
                           source_id="x").SerializeToString()
    _check_outputs(loaded.signatures["serving_tf_example"](examples=tf.constant([example])), seg, [0])

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Invalid input `image_bytes`"):
        loaded.signatures["serving_default"](image_bytes=tf.constant([b"\x00\x01 garbage"]))


def test_saved_model_cli_run_segmentation(seg, photos, tmp_path, saved_model_cli_run):
    assert seg.path.endswith("/7")
    npy = tmp_path / "in.npy"
    np.save(npy, np.array([photos["china"], photos["flower"]]))
    proc = saved_model_cli_run(seg.path, str(npy), str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {k: np.load(tmp_path / "out" / f"{k}.npy")
           for k in ("class_map", "height", "width", "probabilities")}
    # Both photos are 427x640; the first is the same image as in the expected results.
    _check_outputs({k: v[:1] for k, v in out.items()}, seg, [0])
    assert out["class_map"].shape == (2, 427, 640)
