"""The paper's path analysis (paper spec §4): unravelled view, gradient magnitude by path
length, effective depth, and the "wider or deeper" comparison."""

from keras_wideresnet.analysis.effective_depth import (
    EFFECTIVE_DEPTH_METHODS,
    EffectiveDepthConfig,
    effective_depth,
    path_counts,
    path_length_distribution,
)
from keras_wideresnet.analysis.gates import PathGates, find_residual_units, path_gates
from keras_wideresnet.analysis.paths import (
    PROJECTION_SHORTCUT_RULE,
    PathAnalysisResult,
    PathGradient,
    analyze_paths,
    as_batches,
    default_loss,
    input_gradient,
    sample_plan,
)

__all__ = [
    "EFFECTIVE_DEPTH_METHODS", "EffectiveDepthConfig", "PROJECTION_SHORTCUT_RULE",
    "PathAnalysisResult", "PathGates", "PathGradient", "analyze_paths", "as_batches",
    "default_loss", "effective_depth", "find_residual_units", "input_gradient", "path_counts",
    "path_gates", "path_length_distribution", "sample_plan",
]
