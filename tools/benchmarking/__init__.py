"""Benchmarks: FLOP counting, peak matmul, throughput and peak memory, reports.

Every configuration runs in its own subprocess (:mod:`tools.benchmarking.runner`) so that
oneDNN settings, dtype policies and peak memory do not leak between configurations, and so that a
crash of one configuration (e.g. TF's oneDNN heap corruption) is recorded instead of ending the run.
Names are imported lazily: the parent process of a run never imports TensorFlow.
"""

from keras_wideresnet._lazy import lazy_exports

_EXPORTS = {
    "BenchConfig": "configs", "MODELS": "configs", "PRESETS": "configs", "grid_configs": "configs",
    "preset_configs": "configs",
    "FlopCount": "flops", "count_flops": "flops", "profiler_flops": "flops",
    "format_markdown": "report", "summarize": "report", "write_report": "report",
    "run_config": "runner", "run_configs": "runner",
}  # fmt: skip
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
