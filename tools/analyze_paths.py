"""Checkout wrapper for ``keras-wideresnet-analyze-paths``: see :mod:`keras_wideresnet.cli.analyze_paths`.

    python tools/analyze_paths.py --help
"""

from keras_wideresnet.cli.analyze_paths import run

if __name__ == "__main__":
    run()
