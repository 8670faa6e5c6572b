"""Checkout wrapper for ``keras-wideresnet-export``: see :mod:`keras_wideresnet.cli.export`.

    python tools/export.py --help
"""

from keras_wideresnet.cli.export import run

if __name__ == "__main__":
    run()
