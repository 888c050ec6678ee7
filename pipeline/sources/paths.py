"""Input file lists: local globs and object-store globs, each file once, in a stable order."""

from __future__ import annotations

import fnmatch
import glob

import pyarrow.fs as pafs

from pipeline.config import is_remote


def expand_paths(patterns: list[str]) -> list[str]:
    """Local globs (sorted, ``**`` recursive) and ``s3://`` globs over one prefix, each file once."""
    files: list[str] = []
    for pattern in patterns:
        if not is_remote(pattern):
            files.extend(sorted(glob.glob(pattern, recursive=True)))
        elif any(ch in pattern.rsplit("?", 1)[0] for ch in "*?["):
            files.extend(_remote_glob(pattern))
        else:
            files.append(pattern)
    return list(dict.fromkeys(files))


def _remote_glob(pattern: str) -> list[str]:
    uri, _, query = pattern.partition("?")
    scheme, _, rest = uri.partition("://")
    fixed = rest.split("*")[0].split("[")[0]
    base = fixed.rsplit("/", 1)[0]
    fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{base}" + (f"?{query}" if query else ""))
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    found = sorted(i.path for i in infos if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, rest))
    return [f"{scheme}://{p}" + (f"?{query}" if query else "") for p in found]
