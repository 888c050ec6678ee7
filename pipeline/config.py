"""The engine's config models: one base (:class:`Config`), the sources, extraction, images, dedup,
Ray and run settings. The job spec (``jobs/spec.py``) composes them with the configs of the floors
above (filters, tokenizer, shards). Every key is documented in ``docs/JOBSPEC.md``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from pipeline.schema import META_TYPE, SCORE_FIELDS


class JobSpecError(ValueError):
    """A job spec that cannot run: bad TOML, an unknown key, a wrong type, a missing input."""


class Config(BaseModel):
    """The one base of every config model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CommonCrawlSource(Config):
    """WARC/ARC files (gzip or not) from local paths, globs or a Common Crawl ``warc.paths`` listing."""

    type: Literal["commoncrawl"] = "commoncrawl"
    name: str = Field("cc", description="The `source` value of the documents it yields.")
    paths: list[str] = Field(default_factory=list, description="Files or globs of WARC/ARC files.")
    listing: str | None = Field(
        None, description="A Common Crawl warc.paths(.gz) listing; its entries resolve against `prefix`."
    )
    prefix: str = Field(
        "",
        description="Joined before each listing entry: a local mirror, https://data.commoncrawl.org/, s3://.",
    )
    limit: int | None = Field(None, ge=1, description="Read at most this many files (after globbing).")
    fetch_images: bool = Field(True, description="Download the images of its documents (see [images]).")


PairFormat = Literal["auto", "parquet", "csv", "tsv", "jsonl"]

#: Column names (and header) of the common image–text datasets.
PAIR_PRESETS: dict[str, dict] = {
    "laion": {"url_column": "URL", "caption_column": "TEXT", "id_column": None, "header": True},
    "coyo": {"url_column": "url", "caption_column": "text", "id_column": "id", "header": True},
    "datacomp": {"url_column": "url", "caption_column": "text", "id_column": "uid", "header": True},
    # Conceptual Captions' Train_GCC-training.tsv: caption<TAB>url, no header
    "cc3m": {
        "url_column": "url",
        "caption_column": "caption",
        "id_column": None,
        "header": False,
        "columns": ["caption", "url"],
        "format": "tsv",
    },
}


class PairsSource(Config):
    """Tables of image URLs with captions (LAION, COYO, DataComp, CC3M): each row becomes a `pair`."""

    type: Literal["pairs"]
    name: str = Field("pairs", description="The `source` value of the documents it yields.")
    paths: list[str] = Field(min_length=1, description="Files or globs: local paths or s3:// URIs.")
    format: PairFormat = Field("auto", description="auto: from the file extension.")
    preset: Literal["laion", "coyo", "datacomp", "cc3m"] | None = Field(
        None, description="Column names of a known dataset; the *_column keys override it."
    )
    url_column: str | None = Field(None, description="Default: the preset's, else `url`.")
    caption_column: str | None = Field(None, description="Default: the preset's, else `caption`.")
    id_column: str | None = Field(None, description="A stable row id (DataComp `uid`), if the table has one.")
    header: bool | None = Field(None, description="CSV/TSV: first line names the columns (default true).")
    columns: list[str] | None = Field(None, description="CSV/TSV without a header: the column names.")
    limit: int | None = Field(None, ge=1, description="Read at most this many files (after globbing).")
    fetch_images: bool = Field(True, description="Download the images (see [images]).")
    max_caption_chars: int = Field(4096, ge=1, description="A longer caption is dropped or cut.")
    long_captions: Literal["drop", "cut"] = Field(
        "drop", description="drop: the pair is dropped (caption_too_long); cut: cut at a word boundary."
    )

    def setting(self, key: str):
        """A column setting: this source's own value, else its preset's, else the default."""
        own = getattr(self, key)
        if own is not None:
            return own
        preset = PAIR_PRESETS.get(self.preset or "", {})
        defaults = {
            "url_column": "url",
            "caption_column": "caption",
            "id_column": None,
            "header": True,
            "columns": None,
            "format": "auto",
        }
        return preset.get(key, defaults[key])


