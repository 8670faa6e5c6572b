"""Shared test set-up: quiet TF, TF backend, tiny models only."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Same default as tools/train.py: TF 2.21's oneDNN conv backprop-filter corrupts the heap on
# some small CPU shapes (README, "Known issues").
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_keras_session():
    """Fresh Keras name scopes and dtype policy per test."""
    import keras

    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()
