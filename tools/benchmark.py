"""Throughput, achieved FLOP/s and peak memory of ResNet-38 and keras.applications baselines.

The benchmark harness lives in ``tools/benchmarking/`` (a checkout tool, not part of the
installed package); see docs/benchmark.md and ``python tools/benchmark.py --help``.
"""

import os
import sys

# `python tools/benchmark.py` puts tools/ first on sys.path; the harness imports itself as
# `tools.benchmarking`, so the checkout's root must be importable too.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.benchmarking.cli import run  # noqa: E402

if __name__ == "__main__":
    run()
