"""Checkout wrapper for ``keras-wideresnet-train``: see :mod:`keras_wideresnet.cli.train`.

    python tools/train.py --help
"""

from keras_wideresnet.cli.train import run

if __name__ == "__main__":
    run()
