"""keras_wideresnet: the wide, shallow pre-activation ResNet-38 family in Keras 3.

"Wider or Deeper: Revisiting the ResNet Model for Visual Recognition"
(Wu, Shen, van den Hengel, 2016; arXiv:1611.10080).
"""

from setuptools import find_packages, setup

# Exact pins, verified together on Python 3.11 (see README "Install").
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "tensorflow-datasets==4.9.10",
    "importlib_resources==7.1.0",  # undeclared runtime dependency of tfds 4.9.10
    "absl-py==2.5.1",
    "gin-config==0.5.0",
    "scikit-learn==1.9.1",  # ships the embedded quickstart data (8x8 digits)
    "matplotlib==3.11.2",  # analysis plots
    "tensorboard==2.21.0",  # tf.summary needs it; TF 2.21 no longer pulls it in
]

EXTRAS_REQUIRE = {
    "serving": ["tensorflow-serving-api==2.21.0"],
    "test": [
        "pytest==9.2.0",
        "tensorflow-serving-api==2.21.0",
        "torch==2.13.0",  # CPU build; only for the multi-backend test
    ],
}

setup(
    name="keras_wideresnet",
    version="0.1.0",
    description="ResNet-38 (Model A/A1/A2) wide pre-activation ResNets for Keras 3, "
    "with atrous segmentation, TF Serving export and the paper's path analysis.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["keras_wideresnet", "keras_wideresnet.*"]),
    package_data={"keras_wideresnet": ["resources/*.json", "resources/*.txt"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license="Apache-2.0",
)
