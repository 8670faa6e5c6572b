"""Checkout wrapper for ``keras-wideresnet-create-tfrecords``: see :mod:`keras_wideresnet.cli.create_tfrecords`.

    python tools/create_tfrecords.py --help
"""

from keras_wideresnet.cli.create_tfrecords import run

if __name__ == "__main__":
    run()
