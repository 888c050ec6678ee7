"""The output root: a local folder or an object store, through ``pyarrow.fs``.

Writes are atomic where the filesystem allows it: local files go to a temporary name and are renamed;
object stores publish a whole object on close. Completion markers are always written last.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import os
import posixpath
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.config import is_remote


@dataclass(frozen=True)
class Storage:
    """Paths relative to one output root. Picklable, so Ray workers get it as an argument."""

    root: str

    @functools.cached_property
    def _fs_and_base(self) -> tuple[pafs.FileSystem, str]:
        if is_remote(self.root):
            fs, base = pafs.FileSystem.from_uri(self.root)
            return fs, base
        return pafs.LocalFileSystem(), os.path.abspath(self.root.removeprefix("file://"))

    @property
    def is_local(self) -> bool:
        return isinstance(self._fs_and_base[0], pafs.LocalFileSystem)

    def uri(self, rel: str = "") -> str:
        """A user-facing location for ``rel`` (a local path or a URI)."""
        if self.is_local:
            return os.path.join(self._fs_and_base[1], rel) if rel else self._fs_and_base[1]
        root, query = self.root.partition("?")[::2]  # s3://b/p?endpoint_override=… keeps its query last
        full = posixpath.join(root.rstrip("/"), rel) if rel else root
        return f"{full}?{query}" if query else full

    def _full(self, rel: str) -> str:
        return posixpath.join(self._fs_and_base[1], rel) if rel else self._fs_and_base[1]

    def exists(self, rel: str) -> bool:
        fs, _ = self._fs_and_base
        return fs.get_file_info(self._full(rel)).type != pafs.FileType.NotFound

    def is_empty(self) -> bool:
        fs, base = self._fs_and_base
        info = fs.get_file_info(base)
        if info.type == pafs.FileType.NotFound:
            return True
        return not fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))

    def list(self, rel_dir: str, suffix: str = "") -> list[str]:
        """Names (not paths) of the files directly in ``rel_dir`` ending in ``suffix``, sorted."""
        fs, _ = self._fs_and_base
        infos = fs.get_file_info(pafs.FileSelector(self._full(rel_dir), allow_not_found=True))
        names = [posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.File]
        return sorted(n for n in names if n.endswith(suffix) and not n.startswith("."))

    def _publish(self, rel: str, fill: Callable[[BinaryIO], object]) -> None:
        """Write ``rel`` with ``fill(stream)``: via a temporary name and a rename on local disk."""
        fs, _ = self._fs_and_base
        full = self._full(rel)
        if self.is_local:  # object stores need no folders (pyarrow would write marker objects)
            fs.create_dir(posixpath.dirname(full), recursive=True)
            tmp = posixpath.join(posixpath.dirname(full), f".{posixpath.basename(full)}.tmp")
            with open(tmp, "wb") as f:
                fill(f)
            os.replace(tmp, full)
        else:
            with fs.open_output_stream(full) as f:
                fill(f)

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._publish(rel, lambda f: f.write(data))

    def put_file(self, local_path: str, rel: str) -> None:
        """Copy a finished local file to ``rel`` (atomically on local disk, an upload otherwise)."""

        def copy(dst: BinaryIO) -> None:
            with open(local_path, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)

        self._publish(rel, copy)

    def read_bytes(self, rel: str) -> bytes:
        fs, _ = self._fs_and_base
        with fs.open_input_stream(self._full(rel)) as f:
            return f.read()

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def write_parquet(self, rel: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self.write_bytes(rel, buf.getvalue())

    def write_parquet_groups(self, rel: str, table: pa.Table, column: str) -> None:
        """Write ``table`` (sorted by ``column``) with one row group per value of ``column``, so that a
        reader filtering on it reads only that group."""
        buf = io.BytesIO()
        with pq.ParquetWriter(buf, table.schema, compression="zstd") as writer:
            if not table.num_rows:
                writer.write_table(table)
            values = table[column].to_numpy()
            if len(values) < 2 or bool(np.all(values[1:] >= values[:-1])):  # sorted: slice the runs
                starts = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1).tolist(), len(values)]
                for start, stop in itertools.pairwise(starts):
                    if stop > start:
                        writer.write_table(table.slice(start, stop - start))
            else:
                for value in pc.unique(table[column]).to_pylist():
                    writer.write_table(table.filter(pc.equal(table[column], value)))
        self.write_bytes(rel, buf.getvalue())

    def read_parquet(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        fs, _ = self._fs_and_base
        return pq.read_table(self._full(rel), filesystem=fs, columns=columns)

    def read_parquets(
        self, rels: list[str], columns: list[str] | None = None, where: pc.Expression | None = None
    ) -> pa.Table:
        """Rows of several parquet files (of one schema) that match ``where``, reading only ``columns``."""
        fs, _ = self._fs_and_base
        dataset = pads.dataset([self._full(r) for r in rels], format="parquet", filesystem=fs)
        return dataset.to_table(columns=columns, filter=where)

    def read_groups(self, rel: str, column: str, value: int) -> pa.Table:
        """The row groups of one parquet file (written by :meth:`write_parquet_groups`) whose
        ``column`` can hold ``value``, by the groups' statistics: a reader of one group of many
        files opens them one at a time and holds only what it reads."""
        fs, _ = self._fs_and_base
        with fs.open_input_file(self._full(rel)) as f:
            pf = pq.ParquetFile(f)
            meta = pf.metadata
            leaf = next(j for j in range(meta.num_columns) if meta.schema.column(j).path == column)
            groups = []
            for i in range(meta.num_row_groups):
                stats = meta.row_group(i).column(leaf).statistics
                if stats is None or not stats.has_min_max or stats.min <= value <= stats.max:
                    groups.append(i)
            return pf.read_row_groups(groups) if groups else pf.schema_arrow.empty_table()

    def delete_dir(self, rel_dir: str) -> None:
        """Remove a folder and everything under it, if it is there."""
        fs, _ = self._fs_and_base
        fs.delete_dir_contents(self._full(rel_dir), missing_dir_ok=True)
        if self.exists(rel_dir):
            fs.delete_dir(self._full(rel_dir))

    def delete(self, rel: str) -> None:
        """Remove one file if it is there."""
        fs, _ = self._fs_and_base
        if self.exists(rel):
            fs.delete_file(self._full(rel))
