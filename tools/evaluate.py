"""Checkout wrapper for ``keras-wideresnet-evaluate``: see :mod:`keras_wideresnet.cli.evaluate`.

    python tools/evaluate.py --help
"""

from keras_wideresnet.cli.evaluate import run

if __name__ == "__main__":
    run()
