"""Sharded, resumable, parallel TFRecord writer with TFDS metadata.

Each shard is written by one worker process to a temporary file and renamed only when complete (with
a small manifest beside it), so a half-written shard never looks complete and re-running finishes the
job. ``tfds.folder_dataset.write_metadata`` then adds ``dataset_info.json``/``features.json`` so that
``tfds.builder_from_directory(out_dir)`` reads the output and reports split sizes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import multiprocessing as mp
import os
import random
import re
import time
from typing import Iterator, Sequence

from absl import logging

from keras_wideresnet import _quiet_import
from keras_wideresnet.data import schema
from keras_wideresnet.data.encode import EncodeConfig, Item, encode_item
from keras_wideresnet.data.errors import DataError

PROGRESS_DIR = "_progress"
LOCK_FILE = "writer.lock"


@contextlib.contextmanager
def exclusive_lock(out_dir: str) -> Iterator[None]:
    """Holds ``out_dir/_progress/writer.lock`` (``flock``): two processes that prepare the same
    folder, such as two workers on one host starting at the same moment, run one after the
    other, and the second finds the first's finished shards. The lock is released when the
    holder exits, also when it is killed. Not nestable within one process."""
    os.makedirs(os.path.join(out_dir, PROGRESS_DIR), exist_ok=True)
    try:
        import fcntl  # POSIX; elsewhere the writers are not serialised
    except ImportError:
        yield
        return
    with open(os.path.join(out_dir, PROGRESS_DIR, LOCK_FILE), "a", encoding="utf-8") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@dataclasses.dataclass
class SplitResult:
    """What ``write_split`` did: records written, items skipped (source id, reason), shard files."""

    split: str
    num_written: int
    skipped: list[tuple[str, str]]
    files: list[str]
    pattern: str
    shard_lengths: list[int] = dataclasses.field(default_factory=list)  # records per file
    num_bytes: int = 0


def shard_name(dataset_name: str, split: str, index: int, num_shards: int) -> str:
    """TFDS file naming: ``{DATASET}-{SPLIT}.tfrecord-{X:05d}-of-{Y:05d}``."""
    return f"{dataset_name}-{split}.tfrecord-{index:05d}-of-{num_shards:05d}"


def split_pattern(out_dir: str, dataset_name: str, split: str) -> str:
    return os.path.join(out_dir, f"{dataset_name}-{split}.tfrecord-*")


_counter = None  # per-worker shared progress counter
# A spawned worker costs a Python start and a TensorFlow import (seconds), so by default one is
# started per this many items at most; smaller jobs are written in this process.
MIN_ITEMS_PER_WORKER = 256


def _init_worker(counter) -> None:
    global _counter
    _counter = counter
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _write_shard(job: tuple) -> dict:
    """Writes one shard (worker side). Returns its manifest."""
    import tensorflow as tf

    final_path, items, config, skip_corrupt = job
    out_dir, base = os.path.split(final_path)
    tmp_path = os.path.join(out_dir, PROGRESS_DIR, f"{base}.tmp-{os.getpid()}")
    manifest_path = os.path.join(out_dir, PROGRESS_DIR, f"{base}.json")
    written, skipped = 0, []
    try:
        with tf.io.TFRecordWriter(tmp_path) as writer:
            for item in items:
                try:
                    writer.write(encode_item(item, config))
                    written += 1
                except DataError as e:
                    if not skip_corrupt:
                        raise
                    skipped.append((item.source_id, str(e)))
                if _counter is not None:
                    with _counter.get_lock():
                        _counter.value += 1
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    manifest = {"shard": base, "num_written": written, "skipped": skipped}
    manifest_tmp = f"{manifest_path}.tmp-{os.getpid()}"
    with open(manifest_tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    os.replace(manifest_tmp, manifest_path)
    os.replace(tmp_path, final_path)  # the shard appears only when complete
    return manifest


class _Progress:
    """A Keras progress bar over items, redrawn only when the count moves and finished once."""

    def __init__(self, total: int, title: str | None):
        self.total, self.bar, self.shown = total, None, -1
        if title is not None:
            import keras

            print(title, flush=True)
            self.bar = keras.utils.Progbar(total, unit_name="image")

    def show(self, count: int) -> None:
        if self.bar is not None and count != self.shown and count < self.total:
            self.shown = count
            self.bar.update(count)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.update(self.total, finalize=True)


def _check_no_foreign_shards(out_dir: str, dataset_name: str, split: str, num_shards: int) -> None:
    rx = re.compile(re.escape(f"{dataset_name}-{split}.tfrecord-") + r"\d{5}-of-(\d{5})$")
    for path in glob.glob(split_pattern(out_dir, dataset_name, split)):
        m = rx.search(os.path.basename(path))
        if m and int(m.group(1)) != num_shards:
            raise DataError(
                f"{out_dir} already holds shards of split {split!r} written with num_shards="
                f"{int(m.group(1))} (e.g. {os.path.basename(path)}), but num_shards={num_shards} was "
                "asked for. Re-run with the same --num_shards to finish that job, or delete those shards."
            )


def write_split(
    items: Sequence[Item],
    out_dir: str,
    *,
    dataset_name: str,
    split: str,
    config: EncodeConfig,
    num_shards: int,
    num_workers: int = 1,
    skip_corrupt: bool = False,
    shuffle_seed: int | None = None,
    verbose: bool = True,
    min_items_per_worker: int = MIN_ITEMS_PER_WORKER,
) -> SplitResult:
    """Encodes ``items`` into ``num_shards`` TFRecord shards of ``out_dir``.

    Args:
      items: the records, in a deterministic order (the converters sort them).
      shuffle_seed: if set, items are shuffled with this seed before sharding (training splits), so
        every shard mixes classes; the same seed gives the same shards on a re-run.
      num_workers: processes writing shards in parallel (``spawn`` context); 1 = in this process.
      min_items_per_worker: fewer workers are started when the items would give each fewer than
        this (a worker's start-up costs a TensorFlow import); a small job runs in this process.
      skip_corrupt: skip items that fail validation and report them instead of raising ``DataError``.

    The caller holds :func:`exclusive_lock` on ``out_dir`` where other processes may write it.
    """
    if not items:
        raise DataError(f"split {split!r} of {dataset_name!r} has no items to write; check the input paths.")
    if num_shards < 1 or num_workers < 1:
        raise ValueError(f"num_shards and num_workers must be >= 1. Received: {num_shards}, {num_workers}")
    if not re.fullmatch(r"[a-z0-9_]+", dataset_name) or not re.fullmatch(r"[A-Za-z0-9_]+", split):
        raise ValueError(
            "dataset_name must be lower-case snake_case and split alphanumeric/underscore (TFDS naming). "
            f"Received: dataset_name={dataset_name!r}, split={split!r}"
        )
    num_shards = min(num_shards, len(items))
    os.makedirs(os.path.join(out_dir, PROGRESS_DIR), exist_ok=True)
    done = _compacted_result(out_dir, dataset_name, split, num_shards)
    if done is not None:
        return done
    _check_no_foreign_shards(out_dir, dataset_name, split, num_shards)
    for stale in glob.glob(os.path.join(out_dir, PROGRESS_DIR, f"{dataset_name}-{split}.*.tmp*")):
        os.remove(stale)  # left by an interrupted run

    order = list(items)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    jobs, manifests, done_count = _pending_jobs(order, out_dir, dataset_name, split, num_shards,
                                                (config, skip_corrupt))
    progress = _Progress(len(order), f"Writing {dataset_name}/{split}: {len(order)} items, "
                         f"{num_shards} shards" if verbose else None)
    progress.show(done_count)
    num_workers = min(num_workers, len(jobs), -(-len(order) // max(1, min_items_per_worker)))
    manifests += _run_jobs(jobs, num_workers, lambda n: progress.show(done_count + n))
    progress.finish()
    return _split_result(out_dir, dataset_name, split, num_shards, manifests)


def _pending_jobs(order: list[Item], out_dir: str, dataset_name: str, split: str, num_shards: int,
                  encode_args: tuple) -> tuple[list[tuple], list[dict], int]:
    """Shard ``i`` takes ``order[i::num_shards]``. Returns the shards still to write, the
    manifests of the shards an earlier run finished, and how many items those hold."""
    jobs, manifests, done_count = [], [], 0
    for i in range(num_shards):
        final = os.path.join(out_dir, shard_name(dataset_name, split, i, num_shards))
        manifest_path = os.path.join(out_dir, PROGRESS_DIR, os.path.basename(final) + ".json")
        shard_items = order[i::num_shards]
        if os.path.exists(final) and os.path.exists(manifest_path):
            with open(manifest_path, encoding="utf-8") as f:
                manifests.append(json.load(f))
            done_count += len(shard_items)
            continue
        jobs.append((final, shard_items, *encode_args))
    if done_count:
        logging.info("%s/%s: %d of %d shards already complete; writing the rest.",
                     dataset_name, split, num_shards - len(jobs), num_shards)
    return jobs, manifests, done_count


def _run_jobs(jobs: list[tuple], num_workers: int, show) -> list[dict]:
    """Writes the shards, in this process or in ``num_workers`` spawned ones; ``show(n)`` gets
    the number of items written so far. Returns their manifests."""
    manifests: list[dict] = []
    if jobs and num_workers <= 1:
        counter = mp.Value("q", 0)
        _init_worker(counter)
        try:
            for job in jobs:
                manifests.append(_write_shard(job))
                show(counter.value)
        finally:
            _init_worker(None)
    elif jobs:
        ctx = mp.get_context("spawn")  # TF is not fork-safe
        counter = ctx.Value("q", 0)
        # A quiet parent (TF_CPP_MIN_LOG_LEVEL=3, as the CLIs set it) keeps its workers' TF
        # start-up lines off stderr too: the initializer is unpickled before TF loads.
        quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3"
        with ctx.Pool(num_workers, initializer=_quiet_import.call_quietly,
                      initargs=(quiet, __name__, "_init_worker", counter)) as pool:
            pending = [pool.apply_async(_write_shard, (job,)) for job in jobs]
            while pending:
                time.sleep(0.2)
                still = []
                for res in pending:
                    if res.ready():
                        manifests.append(res.get())  # re-raises a worker's DataError here
                    else:
                        still.append(res)
                pending = still
                show(counter.value)
    return manifests


def _split_result(out_dir: str, dataset_name: str, split: str, num_shards: int,
                  manifests: list[dict]) -> SplitResult:
    """The finished split: skipped items reported (``skipped-<split>.txt``), empty shards
    dropped, per-shard lengths for the TFDS metadata."""
    skipped = [tuple(s) for m in manifests for s in m["skipped"]]
    written = sum(m["num_written"] for m in manifests)
    if skipped:
        report = os.path.join(out_dir, f"skipped-{split}.txt")
        with open(report, "w", encoding="utf-8") as f:
            for source_id, reason in skipped:
                f.write(f"{source_id}\t{reason}\n")
        logging.warning("%s/%s: skipped %d bad item(s), listed in %s: %s", dataset_name, split,
                        len(skipped), report, ", ".join(s for s, _ in skipped[:20]))
    files = [os.path.join(out_dir, shard_name(dataset_name, split, i, num_shards)) for i in range(num_shards)]
    per_shard = {m["shard"]: m["num_written"] for m in manifests}
    lengths = [per_shard[os.path.basename(f)] for f in files]
    if 0 in lengths and written:
        files, lengths = _drop_empty_shards(out_dir, dataset_name, split, files, lengths, skipped)
    return SplitResult(split, written, skipped, files, split_pattern(out_dir, dataset_name, split),
                       lengths, sum(os.path.getsize(f) for f in files))


def _compaction_record(out_dir: str, dataset_name: str, split: str) -> str:
    return os.path.join(out_dir, PROGRESS_DIR, f"{dataset_name}-{split}.compacted.json")


def _drop_empty_shards(out_dir: str, dataset_name: str, split: str, files: list[str],
                       lengths: list[int], skipped: list) -> tuple[list[str], list[int]]:
    """Renumbers the shards that hold records as ``-of-K`` and removes the empty ones (every item
    of a shard was skipped as corrupt), so that no empty shard is left. A record in
    ``_progress/`` lets a re-run with the same ``num_shards`` find the finished split."""
    kept = [(f, n) for f, n in zip(files, lengths) if n]
    final = [os.path.join(out_dir, shard_name(dataset_name, split, i, len(kept))) for i in range(len(kept))]
    record = {"num_shards": len(files), "files": [os.path.basename(f) for f in final],
              "shard_lengths": [n for _, n in kept], "skipped": skipped}
    with open(_compaction_record(out_dir, dataset_name, split) + ".tmp", "w", encoding="utf-8") as f:
        json.dump(record, f)
    for (old, _), new in zip(kept, final):
        os.replace(old, new)
    for f, n in zip(files, lengths):
        if not n:
            os.remove(f)
    os.replace(_compaction_record(out_dir, dataset_name, split) + ".tmp",
               _compaction_record(out_dir, dataset_name, split))
    logging.warning("%s/%s: %d shard(s) held only skipped items; kept %d shards.", dataset_name,
                    split, len(files) - len(kept), len(kept))
    return final, [n for _, n in kept]


def _compacted_result(out_dir: str, dataset_name: str, split: str, num_shards: int) -> SplitResult | None:
    """The finished split of an earlier run that dropped empty shards, or None."""
    path = _compaction_record(out_dir, dataset_name, split)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    files = [os.path.join(out_dir, name) for name in record["files"]]
    if record["num_shards"] != num_shards or not all(os.path.exists(f) for f in files):
        return None
    skipped = [tuple(s) for s in record["skipped"]]
    return SplitResult(split, sum(record["shard_lengths"]), skipped, files,
                       split_pattern(out_dir, dataset_name, split), record["shard_lengths"],
                       sum(os.path.getsize(f) for f in files))


def write_tfds_metadata(out_dir: str, *, task: str, class_names: Sequence[str], description: str = "",
                        splits: Sequence[SplitResult] | None = None) -> None:
    """Writes TFDS metadata for all splits in ``out_dir`` (readable with ``tfds.builder_from_directory``)."""
    import tensorflow_datasets as tfds

    split_infos = None  # without the results, TFDS reads every shard to count its records
    if splits is not None:
        split_infos = [tfds.core.SplitInfo(name=r.split, shard_lengths=list(r.shard_lengths),
                                           num_bytes=r.num_bytes) for r in splits]
    tfds.folder_dataset.write_metadata(
        data_dir=out_dir,
        features=schema.tfds_features(task, class_names),
        split_infos=split_infos,
        description=description or f"keras_wideresnet {task} TFRecords",
        check_data=False,
    )
