"""A pure-NumPy reader for MXNet ``.params`` files (``mx.nd.save`` of a dict), docs/architecture.md §5.3.

No MXNet is needed. The file is little-endian::

    uint64 0x112 (list magic) | uint64 0 (reserved) | uint64 N | N × NDArray
    uint64 N | N × (uint64 len, len bytes of the key)

Each NDArray starts with a ``uint32`` that selects one of the encodings MXNet has used:

* ``0xF993FAC9`` (V2, MXNet ≥ 0.11): ``int32 stype``, shape (``uint32 ndim``, ``int64 dims``),
  then, unless the shape is empty, context (``int32 dev_type, int32 dev_id``), ``int32 dtype``
  and the raw data. ``0xF993FACA`` (V3, numpy-shape semantics) has the same layout with a
  signed ``ndim`` where ``-1`` means "no array".
* ``0xF993FAC8`` (V1): shape (``uint32 ndim``, ``int64 dims``), context, dtype, data.
* anything else (legacy, 2016-era MXNet): the word *is* ``ndim``, followed by ``uint32 dims``,
  context, dtype, data.

Only dense arrays are supported (ademxapp files hold nothing else).
"""

from __future__ import annotations

import os
import struct

import numpy as np

LIST_MAGIC = 0x112
NDARRAY_V1_MAGIC = 0xF993FAC8
NDARRAY_V2_MAGIC = 0xF993FAC9
NDARRAY_V3_MAGIC = 0xF993FACA

# mshadow type flags (docs/architecture.md §5.3).
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8,
          6: np.int64}
_STORAGE_DENSE = 0
_MAX_NDIM = 32  # a sanity bound that catches garbage long before a huge allocation


class ParamsFormatError(ValueError):
    """The file is not a readable MXNet NDArray list."""


class _Reader:
    def __init__(self, data: bytes, path: str):
        self.data = data
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> ParamsFormatError:
        return ParamsFormatError(
            f"{self.path!r} is not a valid MXNet .params file: {what} (at byte {self.pos} of "
            f"{len(self.data)}). Check that the download is complete (compare its md5 with "
            "docs/weights.md) and that it is an `mx.nd.save` file, not a symbol .json.")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"needs {n} more bytes but the file ends")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))

    def u64(self) -> int:
        return self.unpack("Q")[0]


def _read_shape(r: _Reader, ndim: int, dim_fmt: str) -> tuple[int, ...]:
    if ndim > _MAX_NDIM:
        raise r.fail(f"implausible ndim {ndim}")
    dims = r.unpack(dim_fmt * ndim) if ndim else ()
    if any(d < 0 for d in dims):
        raise r.fail(f"negative dimension in shape {dims}")
    return tuple(int(d) for d in dims)


def _read_payload(r: _Reader, shape: tuple[int, ...]) -> np.ndarray:
    _dev_type, _dev_id, type_flag = r.unpack("iii")
    if type_flag not in DTYPES:
        raise r.fail(f"unknown dtype flag {type_flag} (known: {sorted(DTYPES)})")
    dtype = np.dtype(DTYPES[type_flag]).newbyteorder("<")
    count = int(np.prod(shape, dtype=np.int64))
    raw = r.take(count * dtype.itemsize)
    # No copy on little-endian hosts: a read-only view into the file's bytes.
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="),
                                                                  copy=False)


def _read_ndarray(r: _Reader) -> np.ndarray | None:
    """One NDArray in any of the three encodings; ``None`` for an empty ("none") array."""
    (magic,) = r.unpack("I")
    if magic in (NDARRAY_V2_MAGIC, NDARRAY_V3_MAGIC):
        (stype,) = r.unpack("i")
        if stype != _STORAGE_DENSE:
            raise r.fail(f"sparse storage type {stype} is not supported (only dense arrays)")
        (ndim,) = r.unpack("i")
        if magic == NDARRAY_V3_MAGIC:
            if ndim < 0:
                return None
            shape = _read_shape(r, ndim, "q")
        else:
            shape = _read_shape(r, ndim, "q")
            if ndim == 0:
                return None
        return _read_payload(r, shape)
    if magic == NDARRAY_V1_MAGIC:
        (ndim,) = r.unpack("I")
        shape = _read_shape(r, ndim, "q")
    else:  # legacy: the word is ndim and dims are uint32
        shape = _read_shape(r, magic, "I")
    if not shape:
        return None
    return _read_payload(r, shape)


def parse_params(data: bytes, path: str = "<bytes>") -> dict[str, np.ndarray]:
    """Decodes the bytes of a ``.params`` file into ``{key: array}`` (docs/architecture.md §5.3).

    Keys keep their ``arg:``/``aux:`` prefix; ``path`` only names the source in errors.
    """
    r = _Reader(data, path)
    if len(data) < 16:
        raise r.fail("too short for the list header")
    magic, _reserved = r.unpack("QQ")
    if magic != LIST_MAGIC:
        raise r.fail(f"bad list magic {magic:#x} (expected {LIST_MAGIC:#x})")
    n = r.u64()
    if n > len(data):
        raise r.fail(f"implausible array count {n}")
    arrays = [_read_ndarray(r) for _ in range(n)]
    num_keys = r.u64()
    if num_keys == 0 and n:
        raise r.fail(f"{n} arrays but no names; ademxapp files are dicts of named arrays")
    if num_keys != n:
        raise r.fail(f"{n} arrays but {num_keys} names")
    out: dict[str, np.ndarray] = {}
    for array in arrays:
        length = r.u64()
        key = r.take(length).decode("utf-8", errors="replace")
        if key in out:
            raise r.fail(f"duplicate key {key!r}")
        out[key] = array
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} trailing bytes after the last key")
    return out


def read_params(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads an MXNet ``.params`` file into ``{key: np.ndarray}`` (docs/architecture.md §5.3).

    Keys are returned as stored, e.g. ``"arg:conv1a_weight"``, ``"aux:bn7_moving_var"``.
    Empty arrays are returned as ``None``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MXNet params file {path!r} does not exist. Download it from the "
                                "links in docs/weights.md and pass its path.")
    with open(path, "rb") as f:
        data = f.read()
    return parse_params(data, path)


def split_key(key: str) -> tuple[str, str]:
    """``"arg:res2a_branch2a_weight"`` → ``("arg", "res2a_branch2a_weight")``.

    A key without prefix gives ``("", key)``.
    """
    prefix, sep, name = key.partition(":")
    if not sep:
        return "", key
    return prefix, name
