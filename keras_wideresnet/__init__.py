"""keras_wideresnet: the ResNet-38 family of "Wider or Deeper: Revisiting the ResNet Model for
Visual Recognition" (Wu, Shen, van den Hengel, 2016) in Keras 3.

Layout: layers → models → applications; data, training, evaluation, export, weights, analysis.
"""

__version__ = "0.1.0"
