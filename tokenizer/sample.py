"""The training sample: a deterministic, seeded share of the documents, streamed.

A document is in the sample when a seeded hash of its text falls under ``sample_bytes / total
bytes`` of the hash range, so the sample holds about ``sample_bytes`` of text whatever the order
or number of parts, and the same text with the same seed always gives the same sample. Two
passes over the documents: one adds up their bytes, the other streams the chosen ones to the
trainer in batches; neither holds more than one batch, so memory does not grow with the sample.
Identical documents are in or out together (dedup has usually removed them by then).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

#: One document: its text blocks in order (images left out).
Document = list[str]
#: Batches of documents; called once per pass, it must give the same documents each time.
DocumentBatches = Callable[[], Iterator[list[Document]]]

HASH_RANGE = 1 << 64


def document_hash(blocks: Document, seed: int) -> int:
    h = xxhash.xxh3_64(seed=seed)
    for block in blocks:
        h.update(block.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.intdigest()


def document_bytes(blocks: Document) -> int:
    return sum(len(b.encode("utf-8", "surrogatepass")) for b in blocks)


@dataclass
class Sample:
    """The chosen documents, streamed as batches of text blocks; the figures fill in as it streams."""

    batches: DocumentBatches
    sample_bytes: int
    seed: int
    total_bytes: int = 0
    total_documents: int = 0
    fraction: float = 1.0
    documents: int = 0
    bytes: int = 0
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)

    def plan(self) -> Sample:
        """First pass: the total size, and the share of it to take (again when called again)."""
        self.total_documents = self.total_bytes = 0
        for batch in self.batches():
            self.total_documents += len(batch)
            self.total_bytes += sum(document_bytes(d) for d in batch)
        self.fraction = min(1.0, self.sample_bytes / self.total_bytes) if self.total_bytes else 1.0
        return self

    def texts(self) -> Iterator[list[str]]:
        """Second pass: the text blocks of the chosen documents, a batch at a time."""
        limit = int(self.fraction * HASH_RANGE)
        for batch in self.batches():
            out = []
            for doc in batch:
                if self.fraction < 1.0 and document_hash(doc, self.seed) >= limit:
                    continue
                self.documents += 1
                for block in doc:
                    data = block.encode("utf-8", "surrogatepass")
                    self.bytes += len(data)
                    self._hash.update(len(data).to_bytes(8, "little"))
                    self._hash.update(data)
                out.extend(doc)
            if out:
                yield out

    @property
    def sha256(self) -> str:
        """The hash of the sample's text, block by block in order (after :meth:`texts` ran)."""
        return self._hash.hexdigest()


def table_documents(texts: Iterable[list[str | None] | None]) -> list[Document]:
    """Documents from a ``texts`` column (Loom's record): the non-null, non-empty blocks."""
    return [[t for t in blocks if t] for blocks in texts if blocks and any(blocks)]


FILE_SUFFIXES = (".parquet", ".jsonl", ".txt")


def _file_batches(path: Path, rows: int) -> Iterator[list[Document]]:
    if path.suffix == ".parquet":
        f = pq.ParquetFile(path)
        names = f.schema_arrow.names
        column = "texts" if "texts" in names else "text" if "text" in names else None
        if column is None:
            raise ValueError(f"{path}: a parquet file needs a `texts` (Loom documents) or `text` column")
        for batch in f.iter_batches(batch_size=rows, columns=[column]):
            values = batch.column(0)
            if column == "texts":
                yield table_documents(values.to_pylist())
            else:
                yield [[t] for t in pc.drop_null(values).to_pylist() if t]
    elif path.suffix == ".jsonl":
        batch: list[Document] = []
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip() and (text := json.loads(line).get("text")):
                    batch.append([text])
                if len(batch) >= rows:
                    yield batch
                    batch = []
        if batch:
            yield batch
    elif path.suffix == ".txt":
        text = path.read_text(encoding="utf-8")
        if text:
            yield [[text]]
    else:
        raise ValueError(f"{path}: not a text file ({', '.join(FILE_SUFFIXES)})")


def file_documents(paths: Iterable[Path], rows: int = 1024) -> DocumentBatches:
    """Documents of files and folders: Loom document parquet (``texts``), parquet with a ``text``
    column, JSON lines with ``text``, or ``.txt`` (a file is one document). Folders are read
    recursively, files in sorted order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in FILE_SUFFIXES))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    files = [
        f for f in files if not f.name.endswith(".ledger.parquet") and not f.name.endswith(".blocks.parquet")
    ]
    if not files:
        raise ValueError("no input files (.parquet, .jsonl or .txt)")

    def batches() -> Iterator[list[Document]]:
        for f in files:
            yield from _file_batches(f, rows)

    return batches
