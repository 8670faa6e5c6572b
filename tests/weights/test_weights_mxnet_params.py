"""The pure-NumPy MXNet ``.params`` reader and the md5 table (docs/architecture.md §5.3–§5.4).

``fixtures/*.params`` were written by real MXNet 1.9.1 (``make_mxnet_fixtures.py``), which
saves the V2 NDArray encoding only. The legacy (2016-era) and V1 encodings, and V3, are
produced here byte by byte with :func:`encode_params`, a small writer that follows MXNet's
``NDArray::Save``/``LegacySave`` layouts; the writer itself is validated by reproducing
MXNet's V2 fixture file byte for byte.
"""

import hashlib
import os
import shutil
import struct

import numpy as np
import pytest

from keras_wideresnet.weights import (
    PUBLISHED_MD5,
    ParamsFormatError,
    file_md5,
    parse_params,
    parse_release_name,
    read_params,
    verify_md5,
)
from keras_wideresnet.weights.mxnet_params import DTYPES

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
CLS_PARAMS = os.path.join(FIXTURES, "cls_rna-a1_cls10.params")
SEG_PARAMS = os.path.join(FIXTURES, "seg_rna-a1_cls5_s8.params")
MAGIC = {"v1": 0xF993FAC8, "v2": 0xF993FAC9, "v3": 0xF993FACA}
FLAGS = {np.dtype(t): f for f, t in DTYPES.items()}


def encode_ndarray(a: np.ndarray, encoding: str) -> bytes:
    """One dense CPU NDArray in the given encoding."""
    shape, flag = a.shape, FLAGS[a.dtype]
    ctx_dtype = struct.pack("<iii", 1, 0, flag)  # dev_type 1 (cpu), dev_id 0, type flag
    data = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
    if encoding in ("v2", "v3"):
        head = struct.pack("<Iii", MAGIC[encoding], 0, len(shape))  # magic, stype dense, ndim
        return head + struct.pack(f"<{len(shape)}q", *shape) + ctx_dtype + data
    if encoding == "v1":
        head = struct.pack("<II", MAGIC["v1"], len(shape))
        return head + struct.pack(f"<{len(shape)}q", *shape) + ctx_dtype + data
    assert encoding == "legacy"  # the first word is ndim, dims are uint32
    return struct.pack(f"<I{len(shape)}I", len(shape), *shape) + ctx_dtype + data


def encode_params(arrays: dict, encoding: str) -> bytes:
    """An ``mx.nd.save``-style dict file: list magic, reserved, arrays, then keys."""
    out = [struct.pack("<QQQ", 0x112, 0, len(arrays))]
    out += [encode_ndarray(a, encoding) for a in arrays.values()]
    out.append(struct.pack("<Q", len(arrays)))
    for key in arrays:
        raw = key.encode()
        out.append(struct.pack("<Q", len(raw)) + raw)
    return b"".join(out)


def test_reads_mxnet_written_fixture_with_ademxapp_names():
    params = read_params(CLS_PARAMS)
    args = [k for k in params if k.startswith("arg:")]
    auxs = [k for k in params if k.startswith("aux:")]
    # docs/architecture.md §5.2: 43 convs, 37 BNs → 119 arg + 74 aux in a classification file.
    assert (len(args), len(auxs)) == (119, 74)
    assert params["arg:conv1a_weight"].shape == (2, 3, 3, 3)  # 64 / 32 filters, RGB input
    assert params["arg:res6a_branch2a_weight"].shape == (16, 32, 1, 1)
    assert params["arg:linear10_weight"].shape == (10, 128)
    assert params["aux:bn7_moving_var"].shape == (128,)
    assert all(a.dtype == np.float16 for a in params.values())
    seg = read_params(SEG_PARAMS)
    assert len(seg) == 121 + 74 and seg["arg:conv6a_weight"].shape == (8, 64, 3, 3)
    assert seg["arg:linear5_bias"].dtype == np.float32


