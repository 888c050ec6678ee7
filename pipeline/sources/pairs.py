"""Image–text pair tables (LAION, COYO, DataComp, CC3M) → ``pair`` documents.

Reading (:func:`read_pair_batches`) yields raw batches — URL, caption bytes, an optional row id and
where the row came from — from Parquet, CSV/TSV or JSONL, local or ``s3://``, with the column names of
the source (or of its preset). :class:`PairsToDocuments` is the stage that makes each row a ``pair``
document, the image first and its caption after; a row with an empty or non-UTF-8 caption or a URL
that cannot be fetched is marked with its reason and reaches the removal ledger.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.config import PairsSource, is_remote
from pipeline.schema import DOC_SCHEMA, DROP_REASON, doc_id, empty_meta
from pipeline.sources.paths import split_query
from pipeline.stage import Resources
from pipeline.storage import filesystem_from_uri

RAW_PAIR_SCHEMA = pa.schema(
    [
        (
            "url",
            pa.binary(),
        ),  # bytes until the stage decodes them: a bad one is a dropped row, not a failed file
        ("caption", pa.binary()),
        ("row_id", pa.binary()),
        ("location", pa.string()),  # <file name>:<row number>
    ]
)

MAX_URL_CHARS = 2048
_URL_RE = re.compile(r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$", re.IGNORECASE)
_BLOCK_BYTES = 8 << 20


def pair_format(path: str, src: PairsSource) -> str:
    """The table format of ``path``: the source's (or its preset's) unless ``auto``, else the extension."""
    fmt = src.setting("format")
    if fmt != "auto":
        return fmt
    name = split_query(path)[0].lower().removesuffix(".gz")
    for ext, guessed in ((".parquet", "parquet"), (".csv", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl")):
        if name.endswith(ext):
            return guessed
    if name.endswith(".json"):
        return "jsonl"
    raise ValueError(f"{path}: cannot tell the table format from the name; set `format` in the source")


def _open_input(path: str, fmt: str) -> Any:
    seekable = fmt == "parquet"  # parquet reads its footer first
    if is_remote(path):
        fs, p = filesystem_from_uri(path)
        return fs.open_input_file(p) if seekable else fs.open_input_stream(p)
    return pa.OSFile(path, "rb") if seekable else pa.input_stream(path)


def read_pair_batches(path: str, src: PairsSource, batch_rows: int, counts: Counter) -> Iterator[pa.Table]:
    """Raw batches (``RAW_PAIR_SCHEMA``) of one table file; unparsable lines are counted as ``bad_row``."""
    fmt = pair_format(path, src)
    url_col, cap_col = src.setting("url_column"), src.setting("caption_column")
    id_col = src.setting("id_column")
    wanted = [c for c in (url_col, cap_col, id_col) if c]
    name = posixpath.basename(split_query(path)[0])  # ids stay the same wherever the table is kept
    start = 0
    for batch in _read_columns(path, fmt, src, wanted, batch_rows, counts):
        n = batch.num_rows
        check_columns(path, wanted, batch.column_names)
        yield pa.table(
            {
                "url": _binary(batch[url_col]),
                "caption": _binary(batch[cap_col]),
                "row_id": _binary(batch[id_col]) if id_col else pa.nulls(n, pa.binary()),
                "location": pa.array([f"{name}:{start + i}" for i in range(n)], pa.string()),
            },
            schema=RAW_PAIR_SCHEMA,
        )
        start += n
    counts["rows"] += start


def _binary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as bytes: strings as their UTF-8, numbers (COYO's ids) as their text."""
    if pa.types.is_binary(column.type):
        return column
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    return column.cast(pa.binary())


def check_columns(path: str, wanted: list[str], names: list[str]) -> None:
    """A table without a wanted column fails its part with the columns it does have."""
    if missing := [c for c in wanted if c not in names]:
        raise ValueError(f"{path}: no column {missing[0]!r} (columns: {', '.join(names)})")


def _read_columns(
    path: str, fmt: str, src: PairsSource, wanted: list[str], batch_rows: int, counts: Counter
) -> Iterator[pa.Table]:
    if fmt == "parquet":
        with _open_input(path, fmt) as f:
            pf = pq.ParquetFile(f)
            check_columns(path, wanted, pf.schema_arrow.names)
            for rb in pf.iter_batches(batch_size=batch_rows, columns=wanted):
                yield pa.Table.from_batches([rb])
        return
    if fmt in ("csv", "tsv"):
        yield from _read_csv(path, fmt, src, wanted, batch_rows, counts)
        return
    yield from _read_jsonl(path, wanted, batch_rows, counts)


