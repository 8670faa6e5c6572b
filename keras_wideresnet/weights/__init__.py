"""Pretrained-weight conversion from the released ademxapp MXNet files (docs/architecture.md §5).

No MXNet is needed: :func:`read_params` decodes ``.params`` files with NumPy, :func:`convert`
maps them onto a Keras model, :func:`load_ademxapp` builds the matching model and loads it.
See docs/weights.md.
"""

from keras_wideresnet.weights.checksums import (
    PUBLISHED_MD5,
    ReleaseName,
    file_md5,
    parse_release_name,
    verify_md5,
)
from keras_wideresnet.weights.convert import (
    RELEASED_MODELS,
    ConversionReport,
    convert,
    export_keras_weights,
    head_of,
    load_ademxapp,
)
from keras_wideresnet.weights.mxnet_params import ParamsFormatError, parse_params, read_params
from keras_wideresnet.weights.naming import ParamTarget, ademxapp_targets
from keras_wideresnet.weights.torch_psa import (
    psa_state_dict_to_ademxapp,
    psa_to_ademxapp_key,
    read_psa_pth,
)

__all__ = [
    "PUBLISHED_MD5", "RELEASED_MODELS", "ConversionReport", "ParamTarget", "ParamsFormatError",
    "ReleaseName", "ademxapp_targets", "convert", "export_keras_weights", "file_md5", "head_of",
    "load_ademxapp", "parse_params", "parse_release_name", "psa_state_dict_to_ademxapp",
    "psa_to_ademxapp_key", "read_params", "read_psa_pth", "verify_md5",
]
