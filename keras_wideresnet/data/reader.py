"""Record sources shared by the pipelines: file lists, per-replica/worker sharding, TFDS sources.

Sharding follows Model Garden's input reader: files are split across input
pipelines through ``tf.distribute.InputContext`` (records are split instead when there are fewer files
than pipelines), interleaved with AUTOTUNE parallelism, and optionally deterministic with a seed.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from keras_wideresnet.data import schema
from keras_wideresnet.data.errors import DataError
from keras_wideresnet.data.labels import ade20k, cityscapes

AUTOTUNE = tf.data.AUTOTUNE


def list_files(file_pattern: str) -> list[str]:
    """Files matching a glob or a comma-separated list of globs; sorted; error if none match."""
    if not file_pattern:
        raise DataError("file_pattern is empty: pass the TFRecord glob (e.g. out/voc-train.tfrecord-*) or tfds_name.")
    files: list[str] = []
    for pattern in file_pattern.split(","):
        matched = tf.io.gfile.glob(pattern.strip())
        if not matched:
            raise DataError(
                f"no files match {pattern.strip()!r}. Write the records first with keras-wideresnet-create-tfrecords "
                "(or keras_wideresnet.data.write_quickstart) and pass their glob."
            )
        files.extend(matched)
    return sorted(set(files))


def known_record_count(files: list[str]) -> int | None:
    """The number of records in ``files`` from the TFDS ``dataset_info.json`` beside them, or None.

    The count is used only when every file is listed in the metadata and the files' total size
    equals the sizes the metadata records for those splits, so a stale ``dataset_info.json`` is
    never trusted. Reads no record.
    """
    lengths: dict[str, int] = {}
    sizes: dict[tuple[str, ...], int] = {}
    for directory in sorted({os.path.dirname(f) for f in files}):
        path = os.path.join(directory, "dataset_info.json")
        if not tf.io.gfile.exists(path):
            return None
        try:
            with tf.io.gfile.GFile(path) as f:
                info = json.load(f)
            for split in info.get("splits", []):
                counts = [int(n) for n in split.get("shardLengths", [])]
                split_files = [os.path.join(directory, f"{info['name']}-{split['name']}.tfrecord-"
                                                       f"{i:05d}-of-{len(counts):05d}")
                               for i in range(len(counts))]
                lengths.update(zip(split_files, counts))
                sizes[tuple(split_files)] = int(split.get("numBytes", -1))
        except (ValueError, KeyError, TypeError):
            return None
    if not all(f in lengths for f in files):
        return None
    wanted = set(files)
    for split_files, num_bytes in sizes.items():
        if wanted & set(split_files):
            if not wanted >= set(split_files):
                continue  # a subset of a split: sizes per shard are not recorded
            if sum(tf.io.gfile.stat(f).length for f in split_files) != num_bytes:
                return None
    return sum(lengths[f] for f in files)


def per_replica_batch_size(global_batch_size: int, input_context: tf.distribute.InputContext | None) -> int:
    if global_batch_size < 1:
        raise ValueError(f"global_batch_size must be >= 1. Received: global_batch_size={global_batch_size}")
    if input_context is None:
        return global_batch_size
    if global_batch_size % input_context.num_replicas_in_sync:
        raise ValueError(
            f"global_batch_size={global_batch_size} is not divisible by the "
            f"{input_context.num_replicas_in_sync} replicas in sync; choose a multiple."
        )
    return input_context.get_per_replica_batch_size(global_batch_size)


def pipeline_seed(seed: int | None, input_context: tf.distribute.InputContext | None) -> int | None:
    """Distinct but reproducible seed per input pipeline."""
    if seed is None:
        return None
    return seed + 1000003 * (input_context.input_pipeline_id if input_context else 0)


def records(
    file_pattern: str,
    *,
    is_training: bool,
    input_context: tf.distribute.InputContext | None = None,
    deterministic: bool = False,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Serialized records of ``file_pattern``, sharded for this input pipeline.

    An unsharded eval stream carries its length (``cardinality()``) when the TFDS metadata beside
    the files records it, so progress bars and ``model.evaluate`` know the total.
    """
    files = list_files(file_pattern)
    ds = tf.data.Dataset.from_tensor_slices(files)
    shard_records = False
    sharded = input_context is not None and input_context.num_input_pipelines > 1
    if sharded:
        if len(files) >= input_context.num_input_pipelines:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        else:
            shard_records = True
    if is_training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, buffer_size=8 << 20),
        cycle_length=min(len(files), 16),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    if shard_records:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if not is_training and not sharded:
        count = known_record_count(files)
        if count is not None:
            ds = ds.apply(tf.data.experimental.assert_cardinality(count))
    return ds


def parse_records(ds: tf.data.Dataset, task: str) -> tf.data.Dataset:
    """Serialized ``tf.train.Example`` → the standard element ``{"encoded", "name", "label"|"mask"}``."""
    spec = schema.parse_spec(task)

    def parse(serialized):
        p = tf.io.parse_single_example(serialized, spec)
        out = {"encoded": p[schema.IMAGE_ENCODED], "name": schema.record_name(p)}
        if schema.holds_class_label(task):
            out["label"] = p[schema.CLASS_LABEL]
        else:
            out["mask"] = p[schema.MASK_ENCODED]
        return out

    return ds.map(parse, num_parallel_calls=AUTOTUNE)


