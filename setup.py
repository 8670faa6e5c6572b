"""keras_wideresnet: the wide, shallow pre-activation ResNet-38 family in Keras 3.

"Wider or Deeper: Revisiting the ResNet Model for Visual Recognition"
(Wu, Shen, van den Hengel, 2016; arXiv:1611.10080).

Requirements are compatible ranges on the TensorFlow 2.21 / Keras 3.15 line, so the package installs
beside other libraries; ``constraints.txt`` holds the exact set that CI verifies
(``pip install -c constraints.txt ...``).
"""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "tensorflow>=2.21,<2.22",
    "keras>=3.15,<3.16",
    "tensorflow-datasets>=4.9.10,<4.10",
    "importlib_resources>=6",  # imported by tensorflow-datasets 4.9 without declaring it
    "tensorboard>=2.21,<2.22",  # tf.summary needs it; TF 2.21 no longer pulls it in
    "absl-py>=2.1,<3",
    "gin-config>=0.5,<0.6",
    "numpy>=1.26,<3",
    "pillow>=10,<13",
]

# Optional parts; each module that needs one names its extra in the error it raises without it.
EXTRAS_REQUIRE = {
    "quickstart": ["scikit-learn>=1.5,<2"],  # the embedded quickstart data (8x8 digits)
    "analysis": ["matplotlib>=3.8,<4"],  # the path-analysis plots
    "sbd": ["scipy>=1.11,<2"],  # SBD / PASCAL Context .mat masks
    "onnx": ["tf2onnx>=1.17,<1.18", "onnx>=1.17,<2", "onnxruntime>=1.20,<2"],
    "serving": ["tensorflow-serving-api>=2.21,<2.22"],
    "jax": ["jax>=0.6,<0.11"],  # the JAX backend; PyPI's jax wheels are CPU builds
    # The PyTorch backend, the PSA weight reader and the PyTorch benchmark peer. constraints.txt
    # pins the CPU build (torch==2.13.0+cpu); see README "Install".
    "torch": ["torch>=2.13,<2.15"],
}
EXTRAS_REQUIRE["test"] = sorted(
    {"pytest>=8,<10"}
    | {req for extra in ("quickstart", "analysis", "sbd", "onnx", "serving", "jax", "torch")
       for req in EXTRAS_REQUIRE[extra]})

TOOLS = ("train", "evaluate", "predict", "export", "create_tfrecords", "convert_weights",
         "analyze_paths")

setup(
    name="keras_wideresnet",
    version="0.1.0",
    description="ResNet-38 (Model A/A1/A2) wide pre-activation ResNets for Keras 3, "
    "with atrous segmentation, TF Serving export and the paper's path analysis.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # TF 2.21 publishes wheels for 3.10-3.13, but Keras 3.13 and newer require Python 3.11.
    python_requires=">=3.11,<3.14",
    packages=[*find_packages(include=["keras_wideresnet", "keras_wideresnet.*"]),
              "keras_wideresnet.gin_configs"],
    # The top-level gin_configs/ ships inside the package, read through importlib.resources.
    package_dir={"keras_wideresnet.gin_configs": "gin_configs"},
    package_data={
        "keras_wideresnet": ["resources/*.json", "resources/*.md", "resources/samples/*.png"],
        "keras_wideresnet.gin_configs": ["**/*.gin"],
    },
    entry_points={"console_scripts": [
        f"keras-wideresnet-{tool.replace('_', '-')}=keras_wideresnet.cli.{tool}:run"
        for tool in TOOLS]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        *(f"Programming Language :: Python :: 3.{v}" for v in range(11, 14)),
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
