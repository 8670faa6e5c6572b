"""Two processes preparing one quickstart folder at the same moment never break each other."""

import os
import subprocess
import sys

import tensorflow as tf

# What each worker of a 2-worker run on one host does first: the quickstart files of its config.
_PREPARE = ("import sys; from keras_wideresnet.data.quickstart import quickstart_files; "
            "print(quickstart_files('segmentation', 'train', sys.argv[1]))")


def _count(pattern: str) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern)))


def test_two_writers_on_an_empty_folder_ten_times(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for attempt in range(10):
        data_dir = tmp_path / f"try{attempt}"
        procs = [subprocess.Popen([sys.executable, "-c", _PREPARE, str(data_dir)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0, f"attempt {attempt}: {err[-2000:]}"
        patterns = {out.strip().splitlines()[-1] for out, _ in outs}
        assert len(patterns) == 1
        train = patterns.pop()
        assert _count(train) == 240  # write_quickstart's default num_train, each record once
        assert _count(train.replace("-train.", "-validation.")) == 60
        leftovers = [f for f in os.listdir(data_dir / "segmentation" / "_progress") if ".tmp" in f]
        assert not leftovers
