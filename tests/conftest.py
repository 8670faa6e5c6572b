"""Shared test set-up: quiet TF, TF backend, tiny models only."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# oneDNN stays at TF's default (on), as in tools/train.py: the suite covers the strided 1x1 conv
# shapes whose oneDNN backprop-filter used to corrupt the heap (README, "Known issues").

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_keras_session():
    """Fresh Keras name scopes and dtype policy per test."""
    import keras

    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()
