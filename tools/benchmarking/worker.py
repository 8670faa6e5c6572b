"""Subprocess entry point: ``python -m tools.benchmarking.worker '<BenchConfig JSON>'``.

Prints one line ``BENCH_RESULT <json>`` on success. The parent sets ``TF_ENABLE_ONEDNN_OPTS``
before this process imports TensorFlow.
"""

from __future__ import annotations

import json
import sys

RESULT_PREFIX = "BENCH_RESULT "


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tools.benchmarking.worker '<BenchConfig JSON>'", file=sys.stderr)
        return 2
    from tools.benchmarking.configs import BenchConfig

    config = BenchConfig.from_dict(json.loads(argv[1]))
    from tools.benchmarking.measure import measure

    result = measure(config)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
