"""Checkout wrapper for ``keras-wideresnet-benchmark``: see :mod:`keras_wideresnet.cli.benchmark`.

    python tools/benchmark.py --help
"""

from keras_wideresnet.cli.benchmark import run

if __name__ == "__main__":
    run()
