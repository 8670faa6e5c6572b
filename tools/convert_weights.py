"""Checkout wrapper for ``keras-wideresnet-convert-weights``: see :mod:`keras_wideresnet.cli.convert_weights`.

    python tools/convert_weights.py --help
"""

from keras_wideresnet.cli.convert_weights import run

if __name__ == "__main__":
    run()
