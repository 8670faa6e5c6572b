"""Checkout wrapper for ``keras-wideresnet-predict``: see :mod:`keras_wideresnet.cli.predict`.

    python tools/predict.py --help
"""

from keras_wideresnet.cli.predict import run

if __name__ == "__main__":
    run()
