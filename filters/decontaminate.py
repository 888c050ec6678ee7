"""Decontamination: text that quotes an evaluation set does not go into the training data.

A model trained on a benchmark's questions and answers scores well on that benchmark for the wrong
reason. GPT-3 (Brown et al. 2020, appendix C) removed training text that shares a 13-word n-gram with
an evaluation item; 13 words is the default here too. This stage does the same, with dedup's
normalisation of words (:func:`pipeline.dedup.minhash.shingle_hashes`): text is lowercased,
punctuation, symbols and whitespace separate words, each Han or kana character is a word, and each
run of ``ngram`` words is one 64-bit hash. So "The Wend River?" and "the wend, river" are the same
three words.

**The evaluation set** (:class:`NgramIndex`). Each file of ``[filters.decontaminate] paths`` is
read by its name: ``.jsonl`` / ``.ndjson`` (gzipped too: ``.jsonl.gz``), ``.parquet``, or ``.txt``
(``.txt.gz``), one item per line. A JSONL line or parquet row is one item; its text is the
``fields`` it has (strings, numbers or lists of them), joined with a newline, so n-grams run from a
question into its answer. An item is named in the ledger by ``(file, id)``: the file's name (its
path as configured when two files share a name) and the row's ``id_field``, or its row number
counted from 1 (a JSONL or text file's line number). An item of fewer than ``min_words`` words
(at least ``ngram``, by default ``ngram``) is skipped and counted: it has no n-gram to match.

The index holds only a sorted ``uint64`` array of the items' distinct n-gram hashes and a parallel
``int32`` array of their item numbers: 12 bytes per n-gram, 12 MB per million, plus the item names
for the ledger. It loads on a stage's first batch, once per worker process.

**Matching.** The n-grams of a whole batch are hashed in one compiled pass, sorted, and looked up
with one ``np.searchsorted`` (sorted queries walk the index in order: about ten times faster than
random ones): no Python code runs per word or n-gram. Measured on 2 cores, generated English prose:
11 M words/s against 613k n-grams, 4 M words/s against 6.6M (docs/FILTERS.md). A text of fewer
than ``ngram`` words has no n-gram (dedup gives it one shingle of all its words, which is not
looked up), so it never matches. One shared n-gram makes a match; the ledger names the item with
the most shared n-grams (ties: the first item read) and says how many items matched.

**What goes** (``mode``):

* ``document`` (the default): the document is dropped, reason ``decontaminate``, detail
  ``{"file", "item", "ngrams", "items"}``; its text is its text blocks joined, so a quote is found
  across blocks and images;
* ``blocks``: each paragraph (text split at blank lines, as the node rules split it) of a matching
  ``text`` or ``interleaved`` document is judged on its own, and the paragraphs that match are
  removed, each a block-ledger row ``decontaminate`` whose detail adds the ``block`` position and
  the first 60 characters (``text``). A text block left empty is removed with its position, so
  ``texts`` and ``images`` stay aligned (:func:`filters.base.edit_blocks`); a document left with
  nothing is dropped as ``no_text_left``. A quote that runs across a paragraph boundary is found
  by its n-grams inside one paragraph only. A ``pair`` is dropped whole: its caption is its text.

Counter ``decontaminate_ngrams``: the document n-grams looked up. The size of the evaluation set
(files, items used and skipped, n-grams) is logged when it loads.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters.base import BLOCK_SEP, block_texts, edit_blocks, mark_drops
from filters.config import DecontaminateConfig
from filters.text import paragraphs
from pipeline.dedup.minhash import shingle_hashes
from pipeline.stage import Resources

log = logging.getLogger(__name__)

#: The ledger reason of a document or paragraph removed for quoting an evaluation item.
REASON = "decontaminate"

#: Items hashed per call of the compiled shingler while an evaluation file is read.
_CHUNK_ITEMS = 8192

Format = Literal["jsonl", "parquet", "text"]


class EvalSetError(ValueError):
    """An evaluation file that cannot be used: missing, unreadable, of an unknown format, or with no
    item long enough. The message is one line; ``jobs.spec`` prefixes the key."""


def eval_format(path: str | Path) -> Format:
    """The format of an evaluation file, by its name."""
    name = Path(path).name.lower()
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".txt", ".txt.gz")):
        return "text"
    raise EvalSetError(
        f"{path}: unknown format (an evaluation file is .jsonl, .parquet or .txt; .jsonl.gz and .txt.gz too)"
    )


def _text_of(value: Any) -> str | None:
    """The text of one field value: a string, a number, or a list of them (joined by newlines)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        parts = [t for t in map(_text_of, value) if t]
        return "\n".join(parts) if parts else None
    return None


