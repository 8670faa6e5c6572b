"""tf.distribute strategy selection (after Model Garden's ``official/common/distribute_utils.py``)."""

from __future__ import annotations

import tensorflow as tf

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")


def get_strategy(name: str = "default", tpu_address: str | None = None,
                 devices: list[str] | None = None) -> tf.distribute.Strategy:
    """Returns the strategy named on the command line.

    Args:
      name: ``"default"`` (no distribution), ``"one_device"``, ``"mirrored"`` (all local GPUs,
        or ``devices``), ``"multi_worker_mirrored"`` (reads ``TF_CONFIG``) or ``"tpu"``.
      tpu_address: TPU name/address for ``TPUClusterResolver`` (``"local"`` on a TPU VM).
      devices: Explicit device list for ``mirrored`` (e.g. two logical CPUs in tests).
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {STRATEGIES}. Received: {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError) as e:
        raise RuntimeError(f"No TPU could be reached at {tpu_address or '(auto)'}: {e}. Run on a "
                           "TPU VM or pass --tpu=<name>; on CPU/GPU use --strategy=mirrored.") from e
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this worker writes summaries, configs and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type in ("chief", None) or (
        resolver.task_type == "worker" and resolver.task_id == 0)


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """How many processes (chief and workers of ``TF_CONFIG``) run this strategy's steps."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        return 1  # a TPU's hosts are driven by this one process
    jobs = resolver.cluster_spec().as_dict()
    return max(1, sum(len(jobs.get(job, ())) for job in ("chief", "worker")))
