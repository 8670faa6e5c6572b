"""Published ademxapp weight files and their md5 sums (docs/architecture.md §5.4, ademxapp
``models/checksum.md5``), plus parsing of the release file names (``iclass/ilsvrc.py``:
``dataset_net_classes[_stride]``)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

# file name → md5, as published in ademxapp `models/checksum.md5` (docs/architecture.md §5.4).
PUBLISHED_MD5: dict[str, str] = {
    "ilsvrc-cls_rna-a_cls1000_ep-0001.params": "2421c1945b6797cecd3f89db14ca73f6",
    "ilsvrc-cls_rna-a1_cls1000_ep-0001.params": "ff21f45d6bf03284100dcbec571edfad",
    "voc_rna-a1_cls21_s8_ep-0001.params": "a34628a63d5f62dcb98c29c4e281f332",
    "voc_rna-a1_cls21_s8_coco_ep-0001.params": "328c0eca0c45b6345ada2f95edce68d4",
    "cityscapes_rna-a1_cls19_s8_ep-0001.params": "226b3e861a6be7d0dc84e537f4eab154",
    "ade20k_rna-a1_cls150_s8_ep-0001.params": "1faf29850bfa194678f0b8e1cbbffa98",
}

_NAME_RE = re.compile(r"(?:^|_)rna-(?P<variant>a1?|a2)_cls(?P<classes>\d+)(?:_s(?P<stride>\d+))?")


@dataclasses.dataclass(frozen=True)
class ReleaseName:
    """What an ademxapp file name says: ``voc_rna-a1_cls21_s8_ep-0001`` → a1, 21, 8."""

    variant: str
    classes: int
    output_stride: int | None  # None: a classification file


def parse_release_name(path: str | os.PathLike) -> ReleaseName | None:
    """Parses ``*_rna-{a,a1}_cls{C}[_s{S}]*``; ``None`` if the name does not follow the scheme."""
    m = _NAME_RE.search(os.path.basename(os.fspath(path)))
    if m is None:
        return None
    stride = m.group("stride")
    return ReleaseName(m.group("variant"), int(m.group("classes")),
                       int(stride) if stride else None)


def file_md5(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: str | os.PathLike) -> str | None:
    """Checks a released file against :data:`PUBLISHED_MD5` (by base name).

    Returns the md5 when the name is known and the sum matches, ``None`` for unknown names
    (nothing to check against). Raises ``ValueError`` on a mismatch.
    """
    name = os.path.basename(os.fspath(path))
    expected = PUBLISHED_MD5.get(name)
    if expected is None:
        return None
    actual = file_md5(path)
    if actual != expected:
        raise ValueError(
            f"md5 of {os.fspath(path)!r} is {actual}, but the published md5 of {name} is "
            f"{expected} (ademxapp models/checksum.md5). The download is corrupt or incomplete, or "
            "the file was modified: download it again (see docs/weights.md). Pass "
            "check_md5=False (CLI: --nocheck_md5) only if you know why it differs.")
    return actual