def row_text(row: dict[str, Any], fields: Sequence[str]) -> str:
    """An item's text: the ``fields`` the row has, in the configured order, joined by newlines."""
    return "\n".join(t for t in (_text_of(row.get(f)) for f in fields) if t)


def _open_text(path: Path) -> IO[str]:
    """A text or JSONL file, gzipped or not; a UTF-8 byte-order mark is not part of the first item."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def read_items(
    path: str | Path, fields: Sequence[str], id_field: str | None = None
) -> Iterator[tuple[str, str]]:
    """Every item of an evaluation file as ``(id, text)``; the id is ``id_field``'s value, or the row
    number counted from 1 (the line number of a text or JSONL file). Raises :class:`EvalSetError`."""
    path = Path(path)
    fmt = eval_format(path)
    if not path.exists():
        raise EvalSetError(f"not found: {path}")
    if not path.is_file():
        raise EvalSetError(f"{path}: not a file")
    try:
        if fmt == "parquet":
            yield from _parquet_items(path, fields, id_field)
            return
        with _open_text(path) as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                if fmt == "text":
                    yield str(number), line.rstrip("\r\n")
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise EvalSetError(f"{path}: line {number}: not JSON: {err.msg}") from None
                if not isinstance(row, dict):
                    raise EvalSetError(f"{path}: line {number}: not a JSON object")
                item_id = row.get(id_field) if id_field else None
                yield (str(number) if item_id is None else str(item_id)), row_text(row, fields)
    except UnicodeDecodeError as err:
        raise EvalSetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except (OSError, EOFError) as err:
        raise EvalSetError(f"{path}: cannot be read: {_one_line(err)}") from None


def _parquet_items(path: Path, fields: Sequence[str], id_field: str | None) -> Iterator[tuple[str, str]]:
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise EvalSetError(f"{path}: not a parquet file: {_one_line(err)}") from None
    names = file.schema_arrow.names
    present = [f for f in fields if f in names]
    if not present:
        raise EvalSetError(
            f"{path}: none of the fields {', '.join(fields)} is a column (it has: {', '.join(names)})"
        )
    columns = [*present, *([id_field] if id_field in names and id_field not in present else [])]
    number = 0
    try:
        for batch in file.iter_batches(columns=columns, batch_size=_CHUNK_ITEMS):
            for row in batch.to_pylist():
                number += 1
                item_id = row.get(id_field) if id_field else None
                yield (str(number) if item_id is None else str(item_id)), row_text(row, present)
    except (pa.ArrowException, OSError) as err:
        raise EvalSetError(f"{path}: cannot be read: {_one_line(err)}") from None


def _chunks(
    items: Iterable[tuple[str, str]], size: int = _CHUNK_ITEMS
) -> Iterator[tuple[list[str], list[str]]]:
    ids: list[str] = []
    texts: list[str] = []
    for item_id, text in items:
        ids.append(item_id)
        texts.append(text)
        if len(texts) == size:
            yield ids, texts
            ids, texts = [], []
    if texts:
        yield ids, texts


@dataclass(frozen=True)
class FileSummary:
    """What one evaluation file gave: items used, items skipped (too short), n-grams."""

    label: str
    items: int
    skipped: int
    ngrams: int


@dataclass(frozen=True)
class Match:
    """A text's match: the item (an index into :attr:`NgramIndex.names`) with which it shares the
    most distinct n-grams, how many, and with how many items it shares one."""

    item: int
    ngrams: int
    items: int


def file_labels(paths: Sequence[str]) -> list[str]:
    """How the ledger names each file: its name, or its path as configured when names repeat."""
    names = [Path(p).name for p in paths]
    return [name if names.count(name) == 1 else p for name, p in zip(names, paths, strict=True)]


class NgramIndex:
    """The n-gram hashes of an evaluation set: ``hashes`` (sorted ``uint64``) and, parallel, the
    ``int32`` index of the item each comes from in ``names`` (``(file, item id)``). A hash shared by
    several items appears once per item; an item's repeated n-gram once."""

    def __init__(
        self,
        hashes: np.ndarray,
        items: np.ndarray,
        names: list[tuple[str, str]],
        ngram: int,
        files: Sequence[FileSummary] = (),
    ):
        self.hashes = hashes
        self.items = items
        self.names = names
        self.ngram = ngram
        self.files = list(files)

    @classmethod
    def read(
        cls,
        paths: Sequence[str],
        fields: Sequence[str],
        id_field: str | None = None,
        ngram: int = 13,
        min_words: int | None = None,
    ) -> NgramIndex:
        """Read and hash the evaluation files (no cache; :func:`load_index` is the cached way)."""
        min_words = ngram if min_words is None else min_words
        if min_words < ngram:
            raise ValueError(f"min_words ({min_words}) must be at least ngram ({ngram})")
        names: list[tuple[str, str]] = []
        hash_parts: list[np.ndarray] = []
        item_parts: list[np.ndarray] = []
        files = []
        for path, label in zip(paths, file_labels(paths), strict=True):
            used = skipped = ngrams = 0
            for ids, texts in _chunks(read_items(path, fields, id_field)):
                hashes, offsets, words = shingle_hashes(pa.array(texts, pa.string()), ngram)
                keep = words >= min_words
                counts = np.diff(offsets).astype(np.int64)
                owner = np.repeat(np.arange(len(texts)), counts)
                mine = keep[owner]
                # kept items are numbered on from the ones before: names[base + k] is the k-th kept
                numbers = np.cumsum(keep) - 1 + len(names)
                hash_parts.append(hashes[mine])
                item_parts.append(numbers[owner[mine]].astype(np.int32))
                names.extend((label, ids[i]) for i in np.flatnonzero(keep))
                used += int(keep.sum())
                skipped += int(len(texts) - keep.sum())
                ngrams += int(mine.sum())
            files.append(FileSummary(label, used, skipped, ngrams))
        if len(names) >= 2**31:
            raise ValueError(f"{len(names):,} evaluation items: more than an int32 numbers")
        hashes = np.concatenate(hash_parts) if hash_parts else np.zeros(0, np.uint64)
        items = np.concatenate(item_parts) if item_parts else np.zeros(0, np.int32)
        del hash_parts, item_parts
        order = np.lexsort((items, hashes))  # by hash, then item
        hashes, items = hashes[order], items[order]
        del order
        if len(hashes):
            distinct = np.ones(len(hashes), bool)
            distinct[1:] = (hashes[1:] != hashes[:-1]) | (items[1:] != items[:-1])
            if not distinct.all():
                hashes, items = hashes[distinct], items[distinct]
        return cls(hashes, items, names, ngram, files)

    @property
    def nbytes(self) -> int:
        """Bytes of the two arrays (the item names not counted)."""
        return int(self.hashes.nbytes + self.items.nbytes)

    def __len__(self) -> int:
        """The number of items."""
        return len(self.names)

    def summary(self) -> str:
        per_file = "; ".join(
            f"{f.label}: {f.items:,} items ({f.skipped:,} too short), {f.ngrams:,} n-grams"
            for f in self.files
        )
        return (
            f"{len(self):,} items, {len(self.hashes):,} distinct {self.ngram}-grams, "
            f"{self.nbytes / 1e6:.1f} MB ({per_file})"
        )

    def lookup(self, texts: pa.Array | Sequence[str]) -> tuple[dict[int, Match], int]:
        """The texts that share an n-gram with an item: ``{text index: Match}``; and the number of
        n-grams looked up. A text of fewer than ``ngram`` words is not looked up."""
        if not isinstance(texts, pa.Array | pa.ChunkedArray):
            texts = pa.array(texts, pa.string())
        if not len(texts) or not len(self.hashes):
            return {}, 0
        hashes, offsets, words = shingle_hashes(texts, self.ngram)
        owner = np.repeat(np.arange(len(texts)), np.diff(offsets).astype(np.int64))
        full = words[owner] >= self.ngram  # a short text's one shingle is not an n-gram
        if not full.all():
            hashes, owner = hashes[full], owner[full]
        # sorted queries walk the index in order: ~10x faster than random binary searches
        order = np.argsort(hashes)
        hashes, owner = hashes[order], owner[order]
        pos = np.searchsorted(self.hashes, hashes)
        hit = self.hashes[np.minimum(pos, len(self.hashes) - 1)] == hashes
        if not hit.any():
            return {}, len(hashes)
        found, owner, lo = hashes[hit], owner[hit], pos[hit]
        # every index entry of each found hash (one per item holding it)
        lengths = np.searchsorted(self.hashes, found, side="right") - lo
        starts = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)
        entries = starts + np.arange(int(lengths.sum()))
        text, item, found = np.repeat(owner, lengths), self.items[entries], np.repeat(found, lengths)
        # distinct (text, item, n-gram), then n-grams per (text, item)
        order = np.lexsort((found, item, text))
        text, item, found = text[order], item[order], found[order]
        new = np.ones(len(text), bool)
        new[1:] = (text[1:] != text[:-1]) | (item[1:] != item[:-1]) | (found[1:] != found[:-1])
        text, item = text[new], item[new]
        group = np.ones(len(text), bool)
        group[1:] = (text[1:] != text[:-1]) | (item[1:] != item[:-1])
        starts_at = np.flatnonzero(group)
        g_text, g_item = text[starts_at], item[starts_at]
        g_count = np.diff(np.append(starts_at, len(text)))
        # per text: the item with the most n-grams, the first item on a tie
        best = np.lexsort((g_item, -g_count, g_text))
        matches: dict[int, Match] = {}
        per_text = Counter(g_text.tolist())
        for k in best.tolist():
            t = int(g_text[k])
            if t not in matches:
                matches[t] = Match(int(g_item[k]), int(g_count[k]), per_text[t])
        return matches, len(hashes)

    def detail(self, match: Match, **more: Any) -> str:
        """The ledger detail of a match: the file, the item id, the shared n-grams, the items matched."""
        file, item = self.names[match.item]
        body = {"file": file, "item": item, "ngrams": match.ngrams, "items": match.items, **more}
        return json.dumps(body, ensure_ascii=False, sort_keys=True)


