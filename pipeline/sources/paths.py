"""Input file lists: local globs and object-store globs, each file once, in a stable order."""

from __future__ import annotations

import fnmatch
import glob
import os
import re

import pyarrow.fs as pafs

from pipeline.config import is_remote
from pipeline.storage import filesystem_from_uri


def split_query(uri: str) -> tuple[str, str]:
    """``s3://b/k?endpoint_override=…`` → (``s3://b/k``, ``endpoint_override=…``); a ``?`` that starts no
    ``key=value`` query is a glob character and stays."""
    m = re.search(r"\?([\w.-]+=[^/]*)$", uri)
    return (uri[: m.start()], m.group(1)) if m else (uri, "")


def input_size(path: str) -> int | None:
    """The size in bytes of a local or object-store input file (None: not known before reading it,
    as for ``http(s)://``)."""
    if path.startswith(("http://", "https://")):
        return None
    if not is_remote(path):
        return os.path.getsize(path) if os.path.isfile(path) else None
    fs, p = filesystem_from_uri(path)
    info = fs.get_file_info(p)
    return info.size if info.type == pafs.FileType.File else None


def expand_paths(patterns: list[str]) -> list[str]:
    """Local globs (sorted, ``**`` recursive) and object-store globs (``*``, ``?``, ``[...]`` within one
    path segment), each file once, in a stable order."""
    files: list[str] = []
    for pattern in patterns:
        if not is_remote(pattern):
            files.extend(sorted(glob.glob(pattern, recursive=True)))
        elif any(ch in split_query(pattern)[0] for ch in "*?["):
            files.extend(_remote_glob(pattern))
        else:
            files.append(pattern)
    return list(dict.fromkeys(files))


def _remote_glob(pattern: str) -> list[str]:
    uri, query = split_query(pattern)
    scheme, _, rest = uri.partition("://")
    segments = rest.split("/")
    fixed = next(i for i, seg in enumerate(segments) if any(ch in seg for ch in "*?["))
    base = "/".join(segments[:fixed])
    suffix = f"?{query}" if query else ""
    fs, _ = filesystem_from_uri(f"{scheme}://{base}{suffix}")
    infos = fs.get_file_info(
        pafs.FileSelector(base, recursive=len(segments) - fixed > 1, allow_not_found=True)
    )
    found = sorted(
        i.path
        for i in infos
        if i.type == pafs.FileType.File
        and len(parts := i.path.split("/")) == len(segments)
        and all(fnmatch.fnmatchcase(p, seg) for p, seg in zip(parts, segments, strict=True))
    )
    return [f"{scheme}://{p}{suffix}" for p in found]
