"""Plots of a path analysis, matplotlib Agg backend.

Three figures:
* ``path_count_distribution.png``: C(n, k) per path length (the Binomial(n, ½) distribution).
* ``gradient_by_path_length.png``: mean ± std of ‖∂L/∂x‖₂ per k, log y-axis, effective depth
  marked.
* ``total_gradient_by_path_length.png``: C(n, k)·mean(k), log y-axis, effective depth (and
  effective range) marked.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from keras_wideresnet._extras import require
from keras_wideresnet.analysis.paths import PathAnalysisResult

PLOT_NAMES = ("path_count_distribution", "gradient_by_path_length",
              "total_gradient_by_path_length")


def _pyplot():
    matplotlib = require("matplotlib", "analysis", "The path-analysis plots")

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _mark_effective_depth(ax, result: PathAnalysisResult) -> None:
    cfg = result.effective_depth_config
    if result.effective_range is not None:
        lo, hi = result.effective_range
        ax.axvspan(lo - 0.5, hi + 0.5, color="tab:orange", alpha=0.12, label="effective range")
    if result.effective_depth is not None:
        ax.axvline(result.effective_depth, color="tab:red", ls="--",
                   label=f"effective depth = {result.effective_depth} "
                         f"({cfg['method']}, {cfg['fraction']:g})")


def _figure(result: PathAnalysisResult, which: str, title: str | None = None):
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    ks = np.asarray(result.path_lengths)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    suffix = f"\n{title}" if title else ""
    if which == "path_count_distribution":
        ax.bar(ks, [float(c) for c in result.counts], color="tab:blue")
        ax.set_ylabel("number of paths C(n, k)")
        ax.set_title(f"Path-length distribution, n = {result.num_units} units{suffix}")
    elif which == "gradient_by_path_length":
        mean, std = np.asarray(result.mean), np.asarray(result.std)
        pos = mean > 0
        ax.errorbar(ks[pos], mean[pos], yerr=np.minimum(std[pos], mean[pos] * 0.999),
                    fmt="o-", capsize=3, color="tab:blue", label="mean ± std")
        ax.set_yscale("log")
        ax.set_ylabel("gradient magnitude at input ‖∂L/∂x‖₂")
        ax.set_title(f"Gradient magnitude by path length{suffix}")
        _mark_effective_depth(ax, result)
        ax.legend(fontsize=8)
    elif which == "total_gradient_by_path_length":
        total = np.asarray(result.total)
        pos = total > 0
        ax.plot(ks[pos], total[pos], "o-", color="tab:green", label="C(n, k) · mean(k)")
        ax.set_yscale("log")
        ax.set_ylabel("total gradient magnitude")
        ax.set_title(f"Total gradient by path length{suffix}")
        _mark_effective_depth(ax, result)
        ax.legend(fontsize=8)
    else:
        raise ValueError(f"Unknown plot {which!r}; choose from {PLOT_NAMES}.")
    ax.set_xlabel("path length k (residual branches on the path)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.title.set_fontsize(10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_path_analysis(result: PathAnalysisResult, out_dir: str, title: str | None = None
                       ) -> dict[str, str]:
    """Writes the three PNGs into ``out_dir`` (created if needed); returns name → path."""
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for name in PLOT_NAMES:
        fig = _figure(result, name, title)
        paths[name] = os.path.join(out_dir, f"{name}.png")
        fig.savefig(paths[name])
        plt.close(fig)
    return paths


def render_png(result: PathAnalysisResult, which: str = "gradient_by_path_length",
               title: str | None = None) -> bytes:
    """One plot as PNG bytes (for TensorBoard image summaries)."""
    plt = _pyplot()
    fig = _figure(result, which, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def summary_lines(result: PathAnalysisResult) -> list[str]:
    """A plain-text table of the measurement, one line per path length."""
    lines = [f"n = {result.num_units} residual units; effective depth = {result.effective_depth} "
             f"({result.effective_depth_config['method']}, "
             f"fraction {result.effective_depth_config['fraction']:g}); "
             f"effective range = {result.effective_range}",
             f"{'k':>3} {'C(n,k)':>12} {'samples':>8} {'mean':>11} {'std':>11} {'total':>11}"]
    for i, k in enumerate(result.path_lengths):
        lines.append(f"{k:>3} {result.counts[i]:>12} {result.num_samples[i]:>8} "
                     f"{result.mean[i]:>11.4e} {result.std[i]:>11.4e} {result.total[i]:>11.4e}")
    return lines


__all__: list[Any] = ["PLOT_NAMES", "plot_path_analysis", "render_png", "summary_lines"]
