"""Classification export: layout, label asset, three signatures, fresh-process load,
``saved_model_cli run`` on real JPEGs, equality with the evaluation pipeline, bad input and a
gRPC PredictionService stand-in built with tensorflow-serving-api."""

from __future__ import annotations

import json
import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_wideresnet import applications
from keras_wideresnet.data import classification_dataset, make_example
from keras_wideresnet.evaluation import classification_probs
from keras_wideresnet.export import SIGNATURES, ServingConfig, export_saved_model, next_version
from tests.tolerances import conv_depth_and_reduction, prob_rtol

CLASSES = ("cat", "dog", "bird", "fish")
IMAGE_SIZE, SHORTER = 32, 40
ORDER = ("china", "flower", "flower_crop_png")


@pytest.fixture(scope="module")
def cls(tmp_path_factory, photos, calibrate_head):
    keras.utils.set_random_seed(0)
    model = applications.ResNet16(weights=None, width_multiplier=1 / 32, classes=len(CLASSES),
                                  classifier_activation=None,
                                  input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    calibrate_head(model, f"linear{len(CLASSES)}",
                   np.random.default_rng(0).normal(size=(4, IMAGE_SIZE, IMAGE_SIZE, 3)))
    config = ServingConfig("classification", CLASSES, image_size=IMAGE_SIZE,
                           resize_shorter=SHORTER, top_k=3, flip=True)
    base = str(tmp_path_factory.mktemp("cls_export"))
    path = export_saved_model(model, config, base)

    # Expected answers: the evaluation input pipeline + the evaluator's inference function.
    records = str(tmp_path_factory.mktemp("cls_records") / "eval.tfrecord")
    with tf.io.TFRecordWriter(records) as writer:
        for i, name in enumerate(ORDER):
            image = tf.io.decode_image(photos[name], channels=3)
            fmt = "png" if name.endswith("png") else "jpeg"
            writer.write(make_example(encoded=photos[name], image_format=fmt,
                                      height=int(image.shape[0]), width=int(image.shape[1]),
                                      source_id=name, label=i).SerializeToString())
    ds = classification_dataset(records, is_training=False, global_batch_size=len(ORDER),
                                image_size=IMAGE_SIZE, eval_resize_shorter=SHORTER,
                                deterministic=True)
    images = np.concatenate([np.asarray(batch[0]) for batch in ds])
    assert images.shape == (len(ORDER), IMAGE_SIZE, IMAGE_SIZE, 3)
    expected = classification_probs(model, images, flip=True).numpy()
    # Non-degenerate probabilities make the comparisons below meaningful.
    assert expected.max() < 0.999 and expected.min() > 1e-4
    # The SavedModel runs the same float32 maths with other kernels (graph, fresh process,
    # saved_model_cli, gRPC): the probability bound of the model's architecture.
    rtol = prob_rtol(expected, *conv_depth_and_reduction(model))
    return types.SimpleNamespace(model=model, config=config, base=base, path=path,
                                 expected=expected, rtol=rtol)


@pytest.fixture(scope="module")
def loaded(cls):
    """The export loaded in this process (shared: loading costs seconds)."""
    return tf.saved_model.load(cls.path)


def _examples(photos, names):
    return np.array([make_example(encoded=photos[n], image_format="jpeg", height=-1, width=-1,
                                  source_id=n).SerializeToString() for n in names], dtype=object)


def test_layout_label_asset_and_signatures(cls, loaded):
    assert os.listdir(cls.base) == ["1"] and cls.path == os.path.join(cls.base, "1")
    assert os.path.isfile(os.path.join(cls.path, "saved_model.pb"))
    assert os.path.isdir(os.path.join(cls.path, "variables"))
    with open(os.path.join(cls.path, "assets", "labels.txt")) as f:
        assert f.read().splitlines() == list(CLASSES)
    with open(os.path.join(cls.path, "assets.extra", "serving_config.json")) as f:
        meta = json.load(f)
    assert meta["task"] == "classification" and meta["image_size"] == IMAGE_SIZE
    assert next_version(cls.base) == 2
    assert set(SIGNATURES) <= set(loaded.signatures)
    sig = loaded.signatures["serving_default"]
    assert list(sig.structured_input_signature[1]) == ["image_bytes"]
    assert set(sig.structured_outputs) == {"probabilities", "top_k_classes", "top_k_scores",
                                           "top_k_names"}


def test_fresh_process_signatures_match_evaluation(cls, photos, load_in_fresh_process):
    crop = tf.io.decode_png(photos["flower_crop_png"], channels=3).numpy()[None]
    out = load_in_fresh_process(cls.path, {
        "serving_default.image_bytes": np.array([photos[n] for n in ORDER], dtype=object),
        "serving_image_tensor.images": crop,
        "serving_tf_example.examples": _examples(photos, ORDER),
    })
    probs = out["serving_default.probabilities"]
    np.testing.assert_allclose(probs, cls.expected, rtol=cls.rtol)
    top = np.argsort(-cls.expected, axis=1)[:, :3]
    np.testing.assert_array_equal(out["serving_default.top_k_classes"], top)
    np.testing.assert_allclose(out["serving_default.top_k_scores"],
                               np.take_along_axis(cls.expected, top, 1), rtol=cls.rtol)
    np.testing.assert_array_equal(out["serving_default.top_k_names"],
                                  np.array(CLASSES)[top])
    # tf.Example carries the same bytes; the uint8 tensor is the lossless PNG's pixels.
    np.testing.assert_allclose(out["serving_tf_example.probabilities"], probs, rtol=cls.rtol)
    np.testing.assert_allclose(out["serving_image_tensor.probabilities"], cls.expected[2:3],
                               rtol=cls.rtol)


def test_saved_model_cli_run_on_real_jpegs(cls, photos, tmp_path, saved_model_cli_run):
    npy = tmp_path / "jpegs.npy"
    np.save(npy, np.array([photos["china"], photos["flower"]]))  # dtype |S..., no pickle
    proc = saved_model_cli_run(cls.path, str(npy), str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    probs = np.load(tmp_path / "out" / "probabilities.npy")
    np.testing.assert_allclose(probs, cls.expected[:2], rtol=cls.rtol)
    names = np.load(tmp_path / "out" / "top_k_names.npy", allow_pickle=True)
    top = np.argsort(-cls.expected[:2], axis=1)[:, :3]
    assert [[n.decode() for n in row] for row in names] == np.array(CLASSES)[top].tolist()


def test_bad_input_is_invalid_argument_and_model_keeps_serving(cls, loaded, photos):
    serve = loaded.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Invalid input `image_bytes`.*JPEG, PNG"):
        serve(image_bytes=tf.constant([photos["china"], b"<html>not an image</html>"]))
    with pytest.raises(tf.errors.InvalidArgumentError):  # JPEG header, truncated body
        serve(image_bytes=tf.constant([photos["china"][:200]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch size 0"):
        serve(image_bytes=tf.constant([], tf.string))
    with pytest.raises(tf.errors.InvalidArgumentError):  # a tf.Example without image/encoded
        loaded.signatures["serving_tf_example"](examples=tf.constant(
            [tf.train.Example().SerializeToString()]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="height and width > 0"):
        loaded.signatures["serving_image_tensor"](images=tf.zeros([1, 0, 5, 3], tf.uint8))
    ok = serve(image_bytes=tf.constant([photos["china"]]))
    np.testing.assert_allclose(ok["probabilities"].numpy(), cls.expected[:1], rtol=cls.rtol)


def test_grpc_prediction_service_stand_in(cls, loaded, photos, grpc_stand_in):
    import grpc
    from tensorflow_serving.apis import predict_pb2

    stub = grpc_stand_in(loaded, model_name="resnet38")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "resnet38"
    request.model_spec.signature_name = "serving_default"
    request.inputs["image_bytes"].CopyFrom(
        tf.make_tensor_proto([photos["china"], photos["flower"]], dtype=tf.string))
    response = stub.Predict(request, timeout=60)
    probs = tf.make_ndarray(response.outputs["probabilities"])
    np.testing.assert_allclose(probs, cls.expected[:2], rtol=cls.rtol)
    names = tf.make_ndarray(response.outputs["top_k_names"])
    assert names.shape == (2, 3)

    bad = predict_pb2.PredictRequest()
    bad.CopyFrom(request)
    bad.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([b"GIF-but-not-really"], tf.string))
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(bad, timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Invalid input `image_bytes`" in err.value.details()
    assert stub.Predict(request, timeout=60).outputs["probabilities"].tensor_shape.dim[0].size == 2
