"""Where each sample's members lie in a shard: one pass over the tar headers, no member read.

A webdataset shard is a plain tar whose members ``<key>.<part>`` follow each other sample by
sample. :func:`scan` reads the 512-byte headers of a mapped shard (ustar, with the pax and GNU long
name extensions Python's ``tarfile`` writes) and returns, per sample, the byte range of each part;
a reader then slices only the members it needs. It is what lets the loader skip to the ``n``-th
sample of a shard without reading the images before it.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field

BLOCK = 512


class ShardError(ValueError):
    """A shard that is not a well-formed tar of samples; the message names the shard."""


@dataclass
class Sample:
    key: str
    parts: dict[str, tuple[int, int]] = field(default_factory=dict)  # part → (offset, size)


def _number(field: bytes) -> int:
    if field[:1] == b"\x80":  # GNU base-256, for sizes past 8 GiB
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip()
    return int(digits, 8) if digits else 0


def _header(header: bytes, pos: int, shard: str) -> tuple[int, bytes]:
    """The size and type of the member whose header is at ``pos``, its checksum checked."""
    try:
        size, checksum = _number(header[124:136]), _number(header[148:156])
    except ValueError:
        raise ShardError(f"{shard}: not a tar: no valid header at byte {pos:,}") from None
    if checksum != sum(header[:148]) + 256 + sum(header[156:]):  # the checksum field counts as spaces
        raise ShardError(f"{shard}: not a tar, or damaged: bad header checksum at byte {pos:,}")
    return size, header[156:157]


def _pax(records: bytes) -> dict[str, str]:
    out, pos = {}, 0
    while pos < len(records):
        length = int(records[pos : records.index(b" ", pos)])
        key, _, value = records[records.index(b" ", pos) + 1 : pos + length - 1].partition(b"=")
        out[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def scan(data: mmap.mmap | bytes, shard: str) -> list[Sample]:
    """The samples of the tar in ``data``, in file order, each with its parts' byte ranges.
    Members are grouped by key (the name up to the first dot of its base name), as webdataset does."""
    samples: list[Sample] = []
    pos, end = 0, len(data)
    long_name: str | None = None
    while True:
        if pos + BLOCK > end:  # no end-of-archive block: the file was cut at a member boundary
            raise ShardError(f"{shard}: truncated: it ends at byte {end:,} without the end-of-archive block")
        header = data[pos : pos + BLOCK]
        if header.count(0) == BLOCK:
            break
        name = header[0:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if header[257:262] == b"ustar" and header[345] != 0:
            name = header[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape") + "/" + name
        size, kind = _header(header, pos, shard)
        start = pos + BLOCK
        if start + size > end:
            raise ShardError(
                f"{shard}: truncated: member {name!r} needs {start + size:,} bytes, the file has {end:,}"
            )
        pos = start + -(-size // BLOCK) * BLOCK
        if kind == b"x":  # pax header of the next member
            try:
                long_name = _pax(bytes(data[start : start + size])).get("path", long_name)
            except ValueError:
                raise ShardError(f"{shard}: damaged pax header at byte {start - BLOCK:,}") from None
            continue
        if kind == b"L":  # GNU long name of the next member
            long_name = bytes(data[start : start + size]).rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        if long_name is not None:
            name, long_name = long_name, None
        if kind not in (b"0", b"\0", b"7"):  # directories, links, global headers: not sample parts
            continue
        base = name.rsplit("/", 1)[-1]
        key, dot, part = base.partition(".")
        if not dot:
            raise ShardError(f"{shard}: member {name!r} has no part name (expected <key>.<part>)")
        if not samples or samples[-1].key != key:
            samples.append(Sample(key))
        samples[-1].parts[part] = (start, size)
    return samples
