"""keras.applications behaviour of ResNet38/20/16 and the segmenter."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras
from keras_wideresnet import applications as A
from tests.tolerances import conv_depth_and_reduction, gamma, net_rtol

TINY = dict(width_multiplier=1 / 32)


def _assert_same_network(got, want, model):
    """A rebuilt or reloaded copy of ``model`` may run other kernels (graph or eager, another
    layout): the float32 network bound of its architecture, against the output's scale."""
    rtol = net_rtol(*conv_depth_and_reduction(model))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))

# --- Parameter counts from the unit widths of ademxapp's util/symbol/resnet_v2.py (rna_feat_a) ---
_WIDTHS = [(128, 128), (256, 256), (512, 512), (512, 1024), (512, 1024, 2048), (1024, 2048, 4096)]
_UNITS = {16: [1] * 6, 20: [1, 1, 1, 3, 1, 1], 38: [3, 3, 6, 3, 1, 1]}


def _spec_param_count(depth, classes=1000, seg_classes=None):
    bn = lambda c: 4 * c  # gamma, beta, moving mean, moving variance  # noqa: E731
    total = 3 * 3 * 3 * 64  # conv1a
    cin = 64
    for n, widths in zip(_UNITS[depth], _WIDTHS):
        kernels = (3, 3) if len(widths) == 2 else (1, 3, 1)
        for u in range(n):
            c = cin if u == 0 else widths[-1]
            if u == 0:
                total += c * widths[-1]  # 1x1 projection, no BN, no bias
            for k, w in zip(kernels, widths):
                total += bn(c) + k * k * c * w
                c = w
        cin = widths[-1]
    total += bn(4096)  # bn7
    if seg_classes:
        total += 3 * 3 * 4096 * 512 + 512 + 3 * 3 * 512 * seg_classes + seg_classes
    elif classes:
        total += 4096 * classes + classes
    return total


@pytest.mark.parametrize("constructor,depth,variant", [
    (A.ResNet38, 38, "a"), (A.ResNet38, 38, "a1"), (A.ResNet20, 20, "a2"), (A.ResNet16, 16, "a")])
def test_full_size_parameter_counts(constructor, depth, variant):
    model = constructor(variant=variant, input_shape=(224, 224, 3))
    assert model.count_params() == _spec_param_count(depth)
    assert model.output.shape == (None, 1000)


def test_full_size_segmenter_shape_and_count():
    model = A.ResNet38Segmenter(21, input_shape=(504, 504, 3))
    assert model.output.shape == (None, 63, 63, 21)  # 504 -> 63 at output stride 8
    assert model.count_params() == _spec_param_count(38, seg_classes=21)
    names = {l.name for l in model.layers}
    assert {"conv1a", "res2a", "res7a", "bn7", "conv6a", "linear21"} <= names
    assert model.get_layer("conv6a").dilation_rate == (12, 12)
    assert model.get_layer("res6a").dropout_rate == 0.3
    assert model.get_layer("res7a").dropout_rate == 0.5


@pytest.mark.parametrize("pooling,shape", [(None, (None, 2, 2, 128)), ("avg", (None, 128)),
                                           ("max", (None, 128))])
def test_include_top_false_and_pooling(pooling, shape):
    model = A.ResNet38(include_top=False, pooling=pooling, input_shape=(64, 64, 3), **TINY)
    assert model.output.shape == shape


def test_default_input_shape_without_top_is_dynamic():
    model = A.ResNet38(include_top=False, **TINY)
    assert model.input.shape == (None, None, None, 3)
    assert model(np.zeros((1, 37, 51, 3), "float32")).shape == (1, 2, 2, 128)


@pytest.mark.parametrize("channels", [1, 4])
def test_variable_input_channels(channels):
    model = A.ResNet38(input_shape=(40, 40, channels), classes=7, **TINY)
    assert model(np.zeros((2, 40, 40, channels), "float32")).shape == (2, 7)


def test_input_tensor_keeps_upstream_inputs():
    inp = keras.Input((48, 48, 3), name="upstream")
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    model = A.ResNet38(input_tensor=x, classes=5, **TINY)
    assert model.inputs[0].name == inp.name
    assert model(np.zeros((1, 48, 48, 3), "float32")).shape == (1, 5)


