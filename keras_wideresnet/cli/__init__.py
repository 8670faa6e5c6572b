"""Command-line tools: ``keras-wideresnet-<tool>`` or ``python -m keras_wideresnet.cli.<tool>``.

Each module is a thin absl app over tested library functions; ``tools/<tool>.py`` in a checkout
runs the same ``run()``.
"""
