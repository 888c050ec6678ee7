"""Image acquisition in two steps: fetch every distinct URL once, then keep every distinct image once.

**images** — URLs are spread over fetch parts by a hash of the URL, so the copies of one URL — in one
document or in thousands — meet in the same part and are fetched once, with no global list
anywhere. The number of parts follows from the image references the documents step counted
(``images.urls_per_part``), so it is the same on every run of the job. Each part writes, under
``OUT/work/images/``:

- ``<part>.urls.parquet`` — the fetch log: one row per URL with its status (``ok`` or why not), the
  error message, whether a rerun should retry it, its sha256 and how many runs requested it;
- ``<part>.fetched.parquet`` — what it fetched, one row per sha256, each row group holding one
  table bucket (so the next step reads only its bucket). Deleted once the image table is built.

**image_table** — the same images reached through URLs of different fetch parts meet here: table
part ``b`` merges the rows of bucket ``b`` (a hash of the sha256) of every fetch part into
``OUT/work/image_table/table-<b>.parquet``, **one row per distinct image**, keyed by the sha256 of the
downloaded bytes, with the stored (resized, re-encoded) bytes, their format and size, the original
size and every URL that gave these bytes.

A fetch part that is run again — ``loom run --retry-images`` reopens the parts whose log has
retryable failures — keeps every final result of its log and fetches only the retryable failures;
the table parts then merge the new images into the table.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipeline.config import HOW_IMAGES_RUN, ImagesConfig, Source
from pipeline.images.fetch import FETCH_SCHEMA, fetch_urls
from pipeline.runner import Part, PartStats, RayContext, StepResult, marker_path
from pipeline.step import Data, Step
from pipeline.storage import Storage

IMAGES = "images"
IMAGE_TABLE = "image_table"

IMAGE_TABLE_SCHEMA = pa.schema(
    [
        ("sha256", pa.string()),  # of the downloaded bytes: the key
        ("format", pa.string()),  # jpg, png or webp: the encoding of `image`
        ("image", pa.binary()),  # the stored bytes (resized and re-encoded as the job spec says)
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
        ("urls", pa.list_(pa.string())),  # every URL these bytes came from
    ]
)


def table_bucket(sha256: str, buckets: int) -> int:
    """The image-table part of an image."""
    return int(sha256[:12], 16) % buckets


def table_part(bucket: int) -> str:
    return f"table-{bucket:05d}"


def files_holding(storage: Storage, data: Data, shas: list[str]) -> list[str]:
    """The files of ``data`` — written a part per image-table part (``table-<bucket>``), the image
    table itself or the CLIP embeddings — that hold these images, so only those are read."""
    buckets = len([n for n in storage.list(data.folder, ".parquet") if n.startswith("table-")])
    if not buckets or not shas:
        return []
    return [data.path(table_part(b)) for b in sorted({table_bucket(h, buckets) for h in shas})]


def bucket_of(url: str, buckets: int) -> int:
    return xxhash.xxh3_64_intdigest(url.encode("utf-8", "surrogatepass")) % buckets


def fetching_parts(sources: list[Source], doc_parts: list[Part]) -> list[Part]:
    """The documents parts whose images are fetched (their source's ``fetch_images``)."""
    return [p for p in doc_parts if sources[p.args["source"]].fetch_images]


def image_urls(docs: pa.Table) -> pa.Array:
    """The image URLs of a documents table, in order, copies included."""
    if not docs.num_rows:
        return pa.array([], pa.string())
    images = pc.list_flatten(docs["images"])
    return pc.struct_field(images.filter(pc.is_valid(images)), "url")


class ImagesStep(Step):
    """Documents' image URLs → fetch parts → the fetched images and the fetch log.

    ``doc_parts`` are the documents parts whose images are fetched (:func:`fetching_parts`).
    Outputs: ``log`` (one row per URL: status, error, sha256, sizes) and ``fetched`` (the images of
    each fetch part, grouped by image-table bucket, for the ``image_table`` step)."""

    name = IMAGES

    def __init__(self, storage: Storage, doc_parts: list[Part], documents: Data, cfg: ImagesConfig):
        super().__init__(storage, documents=documents)
        self.cfg = cfg
        self.sources = doc_parts
        self._parts: list[Part] | None = None
        self.output("log", "work/{step}/{part}.urls.parquet")
        self.output("fetched", "work/{step}/{part}.fetched.parquet")

    def settings(self) -> dict[str, Any]:
        return {
            "images": self.cfg.model_dump(mode="json", exclude=HOW_IMAGES_RUN),
            "fetching": [p.name for p in self.sources],
        }

    def parts(self) -> list[Part]:
        """Read once, after the documents step (the image_table step asks too)."""
        if self._parts is None:
            self._parts = self._plan()
        return self._parts

    def _plan(self) -> list[Part]:
        refs = 0
        for p in self.sources:  # documents (or filters) counted the image references of every part
            marker = self.storage.read_json(marker_path(self.inputs["documents"].step, p.name))
            refs += marker.get("extra", {}).get("images", 0)
        if not refs:
            return []
        n = max(1, math.ceil(refs / self.cfg.urls_per_part))
        return [Part(f"{IMAGES}-{k:05d}", {"bucket": k, "buckets": n}) for k in range(n)]

    def _urls(self, bucket: int, buckets: int) -> tuple[list[str], int]:
        """The distinct URLs of this bucket (sorted) and how many references they had."""
        refs: Counter = Counter()
        for p in self.sources:
            docs = self.storage.read_parquet(self.inputs["documents"].path(p.name), ["images"])
            for url in image_urls(docs).to_pylist():
                if bucket_of(url, buckets) == bucket:
                    refs[url] += 1
        return sorted(refs), sum(refs.values())

    def run_part(self, part: Part) -> PartStats:
        urls, refs = self._urls(part.args["bucket"], part.args["buckets"])
        before = self._previous(part.name)
        keep = (
            before.filter(pc.invert(before["retryable"]))
            if before is not None
            else FETCH_SCHEMA.empty_table()
        )
        done = set(keep["url"].to_pylist())
        todo = [u for u in urls if u not in done]
        fetched, images = fetch_urls(todo, self.cfg)
        if before is not None:  # count the runs that asked for each URL
            attempts = dict(zip(before["url"].to_pylist(), before["attempts"].to_pylist(), strict=True))
            fetched = fetched.set_column(
                fetched.schema.get_field_index("attempts"),
                "attempts",
                pa.array([attempts.get(u, 0) + 1 for u in fetched["url"].to_pylist()], pa.int32()),
            )
        log = pa.concat_tables([keep, fetched]).sort_by("url")
        staged = self["fetched"].path(part.name)
        table = self._table(
            log, images, self.storage.read_parquet(staged) if before and self.storage.exists(staged) else None
        )
        table = table.append_column(
            "bucket",
            pa.array(
                [table_bucket(h, part.args["buckets"]) for h in table["sha256"].to_pylist()], pa.int32()
            ),
        ).sort_by([("bucket", "ascending"), ("sha256", "ascending")])
        self.storage.write_parquet_groups(staged, table, "bucket")
        # the log last: it says the fetch is whole
        self.storage.write_parquet(self["log"].path(part.name), log)
        statuses = Counter(log["status"].to_pylist())
        ok = statuses.pop("ok", 0)
        return PartStats(
            rows_in=len(urls),
            rows_out=ok,
            drops=statuses,
            skipped=Counter({"duplicate_url": refs - len(urls)} if refs > len(urls) else {}),
            extra={
                "image_refs": refs,
                "requested": len(todo),
                "retryable": int(pc.sum(log["retryable"]).as_py() or 0),
                "fetched_images": table.num_rows,
            },
        )

    def _previous(self, part: str) -> pa.Table | None:
        """The fetch log of an earlier run of this part (reopened for retries, or killed after it)."""
        path = self["log"].path(part)
        return self.storage.read_parquet(path) if self.storage.exists(path) else None

    def _table(self, log: pa.Table, images: pa.Table, before: pa.Table | None) -> pa.Table:
        """One row per sha256: the earlier run's images of this part, then this run's."""
        found = {r["url"]: r for r in log.filter(pc.equal(log["status"], "ok")).to_pylist()}
        sizes = ("width", "height", "original_width", "original_height")
        new = [
            {
                "sha256": found[url]["sha256"],
                "format": self.cfg.format,
                "image": data,
                **{k: found[url][k] for k in sizes},
                "urls": [url],
            }
            for url, data in zip(images["url"].to_pylist(), images["image"].to_pylist(), strict=True)
        ]
        tables = [] if before is None else [before]
        return merge_images([*tables, pa.Table.from_pylist(new, schema=IMAGE_TABLE_SCHEMA)])


def merge_images(tables: list[pa.Table]) -> pa.Table:
    """One row per sha256 (the first row's bytes and sizes), with the URLs of all rows."""
    rows: dict[str, dict[str, Any]] = {}
    for table in tables:
        for r in table.select(IMAGE_TABLE_SCHEMA.names).to_pylist():
            row = rows.setdefault(r["sha256"], {**r, "urls": []})
            row["urls"] = sorted({*row["urls"], *r["urls"]})
    return pa.Table.from_pylist(sorted(rows.values(), key=lambda r: r["sha256"]), schema=IMAGE_TABLE_SCHEMA)


class ImageTableStep(Step):
    """Fetched images of every fetch part → the image table, one row per distinct image
    (output ``table``: ``work/image_table/table-<bucket>.parquet``). Once it is whole, the fetch parts'
    copies of the images go."""

    name = IMAGE_TABLE

    def __init__(self, storage: Storage, images: ImagesStep):
        super().__init__(storage, fetched=images["fetched"])
        self.images = images  # as many table parts as fetch parts
        self.output("table", "work/{step}/{part}.parquet")

    def parts(self) -> list[Part]:
        n = len(self.images.parts())
        return [Part(table_part(b), {"bucket": b, "buckets": n}) for b in range(n)]

    def run(self, ray: RayContext | None) -> StepResult:
        result = super().run(ray)
        fetched = self.inputs["fetched"]
        for name in self.storage.list(fetched.folder, ".fetched.parquet"):
            self.storage.delete(f"{fetched.folder}/{name}")
        return result

    def run_part(self, part: Part) -> PartStats:
        fetched = self.inputs["fetched"]
        staged = [f"{fetched.folder}/{n}" for n in self.storage.list(fetched.folder, ".fetched.parquet")]
        tables = []
        path = self["table"].path(part.name)
        if self.storage.exists(path):  # a rerun after --retry-images: keep what is there
            tables.append(self.storage.read_parquet(path))
        if staged:
            tables.append(self.storage.read_parquets(staged, where=pc.field("bucket") == part.args["bucket"]))
        rows_in = sum(t.num_rows for t in tables)
        table = merge_images(tables)
        self.storage.write_parquet(path, table)
        return PartStats(
            rows_in=rows_in,
            rows_out=table.num_rows,
            skipped=Counter(
                {"duplicate_image": rows_in - table.num_rows} if rows_in > table.num_rows else {}
            ),
            extra={
                "distinct_images": table.num_rows,
                "image_bytes": int(pc.sum(pc.binary_length(table["image"])).as_py() or 0),
            },
        )
