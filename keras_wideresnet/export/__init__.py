"""Export for TF Serving: versioned SavedModels with image-bytes, image-tensor and tf.Example
signatures whose answers equal evaluation. See docs/serving.md."""

from keras_wideresnet.export.config import ServingConfig, from_experiment
from keras_wideresnet.export.experiment_export import export_experiment
from keras_wideresnet.export.saved_model import (SIGNATURES, existing_versions, export_saved_model,
                                                 next_version)

__all__ = ["ServingConfig", "export_experiment", "from_experiment", "SIGNATURES", "existing_versions",
           "export_saved_model", "next_version"]