@lru_cache(maxsize=2)
def _load(
    paths: tuple[str, ...], fields: tuple[str, ...], id_field: str | None, ngram: int, min_words: int
) -> NgramIndex:
    index = NgramIndex.read(paths, fields, id_field, ngram, min_words)
    log.info("decontaminate: %s", index.summary())
    return index


def load_index(cfg: DecontaminateConfig) -> NgramIndex:
    """The evaluation set of ``cfg``, read once per process for the same settings."""
    return _load(tuple(cfg.paths), tuple(cfg.fields), cfg.id_field, cfg.ngram, cfg.item_min_words)


def check_eval_file(path: str, cfg: DecontaminateConfig) -> FileSummary:
    """Read one evaluation file as the stage will, without keeping its n-grams: raises
    :class:`EvalSetError` when it is missing, unreadable, of an unknown format, or has no item of at
    least ``min_words`` words in ``fields``."""
    min_words = cfg.item_min_words
    used = skipped = ngrams = 0
    for _, texts in _chunks(read_items(path, cfg.fields, cfg.id_field)):
        _, _, words = shingle_hashes(pa.array(texts, pa.string()), cfg.ngram)
        keep = words >= min_words
        used, skipped = used + int(keep.sum()), skipped + int(len(texts) - keep.sum())
        ngrams += int((words[keep] - cfg.ngram + 1).sum())
    if not used:
        where = "line" if eval_format(path) == "text" else f"item with text in {', '.join(cfg.fields)}"
        raise EvalSetError(
            f"{path}: no {where} of at least {min_words} words ({skipped:,} shorter), nothing to match"
        )
    return FileSummary(os.path.basename(path), used, skipped, ngrams)