def _source_type(data: Any) -> str:
    """The source's `type`: commoncrawl unless it says otherwise."""
    if isinstance(data, dict):
        return data.get("type", "commoncrawl")
    return getattr(data, "type", "commoncrawl")


Source = Annotated[
    Annotated[CommonCrawlSource, Tag("commoncrawl")] | Annotated[PairsSource, Tag("pairs")],
    Discriminator(_source_type),
]


class ExtractConfig(Config):
    """HTML → document extraction (main content, images in reading order)."""

    max_page_bytes: int = Field(5_000_000, ge=1, description="Larger HTTP payloads are dropped.")
    max_text_chars: int = Field(500_000, ge=1, description="Text beyond this many characters is cut.")
    max_images: int = Field(64, ge=0, description="Images kept per page, in reading order.")
    min_image_side: int = Field(
        64, ge=0, description="An image whose declared width or height is below this is skipped."
    )
    min_text_chars: int = Field(1, ge=0, description="A page with less main-content text is dropped.")


class ImagesConfig(Config):
    """Image acquisition: img2dataset downloads and resizes; Loom guards the requests."""

    fetch: bool = Field(True, description="Download images at all (false: keep URLs, as format v1).")
    allow_networks: list[str] = Field(
        default_factory=list,
        description="Addresses/networks (CIDR) exempt from the refusal of private, loopback, link-local, "
        'multicast and reserved targets, e.g. ["127.0.0.1/32"] for a local mirror.',
    )
    timeout: float = Field(
        10.0, gt=0, description="Seconds per connect and per read; a whole exchange is cut at 3x."
    )
    retries: int = Field(0, ge=0, description="img2dataset's in-run retries of a failed download.")
    max_bytes: int = Field(20_000_000, ge=1, description="A larger response is refused (too_large).")
    max_pixels: int = Field(
        89_478_485, ge=1, description="More pixels are refused before decoding (too_many_pixels)."
    )
    min_side: int = Field(0, ge=0, description="A smaller original image is refused (too_small).")
    max_aspect_ratio: float | None = Field(
        None, gt=0, description="A more elongated image is refused (bad_aspect_ratio); none: no limit."
    )
    format: Literal["jpg", "png", "webp"] = Field("jpg", description="Encoding of the stored images.")
    quality: int = Field(95, ge=0, le=100, description="jpg/webp quality (png: compression level 0-9).")
    max_size: int = Field(1024, ge=1, description="Side length for resize_mode (img2dataset's image_size).")
    resize_mode: Literal["keep_ratio_largest", "keep_ratio", "center_crop", "border", "no"] = Field(
        "keep_ratio_largest", description="img2dataset's resize modes; `no` keeps the original pixels."
    )
    resize_only_if_bigger: bool = Field(True, description="Never upscale.")
    user_agent_token: str = Field(
        "img2dataset", description="Sent in the User-Agent; `X-Robots-Tag: <token>: noai` applies to it."
    )
    disallowed_header_directives: list[str] = Field(
        default_factory=lambda: ["noai", "noimageai", "noindex", "noimageindex"],
        description="X-Robots-Tag directives that refuse an image (img2dataset's defaults).",
    )
    threads: int = Field(32, ge=1, description="Concurrent downloads per worker.")
    decode_pixels: int = Field(
        200_000_000,
        ge=1,
        description="Pixels the concurrent decodes of a worker hold at most (~4 bytes each).",
    )
    urls_per_part: int = Field(
        5_000, ge=1, description="Image references per fetch part (about); a part holds its images in memory."
    )

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, nets: list[str]) -> list[str]:
        for net in nets:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not an IP address or network") from None
        return nets

    @model_validator(mode="after")
    def _png_quality(self) -> ImagesConfig:
        if self.format == "png" and self.quality > 9:
            raise ValueError("for png, `quality` is the compression level, 0-9")
        return self


