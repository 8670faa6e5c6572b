"""The paper's path analysis (docs/architecture.md §6; paper §3): unravelled view, gradient
magnitude by path length, effective depth, and the "wider or deeper" comparison."""

from keras_wideresnet.analysis.callback import PathAnalysisCallback, path_analysis_action
from keras_wideresnet.analysis.comparison import (
    Member,
    compare_members,
    comparison_markdown,
    describe_units,
    estimate_training_memory,
    match_width,
    match_width_multiplier,
    measure_step,
    read_accuracy,
    spec_param_count,
    wider_or_deeper_members,
)
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
from keras_wideresnet.analysis.plots import plot_path_analysis, render_png, summary_lines

__all__ = [
    "EFFECTIVE_DEPTH_METHODS", "EffectiveDepthConfig", "Member", "PROJECTION_SHORTCUT_RULE",
    "PathAnalysisCallback", "PathAnalysisResult", "PathGates", "PathGradient", "analyze_paths",
    "as_batches", "compare_members", "comparison_markdown", "default_loss", "describe_units", "effective_depth",
    "estimate_training_memory", "find_residual_units", "input_gradient", "match_width", "match_width_multiplier",
    "measure_step", "path_analysis_action", "path_counts", "path_gates", "path_length_distribution",
    "plot_path_analysis", "read_accuracy", "render_png", "sample_plan", "spec_param_count",
    "summary_lines", "wider_or_deeper_members",
]
