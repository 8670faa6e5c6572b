"""TF's fused batch-norm kernel for training-mode BN on the TensorFlow backend.

Keras 3's ``BatchNormalization`` is backend-neutral: in training it runs moments, normalise and
(under mixed precision) casts to float32 and back as separate ops, and their gradients likewise,
each a pass over the activation. TF's ``FusedBatchNormV3`` (oneDNN on CPU, cuDNN on GPU) does
the statistics and the normalisation in one kernel, reads bf16/fp16 directly with float32
statistics, and has a fused gradient. docs/benchmark.md compares training steps and step memory
with and without it.

The layers stay keras.ops-only (they must also run on JAX and PyTorch). This TF-only module has
one switch, :func:`use_fused_batch_norm`, which ``Experiment.fused_batch_norm`` turns on in the
trainer: it swaps the training *call* of a built model's BN layers (found with
:func:`keras_wideresnet.layers.iter_layers`); the layer
class, its weights, names and config are unchanged, so checkpoints, ``.keras`` files and exports
are the same as without it. Inference (``training=False``) is Keras' own code.
"""

from __future__ import annotations

import types

import keras
import tensorflow as tf

from keras_wideresnet.layers.walk import iter_layers

# cuDNN's and TF's lower bound; a smaller ε keeps Keras' path (TF would silently raise it).
MIN_EPSILON = 1.001e-5
KERNEL_DTYPES = ("float32", "bfloat16", "float16")  # FusedBatchNormV3 has no float64 kernel
_FUSED_MARK = "_kwr_fused_batch_norm"


def _eligible(layer: keras.layers.Layer) -> bool:
    """Plain training-mode BN over the last axis of NHWC tensors: what the kernel computes."""
    if type(layer) is not keras.layers.BatchNormalization:  # noqa: E721 (subclasses change `call`)
        return False
    return (not layer.synchronized and not layer.renorm and layer.scale and layer.center
            and layer.axis in (-1, 3) and layer.epsilon >= MIN_EPSILON
            and layer.compute_dtype in KERNEL_DTYPES)


def fused_batch_norm_call(layer: keras.layers.BatchNormalization, inputs, training=None, mask=None):
    """``BatchNormalization.call`` with the training branch on ``FusedBatchNormV3``.

    The same outputs, gradients and moving-statistics update as Keras' BN to float rounding
    (Keras keeps the biased batch variance for the moving average; the kernel returns the
    unbiased one, which is converted back).
    """
    if not (training and layer.trainable) or mask is not None or len(inputs.shape) != 4:
        return keras.layers.BatchNormalization.call(layer, inputs, training=training, mask=mask)
    outputs, mean, variance, *_ = tf.compat.v1.nn.fused_batch_norm(
        inputs, tf.cast(layer.gamma, tf.float32), tf.cast(layer.beta, tf.float32),
        epsilon=layer.epsilon, data_format="NHWC", is_training=True)
    shape = tf.shape(inputs)
    count = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
    variance = variance * tf.maximum(count - 1.0, 0.0) / count
    momentum = layer.momentum
    layer.moving_mean.assign(layer.moving_mean * momentum + mean * (1.0 - momentum))
    layer.moving_variance.assign(layer.moving_variance * momentum + variance * (1.0 - momentum))
    return tf.cast(outputs, layer.compute_dtype)


def use_fused_batch_norm(model: keras.layers.Layer) -> int:
    """Runs every eligible BN layer of ``model`` (nested ones included) through TF's fused
    kernel in training; returns how many. Needs the TensorFlow backend.

    Left on Keras' path: synchronized BN (cross-replica statistics), renorm, frozen-statistics
    BN (:class:`keras_wideresnet.layers.FrozenStatsBatchNormalization`), float64 layers, non-4D
    inputs and a masked call. Calling it twice changes nothing.
    """
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("use_fused_batch_norm needs the TensorFlow backend; "
                           f"KERAS_BACKEND is {keras.backend.backend()!r}.")
    count = 0
    for layer in iter_layers(model, include_self=True):
        if not _eligible(layer):
            continue
        if not getattr(layer, _FUSED_MARK, False):
            object.__setattr__(layer, "call", types.MethodType(fused_batch_norm_call, layer))
            object.__setattr__(layer, _FUSED_MARK, True)
        count += 1
    return count
