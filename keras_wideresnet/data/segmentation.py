"""Semantic-segmentation input pipeline and eval inversion (docs/architecture.md §7.3, §7.5).

Training (ademxapp ``FileIter._read``): rescale so the longer side is ``U[0.7, 1.3]·origin_size`` (or
the image's own longer side), crop ``crop_size`` (the window may extend past the image; padding is
the RGB mean for the image and ``ignore_label`` for the label), random flip, normalise.
Eval: resize the longer side to ``eval_size``, place the image top-left on a canvas padded to a
multiple of ``pad_multiple`` (zeros = mean after normalisation), and carry the original-resolution
label plus ``image_info`` so that ``invert_eval_preprocessing`` maps predictions back.
"""

from __future__ import annotations

import math

import tensorflow as tf

from keras_wideresnet.data import augment, reader

AUTOTUNE = tf.data.AUTOTUNE


def _decode_pair(element, ignore_label: int):
    image = augment.decode_rgb(element["encoded"])
    label = tf.io.decode_png(element["mask"], channels=0)[:, :, :1]  # 1- or 3-channel index PNG
    label = tf.cast(label, tf.int32)
    if "mask_lut" in element:  # TFDS sources store raw ids
        label = tf.gather(element["mask_lut"], label)
        label = tf.where(label < 0, ignore_label, label)
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.shape(label)[:2]))
    tf.debugging.Assert(same, ["image and mask sizes differ in record", element["name"]])
    return image, label


def _check_labels(label, name, num_classes: int | None, ignore_label: int):
    if num_classes is None:
        return
    valid = tf.where(tf.equal(label, ignore_label), 0, label)
    tf.debugging.Assert(
        tf.reduce_max(valid) < num_classes, ["mask value outside [0, num_classes) in record", name]
    )


def _train_pair(image, label, seeds, crop_size, scale_range, origin_size, ignore_label):
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    longer = tf.cast(tf.maximum(h, w), tf.float32)
    lo, hi = scale_range
    if origin_size:
        target = tf.random.stateless_uniform(
            [], seeds[0], int(math.floor(lo * origin_size)), int(math.floor(hi * origin_size)) + 1, tf.int32
        )
        rate = tf.cast(target, tf.float32) / longer
    else:
        rate = tf.random.stateless_uniform([], seeds[0], lo, hi)
    cs = tf.maximum(1, tf.cast(crop_size / rate, tf.int32))  # crop side in original pixels

    def offset(size, s):
        low, high = tf.minimum(0, size - cs), tf.maximum(0, size - cs)
        return tf.random.stateless_uniform([], s, low, high + 1, tf.int32)

    y0, x0 = offset(h, seeds[1]), offset(w, seeds[2])
    iy0, ix0 = tf.maximum(y0, 0), tf.maximum(x0, 0)
    iy1, ix1 = tf.minimum(y0 + cs, h), tf.minimum(x0 + cs, w)
    paddings = [[iy0 - y0, y0 + cs - iy1], [ix0 - x0, x0 + cs - ix1], [0, 0]]
    crop = tf.cast(image[iy0:iy1, ix0:ix1], tf.float32) - augment.MEAN_RGB_255
    crop = tf.pad(crop, paddings)  # zero after mean subtraction = mean colour
    lab = tf.pad(label[iy0:iy1, ix0:ix1], paddings, constant_values=ignore_label)
    crop = tf.image.resize(crop, [crop_size, crop_size], method="bilinear", antialias=True)
    lab = tf.image.resize(lab, [crop_size, crop_size], method="nearest")
    flip = augment.random_flip(seeds[3])
    crop = tf.where(flip, tf.image.flip_left_right(crop), crop)
    lab = tf.where(flip, tf.image.flip_left_right(lab), lab)
    image_out = crop / augment.STD_RGB_255
    return tf.ensure_shape(image_out, [crop_size, crop_size, 3]), tf.ensure_shape(lab[:, :, 0], [crop_size, crop_size])


