"""Family specs, the backbone builder and the segmentation model (docs/architecture.md §1–§4)."""

from keras_wideresnet.models.backbone import WideResNetBackbone, build_features, max_pool
from keras_wideresnet.models.folding import fold_batch_norm
from keras_wideresnet.models.segmentation import segmentation_head
from keras_wideresnet.models.spec import (
    BlockSpec,
    FamilySpec,
    get_spec,
    list_specs,
    make_spec,
    register_spec,
)

__all__ = [
    "BlockSpec", "FamilySpec", "WideResNetBackbone", "build_features", "fold_batch_norm", "get_spec", "list_specs",
    "make_spec", "max_pool", "register_spec", "segmentation_head",
]
