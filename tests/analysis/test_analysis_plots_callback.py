"""Plots and the TensorBoard callback of the path analysis."""

import glob
import os

import keras
import pytest
import tensorflow as tf

from keras_wideresnet.analysis import (
    PathAnalysisCallback,
    analyze_paths,
    plot_path_analysis,
    render_png,
    summary_lines,
)
from tests.tolerances import U32


def test_plots_written(tiny_model, tiny_batch, tmp_path):
    result = analyze_paths(tiny_model, tiny_batch, samples_per_k=3, verbose=False)
    paths = plot_path_analysis(result, str(tmp_path / "plots"), title="tiny")
    assert sorted(paths) == ["gradient_by_path_length", "path_count_distribution",
                             "total_gradient_by_path_length"]
    for p in paths.values():
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(p) > 5000
    image = tf.image.decode_png(render_png(result))
    assert image.shape[0] > 100 and image.shape[1] > 100
    lines = summary_lines(result)
    assert len(lines) == 2 + 5 and "effective depth" in lines[0]


def _read_scalars(log_dir):
    scalars, images = {}, set()
    for path in glob.glob(os.path.join(log_dir, "path_analysis", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name == "images":
                    images.add((v.tag, event.step))
                elif v.metadata.plugin_data.plugin_name == "scalars":
                    scalars[(v.tag, event.step)] = float(tf.make_ndarray(v.tensor))
    return scalars, images


def test_callback_logs_every_n_epochs(tiny_model, tiny_batch, tmp_path):
    x, y = tiny_batch
    tiny_model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = PathAnalysisCallback(every_n_epochs=2, batch=(x, y), log_dir=str(tmp_path / "tb"),
                              samples_per_k=2, json_dir=str(tmp_path / "json"), verbose=False)
    tiny_model.fit(x, y, batch_size=4, epochs=4, verbose=0, callbacks=[cb])
    assert [epoch for epoch, _ in cb.history] == [1, 3]
    first, second = cb.history[0][1], cb.history[1][1]
    assert first.mean != second.mean  # the weights changed between measurements
    scalars, images = _read_scalars(str(tmp_path / "tb"))
    assert {step for _, step in scalars} == {2, 4}
    for step, result in ((2, first), (4, second)):
        assert scalars[("path_analysis/effective_depth", step)] == result.effective_depth
        # TensorBoard stores scalars as float32: one rounding of the float64 result.
        assert scalars[("path_analysis/mean_gradient/k01", step)] == pytest.approx(
            result.mean[1], rel=2 * U32)
        assert scalars[("path_analysis/total_gradient/k02", step)] == pytest.approx(
            result.total[2], rel=2 * U32)
    assert images == {("path_analysis/gradient_by_path_length", 2),
                      ("path_analysis/gradient_by_path_length", 4)}
    assert sorted(os.listdir(tmp_path / "json")) == ["path_analysis_epoch0002.json",
                                                     "path_analysis_epoch0004.json"]


def test_callback_rejects_bad_period(tiny_batch):
    with pytest.raises(ValueError, match="every_n_epochs"):
        PathAnalysisCallback(every_n_epochs=0, batch=tiny_batch)



def test_replot_from_json_with_another_definition(tiny_model, tiny_batch, tmp_path):
    from keras_wideresnet.analysis import EffectiveDepthConfig
    from keras_wideresnet.analysis.sources import replot_path_analysis, run_path_analysis

    first, files = run_path_analysis(tiny_model, tiny_batch, str(tmp_path / "a"),
                                     samples_per_k=2, verbose=False)
    config = EffectiveDepthConfig("cumulative", 0.999)
    again, files2 = replot_path_analysis(files["json"], str(tmp_path / "b"), config)
    assert again.mean == first.mean and again.effective_depth_config["method"] == "cumulative"
    assert again.effective_depth == first.with_effective_depth(config).effective_depth
    assert sorted(os.listdir(tmp_path / "b")) == sorted(os.path.basename(p)
                                                         for p in files2.values())
    with pytest.raises(ValueError, match="does not exist"):
        replot_path_analysis(str(tmp_path / "nope.json"), str(tmp_path / "c"))