def _read_csv(
    path: str, fmt: str, src: PairsSource, wanted: list[str], batch_rows: int, counts: Counter
) -> Iterator[pa.Table]:
    header = src.setting("header")
    columns = src.setting("columns")
    if not header and not columns:
        raise ValueError(f"{path}: a table without a header needs `columns`")

    def bad_row(row: pacsv.InvalidRow) -> str:
        counts["bad_row"] += 1
        return "skip"

    read = pacsv.ReadOptions(
        column_names=None if header else columns, block_size=_BLOCK_BYTES, encoding="utf8"
    )
    parse = pacsv.ParseOptions(
        delimiter="\t" if fmt == "tsv" else ",",
        quote_char=False if fmt == "tsv" else '"',  # TSV exports (CC3M) do not quote captions
        newlines_in_values=fmt == "csv",
        invalid_row_handler=bad_row,
    )
    # Captions are read as bytes: a non-UTF-8 caption is one dropped row, not a failed file.
    convert = pacsv.ConvertOptions(
        column_types={c: pa.binary() for c in wanted},
        include_columns=wanted,
        include_missing_columns=False,
    )
    if header:  # check the header first, so a missing column is named with the columns there are
        quiet = pacsv.ParseOptions(
            delimiter=parse.delimiter,
            quote_char=parse.quote_char,
            newlines_in_values=parse.newlines_in_values,
            invalid_row_handler=lambda row: "skip",
        )
        with _open_input(path, fmt) as f:
            check_columns(
                path, wanted, pacsv.open_csv(f, read_options=read, parse_options=quiet).schema.names
            )
    with _open_input(path, fmt) as f:
        reader = pacsv.open_csv(f, read_options=read, parse_options=parse, convert_options=convert)
        for rb in reader:
            table = pa.Table.from_batches([rb])
            for off in range(0, table.num_rows, batch_rows):
                yield table.slice(off, batch_rows)


def _read_jsonl(path: str, wanted: list[str], batch_rows: int, counts: Counter) -> Iterator[pa.Table]:
    rows: list[dict[str, Any]] = []
    with _open_input(path, "jsonl") as f:
        for line in _lines(f):
            if not line.strip():
                continue
            try:
                obj = json.loads(line.decode("utf-8", "surrogateescape").removeprefix("\ufeff"))
            except json.JSONDecodeError:
                counts["bad_row"] += 1
                continue
            if not isinstance(obj, dict):
                counts["bad_row"] += 1
                continue
            rows.append({c: _as_bytes(obj.get(c)) for c in wanted})
            if len(rows) == batch_rows:
                yield _binary_table(rows, wanted)
                rows = []
    if rows:
        yield _binary_table(rows, wanted)


def _lines(f: Any) -> Iterator[bytes]:
    rest = b""
    while chunk := f.read(_BLOCK_BYTES):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _as_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.encode("utf-8", "surrogateescape")  # undecodable input bytes come back as they were


def _binary_table(rows: list[dict[str, Any]], wanted: list[str]) -> pa.Table:
    return pa.table({c: pa.array([r[c] for r in rows], pa.binary()) for c in wanted})


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def url_problem(url: str | None) -> str | None:
    """Why an image URL cannot be fetched (``bad_url``), or None."""
    if not url:
        return "empty"
    if len(url) > MAX_URL_CHARS:
        return f"longer than {MAX_URL_CHARS} characters"
    if not _URL_RE.match(url):
        return "not an absolute http(s) URL"
    return None


class PairsToDocuments:
    """Raw pair rows → ``pair`` documents: ``texts = [None, caption]``, ``images = [image, None]``."""

    name = "pairs"
    resources = Resources(cpus=1)

    def __init__(self, source: str, max_caption_chars: int = 4096, long_captions: str = "drop"):
        self.source = source
        self.max_chars = max_caption_chars
        self.cut_long = long_captions == "cut"
        self.captions_cut = 0  # captions cut to max_caption_chars so far (the step reports it per part)

    def __call__(self, batch: pa.Table) -> pa.Table:
        docs = [self._document(row) for row in batch.to_pylist()]
        return pa.Table.from_pylist(docs, schema=_MARKED_SCHEMA)

    def _document(self, row: dict[str, Any]) -> dict[str, Any]:
        reason = detail = caption = None
        raw_url = row["url"] or b""
        url = raw_url.decode("utf-8", "replace").strip()  # a URL that is not UTF-8 is dropped below
        row_id = row["row_id"].decode("utf-8", "replace") if row["row_id"] is not None else None
        key = doc_id(self.source, url, row_id or row["location"])
        try:
            caption = (row["caption"] or b"").decode("utf-8").strip()
        except UnicodeDecodeError as err:
            reason, detail = "caption_not_utf8", f"{row['location']}: {err.reason} at byte {err.start}"
        if reason is None and not caption:
            reason, detail = "empty_caption", row["location"]
        if reason is None and caption and len(caption) > self.max_chars:
            if self.cut_long:
                cut = caption[: self.max_chars]
                caption = (cut.rsplit(None, 1)[0] if " " in cut.strip() else cut).rstrip()
                self.captions_cut += 1
            else:
                reason = "caption_too_long"
                detail = f"{row['location']}: {len(caption):,} characters > {self.max_chars:,}"
                caption = ""  # the ledger keeps the reason; nobody carries 10 MB further
        if reason is None and not _is_utf8(raw_url):
            reason, detail = "bad_url", f"{row['location']}: not UTF-8"
        if reason is None and (problem := url_problem(url)):
            reason, detail = "bad_url", f"{row['location']}: {problem}"
        image = {"url": url, "sha256": None, "width": None, "height": None, "alt": None}
        return {
            "id": key,
            "source": self.source,
            "kind": "pair",
            "url": url,
            "texts": [None, caption or ""],
            "images": [image, None],
            "meta": empty_meta(),
            DROP_REASON: reason,
            "_drop_detail": detail,
        }


_MARKED_SCHEMA = DOC_SCHEMA.append(pa.field(DROP_REASON, pa.string())).append(
    pa.field("_drop_detail", pa.string())
)