def joined_texts(table: pa.Table) -> pa.Array:
    """Each document's text blocks joined by a blank line (image positions add separators only),
    computed in Arrow."""
    texts = table["texts"].combine_chunks()
    values = pc.fill_null(texts.values, "")
    return pc.binary_join(pa.ListArray.from_arrays(texts.offsets, values), BLOCK_SEP)


class Decontaminate:
    """Stage ``decontaminate``: drops the documents (or, ``mode = "blocks"``, removes the paragraphs)
    that share a word n-gram with an item of the evaluation set (see the module docstring). Usable
    on its own: ``Decontaminate(cfg)(table)`` on a table of documents."""

    name = "decontaminate"
    resources = Resources(cpus=1)

    def __init__(self, cfg: DecontaminateConfig):
        self.cfg = cfg
        self.counters: Counter = Counter()

    def index(self) -> NgramIndex:
        return load_index(self.cfg)

    def __call__(self, table: pa.Table) -> pa.Table:
        if not self.cfg.paths or not table.num_rows:
            return table
        index = self.index()
        matches, looked_up = index.lookup(joined_texts(table))
        self.counters["decontaminate_ngrams"] += looked_up
        if not matches:
            return table
        if self.cfg.mode == "blocks":
            return self._remove_paragraphs(table, index, matches)
        reasons: list[str | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        for r, match in matches.items():
            reasons[r], details[r] = REASON, index.detail(match)
        log.debug("decontaminate: %d of %d documents match", len(matches), table.num_rows)
        return mark_drops(table, reasons, details)

    def _remove_paragraphs(self, table: pa.Table, index: NgramIndex, matches: dict[int, Match]) -> pa.Table:
        """``mode = "blocks"``: the matching paragraphs of the matched documents go; a pair goes whole."""
        kinds = table["kind"].to_pylist()
        blocks = block_texts(table)
        reasons: list[str | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        where: list[tuple[int, int, int]] = []  # (row, block, paragraph) of each paragraph looked up
        paras: list[str] = []
        split: dict[tuple[int, int], list[str]] = {}
        for r, match in matches.items():
            if kinds[r] == "pair":
                reasons[r], details[r] = REASON, index.detail(match)
                continue
            for i, block in enumerate(blocks[r]):
                if block:
                    split[r, i] = paragraphs(block)
                    where.extend((r, i, k) for k in range(len(split[r, i])))
                    paras.extend(split[r, i])
        found, _ = index.lookup(paras)
        texts = [list(doc) for doc in blocks]
        removed: list[list[tuple[str, str]]] = [[] for _ in blocks]
        gone: dict[tuple[int, int], set[int]] = {}
        for j in sorted(found):
            r, i, k = where[j]
            gone.setdefault((r, i), set()).add(k)
            text = paras[j].strip()[:60]
            removed[r].append((REASON, index.detail(found[j], block=i, text=text)))
        for (r, i), ks in gone.items():
            kept = [p for k, p in enumerate(split[r, i]) if k not in ks]
            texts[r][i] = "\n\n".join(kept)
        if gone:
            log.debug("decontaminate: %d paragraphs removed from %d documents", len(found), len(matches))
            table = edit_blocks(table, texts, removed)
        if any(reasons):
            table = mark_drops(table, reasons, details)
        return table