#: Built-in keep scores of [dedup] keep: the document with the highest score in a cluster is kept.
KEEP_SCORES = ("earliest", "id", "text_chars", "images")


class DedupConfig(Config):
    """Exact and near-duplicate removal across all documents (see docs/DEDUP.md)."""

    enabled: bool = Field(True, description="Run dedup at all.")
    exact_url: bool = Field(True, description="Remove documents whose normalized URL was seen (exact_url).")
    exact_text: bool = Field(
        True, description="Remove documents whose normalized text (images: sha256) was seen (exact_text)."
    )
    minhash: bool = Field(True, description="Remove near-duplicate texts by MinHash LSH (minhash).")
    ngram: int = Field(5, ge=1, description="Words per shingle.")
    bands: int = Field(14, ge=1, description="LSH bands (FineWeb: 14).")
    rows: int = Field(
        8, ge=1, description="Signature values per band (FineWeb: 8); permutations = bands*rows."
    )
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Jaccard threshold: when set, bands and rows are chosen for it (bands*rows stays the "
        "number of permutations).",
    )
    seed: int = Field(1, ge=0, description="Seed of the MinHash permutations.")
    min_words: int = Field(
        5, ge=1, description="Texts with fewer words are left to exact dedup (no MinHash signature)."
    )
    keep: str = Field(
        "earliest",
        description="Which document of a cluster is kept: `earliest` crawl date (a revisit or a later "
        "copy goes), the most `text_chars` or `images`, a numeric `meta.<field>` (highest), or `id`; "
        "ties keep the smallest id.",
    )
    partitions: int | None = Field(
        None, ge=1, description="Shuffle partitions of the dedup steps (default: one per documents part)."
    )

    @field_validator("keep")
    @classmethod
    def _keep(cls, keep: str) -> str:
        if keep in KEEP_SCORES:
            return keep
        field_name = keep.removeprefix("meta.")
        numeric = {f.name for f in META_TYPE if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)}
        numeric |= {f"scores.{name}" for name in SCORE_FIELDS}
        if not keep.startswith("meta.") or field_name not in numeric:
            raise ValueError(
                f"{keep!r}: choose one of {', '.join(KEEP_SCORES)} or meta.<field> of a numeric field "
                f"(meta.scores.quality, meta.warc_offset, …; docs/FILTERS.md lists the scores)"
            )
        return keep

    def bands_rows(self) -> tuple[int, int]:
        """(bands, rows): as given, or chosen for ``threshold``."""
        if self.threshold is None:
            return self.bands, self.rows
        from pipeline.dedup.minhash import bands_for_threshold

        return bands_for_threshold(self.threshold, self.bands * self.rows)


class RayConfig(Config):
    address: str | None = Field(
        None, description="Ray cluster address; None starts local Ray (RAY_ADDRESS and --address win)."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray instance (default: all).")
    parallelism: int | None = Field(None, ge=1, description="Concurrent workers per step (default: CPUs).")


class RunConfig(Config):
    batch_rows: int = Field(256, ge=1, description="Rows per Arrow batch given to a stage.")
    stall_seconds: float = Field(
        900.0,
        ge=0,
        description="A part of documents or images with no progress this long fails (0: never).",
    )
    worker_restarts: int = Field(
        8,
        ge=0,
        description="Restarts of a step's Ray worker that dies (killed, out of memory), then it fails.",
    )
    download_seconds: float = Field(
        3600.0,
        gt=0,
        description="A remote input file (or listing) not downloaded within this fails its part.",
    )


#: [images] keys that change how fetching runs, not what it makes: a rerun may change them
#: (e.g. a longer timeout for --retry-images).
HOW_IMAGES_RUN = {"threads", "timeout", "retries", "decode_pixels"}


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def resolve_path(p: str, base_dir: Path) -> str:
    """A path of a job spec, relative to the spec's folder; remote URIs stay as they are."""
    if is_remote(p):
        return p
    p = p.removeprefix("file://")
    if Path(p).is_absolute():
        return p
    return str((base_dir / p).resolve())