def test_classifier_activation_and_top_name():
    model = A.ResNet16(classes=3, classifier_activation=None, input_shape=(32, 32, 3), **TINY)
    assert model.layers[-1].name == "linear3"
    out = model(np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32"))
    assert not np.allclose(np.sum(out, axis=-1), 1.0)
    soft = A.ResNet16(classes=3, input_shape=(32, 32, 3), **TINY)
    # Softmax rounds each exp, the 3-term sum and each quotient.
    np.testing.assert_allclose(np.sum(soft(np.ones((1, 32, 32, 3), "float32")), -1), 1.0,
                               rtol=gamma(3 + 2))


def test_bad_arguments_give_value_errors():
    with pytest.raises(ValueError, match="keras-wideresnet-convert-weights"):
        A.ResNet38(weights="imagenet")
    with pytest.raises(FileNotFoundError, match="'/nonexistent/file.h5' does not exist") as e:
        A.ResNet38(weights="/nonexistent/file.h5")
    assert isinstance(e.value, ValueError)  # what keras.applications raises
    with pytest.raises(ValueError, match="Received: weights=3"):
        A.ResNet38(weights=3)
    with pytest.raises(ValueError, match="pooling"):
        A.ResNet38(include_top=False, pooling="median", **TINY)
    with pytest.raises(ValueError, match="variant"):
        A.ResNet38(variant="b", **TINY)
    with pytest.raises(ValueError, match="at least 32"):
        A.ResNet38(input_shape=(16, 16, 3), **TINY)
    with pytest.raises(ValueError, match="input_shape"):
        A.ResNet38(input_shape=(64, 64), **TINY)
    with pytest.raises(ValueError, match="classes"):
        A.ResNet38(classes=0, **TINY)
    with pytest.raises(ValueError, match="output_stride"):
        A.ResNet38Segmenter(21, output_stride=4, **TINY)


def test_get_config_from_config_and_keras_round_trip(tmp_path):
    model = A.ResNet38(variant="a1", input_shape=(48, 48, 3), classes=4, output_stride=16,
                       **TINY)
    x = np.random.default_rng(1).normal(size=(2, 48, 48, 3)).astype("float32")
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    want = np.asarray(model(x))
    _assert_same_network(clone(x), want, model)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    _assert_same_network(loaded(x), want, model)


def test_segmenter_upsampled_logits_and_weights_file(tmp_path):
    seg = A.ResNet38Segmenter(5, upsample_logits=True, **TINY)
    x = np.random.default_rng(2).normal(size=(1, 45, 61, 3)).astype("float32")
    assert seg(x).shape == (1, 45, 61, 5)
    path = str(tmp_path / "seg.weights.h5")
    seg.save_weights(path)
    again = A.ResNet38Segmenter(5, upsample_logits=True, weights=path, **TINY)
    _assert_same_network(again(x), np.asarray(seg(x)), seg)
    with pytest.raises(ValueError, match="Could not load weights"):
        A.ResNet38Segmenter(6, weights=path, **TINY)


def _tiny16(**kwargs):
    return A.ResNet16(variant="a1", input_shape=(None, None, 3), **{**TINY, **kwargs})


def test_load_weights_of_another_width_names_the_layer_and_both_shapes(tmp_path):
    path = str(tmp_path / "w16.weights.h5")
    _tiny16(width_multiplier=1 / 16, classes=3).save_weights(path)
    model = _tiny16(classes=3)
    before = [w.numpy() for w in model.weights]
    # conv1a has 64 * width filters: 2 in the model, 4 in the file.
    message = (r"w16.weights.h5' into model 'resnet16': \d+ variables differ: \d+ layers could "
               r"not be loaded; first: conv1a, model \(3, 3, 3, 2\) vs file \(3, 3, 3, 4\)\. The "
               r"file must come from the same architecture")
    with pytest.raises(ValueError, match=message):
        A.load_weights(model, path)
    for got, want in zip(model.weights, before):  # checked before anything is assigned
        np.testing.assert_array_equal(got.numpy(), want)


def test_load_weights_missing_or_foreign_file(tmp_path):
    model = _tiny16(classes=3)
    with pytest.raises(ValueError, match=r"absent.weights.h5' does not exist.*"
                                         r"keras-wideresnet-convert-weights") as e:
        A.load_weights(model, str(tmp_path / "absent.weights.h5"))
    assert isinstance(e.value, FileNotFoundError)
    text = tmp_path / "notes.weights.h5"
    text.write_text("not HDF5")
    with pytest.raises(ValueError, match="is not a Keras 3 weights file"):
        A.load_weights(model, str(text))


def test_load_weights_skips_only_the_given_head(tmp_path):
    """A file whose only difference is the head loads into the rest of the model when the
    head is skipped (the file's own head is not counted); without ``skip`` it raises."""
    cls = _tiny16(classes=3)
    path = str(tmp_path / "cls3.weights.h5")
    cls.save_weights(path)
    other = _tiny16(classes=5)
    head_before = [w.numpy() for w in other.get_layer("linear5").weights]
    with pytest.raises(ValueError, match=r"first: linear5, model \(128, 5\) vs file \(128, 3\)"):
        A.load_weights(other, path)
    A.load_weights(other, path, skip=[other.get_layer("linear5")])
    for name in ("conv1a", "res2a", "res7a", "bn7"):
        for got, want in zip(other.get_layer(name).weights, cls.get_layer(name).weights):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    for got, want in zip(other.get_layer("linear5").weights, head_before):
        np.testing.assert_array_equal(got.numpy(), want)

    seg = A.ResNet38Segmenter(4, depth=16, **TINY)  # no linear3 or pool7, conv6a + linear4 instead
    head = [seg.get_layer("conv6a"), seg.get_layer("linear4")]
    A.load_weights(seg, path, skip=head)
    np.testing.assert_array_equal(seg.get_layer("res7a").weights[0].numpy(),
                                  cls.get_layer("res7a").weights[0].numpy())
    with pytest.raises(ValueError, match=r"into model .*: 6 variables differ: 3 layers could not "
                                         r"be loaded; first: conv6a, model \(3, 3, 128, 16\) vs "
                                         r"file \(absent\)"):
        A.load_weights(seg, path)  # conv6a and linear4 missing from the file, linear3 extra


def test_segmenter_os16_head_dilation():
    seg = A.ResNet38Segmenter(3, output_stride=16, input_shape=(64, 64, 3), **TINY)
    assert seg.output.shape == (None, 4, 4, 3)
    assert seg.get_layer("conv6a").dilation_rate == (6, 6)


def test_preprocess_input_and_decode_predictions():
    x = np.full((1, 2, 2, 3), 255.0, "float32")
    out = A.preprocess_input(x)
    np.testing.assert_allclose(out[0, 0, 0], (1 - np.array(A.IMAGENET_MEAN)) / A.IMAGENET_STD,
                               rtol=1e-6)
    np.testing.assert_allclose(A.preprocess_input(keras.ops.convert_to_tensor(x)), out, rtol=1e-6)
    preds = np.zeros((2, 1000), "float32")
    preds[0, 386], preds[1, 0] = 0.9, 0.8
    top = A.decode_predictions(preds, top=3)
    assert top[0][0] == ("n02504458", "African_elephant", pytest.approx(0.9))
    assert top[1][0][:2] == ("n01440764", "tench") and len(top[1]) == 3
    with pytest.raises(ValueError, match="shape"):
        A.decode_predictions(np.zeros((2, 10)))


def test_mixed_bfloat16_keeps_float32_logits():
    keras.config.set_dtype_policy("mixed_bfloat16")
    seg = A.ResNet38Segmenter(3, input_shape=(32, 32, 3), **TINY)
    assert seg.get_layer("res2a").compute_dtype == "bfloat16"
    assert seg(np.zeros((1, 32, 32, 3), "float32")).dtype == "float32"


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backend_forward_pass(backend):
    # Layers, models and applications use only keras.layers / keras.ops, so they must build and run
    # on Keras' other backends. Both are in the "test" extra; a missing one fails here, not skips.
    # A softmax's three probabilities are each within a few float32 units of exact; their sum is
    # within gamma(5) of 1 (exp, the division and two additions).
    code = textwrap.dedent(f"""
        import numpy as np, keras
        assert keras.backend.backend() == "{backend}"
        from keras_wideresnet import applications as A
        m = A.ResNet38(variant="a1", input_shape=(40, 40, 3), classes=3, width_multiplier=1/32)
        y = keras.ops.convert_to_numpy(m(np.ones((2, 40, 40, 3), "float32")))
        assert y.shape == (2, 3), y.shape
        assert np.allclose(y.sum(-1), 1, rtol=0, atol={gamma(5)!r}), y.sum(-1)
        s = A.ResNet38Segmenter(4, width_multiplier=1/32, upsample_logits=True)
        z = keras.ops.convert_to_numpy(s(np.ones((1, 33, 47, 3), "float32")))
        assert z.shape == (1, 33, 47, 4), z.shape
        print("BACKEND_OK")
    """)
    env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "BACKEND_OK" in proc.stdout, proc.stderr[-3000:]