def eval_pair(image, label, eval_size, pad_multiple):
    """Eval transform (docs/architecture.md §7.5): longer side → ``eval_size``, normalised, top-left on
    a canvas padded to a multiple of ``pad_multiple``; returns (canvas, {label, image_info}). Shared with serving."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    if eval_size:
        scale = eval_size / tf.maximum(hf, wf)
        sh = tf.maximum(1, tf.cast(tf.round(hf * scale), tf.int32))
        sw = tf.maximum(1, tf.cast(tf.round(wf * scale), tf.int32))
        scaled = tf.image.resize(image, [sh, sw], method="bilinear", antialias=True)
    else:
        sh, sw = h, w
        scaled = tf.cast(image, tf.float32)
    ph = (sh + pad_multiple - 1) // pad_multiple * pad_multiple
    pw = (sw + pad_multiple - 1) // pad_multiple * pad_multiple
    canvas = tf.pad(augment.normalize(scaled), [[0, ph - sh], [0, pw - sw], [0, 0]])
    shf, swf = tf.cast(sh, tf.float32), tf.cast(sw, tf.float32)
    image_info = tf.stack([[hf, wf], [shf, swf], [shf / hf, swf / wf], [0.0, 0.0]])
    return canvas, {"label": label[:, :, 0], "image_info": image_info}


def _check_crop_args(scale_range: tuple[float, float], crop_size: int, pad_multiple: int) -> None:
    """Rejects an empty or non-positive rescale range and non-positive crop or pad sizes."""
    if not 0 < scale_range[0] <= scale_range[1]:
        raise ValueError(f"scale_range must satisfy 0 < min <= max. Received: scale_range={scale_range}")
    if crop_size < 1 or pad_multiple < 1:
        raise ValueError(f"crop_size and pad_multiple must be >= 1. Received: {crop_size}, {pad_multiple}")


def _train_batches(ds: tf.data.Dataset, seed: int | None, batch_size: int, drop_remainder: bool,
                   deterministic: bool, crop_size: int, scale_range: tuple[float, float],
                   origin_size: int | None, ignore_label: int, num_classes: int | None) -> tf.data.Dataset:
    """Training records: per-element seeds, decode + random rescale/crop/flip, fixed-size batches."""
    ds = reader.with_seeds(ds, seed)

    def transform(element, element_seeds):
        image, label = _decode_pair(element, ignore_label)
        _check_labels(label, element["name"], num_classes, ignore_label)
        return _train_pair(image, label, element_seeds, crop_size, scale_range, origin_size, ignore_label)

    ds = ds.map(transform, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    return ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)


def _eval_batches(ds: tf.data.Dataset, batch_size: int, drop_remainder: bool, deterministic: bool,
                  eval_size: int | None, pad_multiple: int, ignore_label: int,
                  num_classes: int | None) -> tf.data.Dataset:
    """Eval records: decode + resize onto the padded canvas, batches padded to the batch maximum."""

    def transform_eval(element):
        image, label = _decode_pair(element, ignore_label)
        _check_labels(label, element["name"], num_classes, ignore_label)
        return eval_pair(image, label, eval_size, pad_multiple)

    ds = ds.map(transform_eval, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    return ds.padded_batch(
        batch_size,
        padded_shapes=([None, None, 3], {"label": [None, None], "image_info": [4, 2]}),
        padding_values=(0.0, {"label": ignore_label, "image_info": 0.0}),
        drop_remainder=drop_remainder,
    )


def segmentation_dataset(
    file_pattern: str,
    *,
    is_training: bool,
    global_batch_size: int,
    crop_size: int = 504,
    scale_range: tuple[float, float] = (0.7, 1.3),
    origin_size: int | None = None,
    eval_size: int | None = None,
    pad_multiple: int = 8,
    ignore_label: int = 255,
    num_classes: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    deterministic: bool = False,
    seed: int | None = None,
    drop_remainder: bool | None = None,
    repeat: bool | None = None,
    tfds_name: str | None = None,
    tfds_split: str | None = None,
    tfds_data_dir: str | None = None,
    shuffle_buffer_size: int = 1000,
) -> tf.data.Dataset:
    """Segmentation batches (docs/architecture.md §7.3 training, §7.5 eval).

    Training yields ``(image float32 [b, crop, crop, 3], label int32 [b, crop, crop])`` with
    ``ignore_label`` in padded areas. Eval yields ``(image float32 [b, Hp, Wp, 3], {"label": int32
    [b, Hl, Wl], "image_info": float32 [b, 4, 2]})``: the canvas is padded to a multiple of
    ``pad_multiple``, labels keep their original resolution padded with ``ignore_label`` to the
    batch maximum, and ``image_info`` = [[orig_h, orig_w], [scaled_h, scaled_w], [scale_y, scale_x],
    [offset_y, offset_x]] (Model Garden convention).

    Args:
      crop_size: training crop side (paper: 504 = 500 made divisible by 8).
      scale_range: random rescale range of the longer side (paper: 0.7–1.3).
      origin_size: reference longer side for the rescale (paper Cityscapes: 2048); None = each
        image's own longer side.
      eval_size: eval longer side (paper VOC/ADE20K: 500; Cityscapes: native); None = original size.
      num_classes: if given, mask values outside ``[0, num_classes)`` (other than ignore) raise an
        error naming the record.
    """
    _check_crop_args(scale_range, crop_size, pad_multiple)
    batch_size = reader.per_replica_batch_size(global_batch_size, input_context)
    repeat, drop_remainder = reader.resolve_defaults(is_training, repeat, drop_remainder)
    seed = reader.pipeline_seed(seed, input_context)
    ds = reader.element_source(
        "segmentation", file_pattern, is_training=is_training, repeat=repeat, input_context=input_context,
        deterministic=deterministic, seed=seed, shuffle_buffer_size=shuffle_buffer_size,
        tfds_name=tfds_name, tfds_split=tfds_split, tfds_data_dir=tfds_data_dir)
    if is_training:
        ds = _train_batches(ds, seed, batch_size, drop_remainder, deterministic, crop_size, scale_range,
                            origin_size, ignore_label, num_classes)
    else:
        ds = _eval_batches(ds, batch_size, drop_remainder, deterministic, eval_size, pad_multiple,
                           ignore_label, num_classes)
    ds = ds.prefetch(AUTOTUNE)
    return reader.apply_options(ds, deterministic)


def invert_eval_preprocessing(
    logits_or_probs: tf.Tensor,
    image_info: tf.Tensor,
    *,
    output_stride: int | None = None,
    method: str = "bilinear",
) -> tf.Tensor:
    """Maps eval-canvas predictions back to original label resolution (docs/architecture.md §7.5).

    Args:
      logits_or_probs: ``[b, h, w, C]`` (or ``[h, w, C]``) predictions for the padded canvas, at
        the canvas resolution or at ``output_stride`` (e.g. 8: the ResNet38Segmenter logits).
      image_info: ``[b, 4, 2]`` (or ``[4, 2]``) from ``segmentation_dataset(is_training=False)``.
      output_stride: canvas pixels per prediction pixel. None infers it as the power of two
        ``2**ceil(log2(max scaled_h / h))``, exact for canvases padded to a multiple of 8.
      method: ``tf.image.resize`` method for the upsampling (paper: bicubic).

    Returns:
      ``[b, Hl, Wl, C]`` float32, Hl/Wl = the batch maximum original size; image i fills the
      top-left ``orig_h_i × orig_w_i`` region (aligned with the padded eval labels), zeros elsewhere.
    """
    single = len(logits_or_probs.shape) == 3
    x = tf.convert_to_tensor(logits_or_probs)
    info = tf.convert_to_tensor(image_info, tf.float32)
    if single:
        x, info = x[None], info[None]
    if len(x.shape) != 4 or tuple(info.shape[-2:]) != (4, 2):
        raise ValueError(
            "invert_eval_preprocessing expects logits [b, h, w, C] and image_info [b, 4, 2]. "
            f"Received: {logits_or_probs.shape} and {image_info.shape}"
        )
    x = tf.cast(x, tf.float32)
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    if output_stride is None:
        ratio = tf.reduce_max(info[:, 1, 0]) / tf.cast(h, tf.float32)
        stride = tf.pow(2.0, tf.math.ceil(tf.math.log(tf.maximum(ratio, 1e-6)) / math.log(2.0)))
        stride = tf.cast(tf.maximum(stride, 1.0), tf.int32)
    else:
        stride = tf.constant(output_stride, tf.int32)
    out_h = tf.cast(tf.reduce_max(info[:, 0, 0]), tf.int32)
    out_w = tf.cast(tf.reduce_max(info[:, 0, 1]), tf.int32)

    def one(args):
        pred, inf = args
        canvas = tf.image.resize(pred, [h * stride, w * stride], method=method)
        sh, sw = tf.cast(inf[1, 0], tf.int32), tf.cast(inf[1, 1], tf.int32)
        oh, ow = tf.cast(inf[0, 0], tf.int32), tf.cast(inf[0, 1], tf.int32)
        region = canvas[:sh, :sw]
        restored = tf.image.resize(region, [oh, ow], method=method, antialias=True)
        return tf.pad(restored, [[0, out_h - oh], [0, out_w - ow], [0, 0]])

    out = tf.map_fn(
        one, (x, info), fn_output_signature=tf.TensorSpec([None, None, x.shape[-1]], tf.float32)
    )
    return out[0] if single else out
