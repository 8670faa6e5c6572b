"""Constants the data pipelines, the models and the exported signatures share (a leaf module:
it imports nothing of the package).

The ImageNet mean and standard deviation of RGB in [0, 1]: the input normalisation of the
authors' released networks (ademxapp ``_get_scalemeanstd`` in ``iclass/ilsvrc.py`` and
``issegm/voc.py``; docs/architecture.md §5.5).
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