def test_writer_reproduces_mxnet_v2_file_byte_for_byte():
    for path in (CLS_PARAMS, SEG_PARAMS):
        with open(path, "rb") as f:
            assert encode_params(read_params(path), "v2") == f.read()


@pytest.mark.parametrize("encoding", ["legacy", "v1", "v3"])
def test_legacy_v1_v3_encodings_read_like_v2(encoding):
    reference = read_params(SEG_PARAMS)
    decoded = parse_params(encode_params(reference, encoding))
    assert list(decoded) == list(reference)
    for key, array in reference.items():
        assert decoded[key].dtype == array.dtype and decoded[key].shape == array.shape
        np.testing.assert_array_equal(decoded[key], array)


@pytest.mark.parametrize("encoding", ["legacy", "v1", "v2"])
def test_every_dtype_flag(encoding):
    rng = np.random.default_rng(0)
    arrays = {f"arg:x{flag}": (rng.normal(size=(2, 3)) * 50).astype(dtype)
              for flag, dtype in DTYPES.items()}
    decoded = parse_params(encode_params(arrays, encoding))
    for key, array in arrays.items():
        assert decoded[key].dtype == array.dtype
        np.testing.assert_array_equal(decoded[key], array)


def _corrupt(data: bytes, what: str) -> bytes:
    if what == "truncated":
        return data[:-7]
    if what == "trailing":
        return data + b"\0"
    if what == "list_magic":
        return struct.pack("<Q", 0x113) + data[8:]
    if what == "dtype":  # the first array's type flag (after 24 header + 4+4+4 + 4*8 + 8 bytes)
        offset = 24 + 12 + 4 * 8 + 8
        return data[:offset] + struct.pack("<i", 42) + data[offset + 4:]
    if what == "sparse":
        return data[:28] + struct.pack("<i", 1) + data[32:]
    raise AssertionError(what)


@pytest.mark.parametrize("what,message", [
    ("truncated", "file ends"), ("trailing", "trailing bytes"), ("list_magic", "bad list magic"),
    ("dtype", "unknown dtype flag 42"), ("sparse", "sparse storage type 1")])
def test_corrupt_files_give_clear_errors(tmp_path, what, message):
    with open(CLS_PARAMS, "rb") as f:
        data = _corrupt(f.read(), what)
    path = tmp_path / "broken.params"
    path.write_bytes(data)
    with pytest.raises(ParamsFormatError, match=message) as info:
        read_params(path)
    assert "broken.params" in str(info.value) and "md5" in str(info.value)


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="docs/weights.md"):
        read_params(tmp_path / "nope.params")


def test_published_md5_table_and_release_names():
    assert len(PUBLISHED_MD5) == 6
    assert PUBLISHED_MD5["ilsvrc-cls_rna-a1_cls1000_ep-0001.params"] == \
        "ff21f45d6bf03284100dcbec571edfad"
    parsed = {name: parse_release_name(name) for name in PUBLISHED_MD5}
    assert [(p.variant, p.classes, p.output_stride) for p in parsed.values()] == [
        ("a", 1000, None), ("a1", 1000, None), ("a1", 21, 8), ("a1", 21, 8), ("a1", 19, 8),
        ("a1", 150, 8)]
    assert parse_release_name("/x/resnet38.params") is None


def test_md5_is_checked_for_known_release_names(tmp_path):
    assert file_md5(CLS_PARAMS) == hashlib.md5(open(CLS_PARAMS, "rb").read()).hexdigest()
    assert verify_md5(CLS_PARAMS) is None  # not a published name: nothing to check
    fake = tmp_path / "voc_rna-a1_cls21_s8_ep-0001.params"
    shutil.copy(CLS_PARAMS, fake)
    with pytest.raises(ValueError, match="a34628a63d5f62dcb98c29c4e281f332.*download it again"):
        verify_md5(fake)