# TFDS datasets whose element spec we translate: feature names and the raw → train-id table.
TFDS_SOURCES = {
    "imagenet2012": {"image": "image", "label": "label"},
    "cityscapes/semantic_segmentation": {"image": "image_left", "mask": "segmentation_label", "lut": cityscapes.LABEL_ID_TO_TRAIN_ID},
    "cityscapes/semantic_segmentation_extra": {"image": "image_left", "mask": "segmentation_label", "lut": cityscapes.LABEL_ID_TO_TRAIN_ID},
    "scene_parse150": {"image": "image", "mask": "annotation", "lut": ade20k.RAW_TO_TRAIN_ID},
}  # fmt: skip


def tfds_source(
    tfds_name: str,
    *,
    task: str,
    split: str | None,
    data_dir: str | None,
    is_training: bool,
    input_context: tf.distribute.InputContext | None,
    seed: int | None,
) -> tf.data.Dataset:
    """A prepared TFDS dataset read from a local ``data_dir`` (never downloads) in the standard element form."""
    import tensorflow_datasets as tfds

    base = tfds_name.split(":")[0]
    if base.startswith("voc"):
        raise DataError(
            f"TFDS {tfds_name!r} holds detection boxes, not segmentation masks; convert VOCdevkit (+SBD) "
            "with keras-wideresnet-create-tfrecords --dataset=voc instead."
        )
    source = TFDS_SOURCES.get(base, {"image": "image", "label": "label"})
    if schema.holds_class_label(task) == ("mask" in source):
        raise DataError(f"TFDS dataset {tfds_name!r} cannot feed a {task} pipeline; supported: {sorted(TFDS_SOURCES)}.")
    split = split or ("train" if is_training else "validation")
    read_config = tfds.ReadConfig(
        input_context=input_context, shuffle_seed=seed, interleave_cycle_length=16,
        num_parallel_calls_for_interleave_files=AUTOTUNE,
    )  # fmt: skip
    decoders = {source["image"]: tfds.decode.SkipDecoding()}
    if "mask" in source:
        decoders[source["mask"]] = tfds.decode.SkipDecoding()
    try:
        builder = tfds.builder(tfds_name, data_dir=data_dir, try_gcs=False)
        ds = builder.as_dataset(split=split, shuffle_files=is_training, read_config=read_config, decoders=decoders)
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError, ValueError) as e:
        raise DataError(
            f"TFDS dataset {tfds_name!r} split {split!r} is not available in data_dir={data_dir!r} ({e}). "
            "Prepare it there first (downloads are never started by the pipelines)."
        ) from e
    lut = tf.constant(source["lut"], tf.int32) if "lut" in source else None

    def convert(ex):
        name = ex["file_name"] if "file_name" in ex else (ex["image_id"] if "image_id" in ex else tf.constant(""))
        out = {"encoded": ex[source["image"]], "name": name}
        if schema.holds_class_label(task):
            out["label"] = tf.cast(ex[source["label"]], tf.int64)
        else:
            out["mask"] = ex[source["mask"]]
            out["mask_lut"] = lut
        return out

    return ds.map(convert, num_parallel_calls=AUTOTUNE)


def element_source(task: str, file_pattern: str, *, is_training: bool, repeat: bool,
                   input_context: tf.distribute.InputContext | None, deterministic: bool,
                   seed: int | None, shuffle_buffer_size: int, tfds_name: str | None = None,
                   tfds_split: str | None = None, tfds_data_dir: str | None = None) -> tf.data.Dataset:
    """Standard elements from our TFRecords or a local TFDS copy: sharded, shuffled (training)
    and repeated; shared by the classification and segmentation pipelines."""
    if tfds_name:
        ds = tfds_source(tfds_name, task=task, split=tfds_split, data_dir=tfds_data_dir,
                         is_training=is_training, input_context=input_context, seed=seed)
    else:
        ds = records(file_pattern, is_training=is_training, input_context=input_context,
                     deterministic=deterministic, seed=seed)
        ds = parse_records(ds, task)
    if is_training:
        ds = ds.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    return ds.repeat() if repeat else ds


def apply_options(ds: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_optimization.map_parallelization = True
    options.experimental_optimization.parallel_batch = True
    return ds.with_options(options)


def with_seeds(ds: tf.data.Dataset, seed: int | None, num_streams: int = 4) -> tf.data.Dataset:
    """Zips ``num_streams`` stateless-op seed pairs (int64 ``[num_streams, 2]``) to every element:
    augmentation is reproducible given ``seed``, and no per-element seed splitting is needed."""
    seeds = tf.data.Dataset.random(seed=seed).batch(2 * num_streams)
    return tf.data.Dataset.zip((ds, seeds.map(lambda s: tf.reshape(s, [num_streams, 2]))))


def resolve_defaults(is_training: bool, repeat: bool | None, drop_remainder: bool | None) -> tuple[bool, bool]:
    return (is_training if repeat is None else repeat), (is_training if drop_remainder is None else drop_remainder)
