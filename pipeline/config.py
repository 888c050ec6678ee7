"""The job spec: a TOML file validated into frozen pydantic models.

Every key is documented in ``docs/JOBSPEC.md``. Unknown keys and wrong types are errors that
name the key (``JobSpecError``); ``loom run`` prints them as one line and exits non-zero.
"""

from __future__ import annotations

import glob
import hashlib
import ipaddress
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from filters.config import FiltersConfig
from pipeline.clip.config import ClipConfig
from pipeline.schema import META_TYPE, SCORE_FIELDS
from tokenizer.config import TokenizerConfig


class JobSpecError(ValueError):
    """A job spec that cannot run: bad TOML, an unknown key, a wrong type, a missing input."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommonCrawlSource(_Model):
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


class PairsSource(_Model):
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


class ExtractConfig(_Model):
    """HTML → document extraction (main content, images in reading order)."""

    max_page_bytes: int = Field(5_000_000, ge=1, description="Larger HTTP payloads are dropped.")
    max_text_chars: int = Field(500_000, ge=1, description="Text beyond this many characters is cut.")
    max_images: int = Field(64, ge=0, description="Images kept per page, in reading order.")
    min_image_side: int = Field(
        64, ge=0, description="An image whose declared width or height is below this is skipped."
    )
    min_text_chars: int = Field(1, ge=0, description="A page with less main-content text is dropped.")


class ShardsConfig(_Model):
    max_samples: int = Field(1000, ge=1, description="Samples per shard at most.")
    max_bytes: int = Field(512 * 1024 * 1024, ge=1024, description="Shard size at most (approximate).")


class ImagesConfig(_Model):
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


class DedupConfig(_Model):
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


class RayConfig(_Model):
    address: str | None = Field(
        None, description="Ray cluster address; None starts local Ray (RAY_ADDRESS and --address win)."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray instance (default: all).")
    parallelism: int | None = Field(None, ge=1, description="Concurrent workers per step (default: CPUs).")


class RunConfig(_Model):
    batch_rows: int = Field(256, ge=1, description="Rows per Arrow batch given to a stage.")


#: [images] keys that change how fetching runs, not what it makes: a rerun may change them
#: (e.g. a longer timeout for --retry-images).
HOW_IMAGES_RUN = {"threads", "timeout", "retries"}


class JobSpec(_Model):
    name: str = Field("loom", description="A label for the job, shown in stats.")
    output: str = Field(description="Output root: a local path or s3://bucket/prefix.")
    sources: list[Source] = Field(min_length=1)
    extract: ExtractConfig = ExtractConfig()
    images: ImagesConfig = ImagesConfig()
    filters: FiltersConfig = FiltersConfig()
    clip: ClipConfig = ClipConfig()
    dedup: DedupConfig = DedupConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    shards: ShardsConfig = ShardsConfig()
    ray: RayConfig = RayConfig()
    run: RunConfig = RunConfig()

    @field_validator("tokenizer", mode="before")
    @classmethod
    def _tokenizer_path(cls, value: Any) -> Any:
        """``tokenizer = "path/to/tokenizer.json"`` is short for ``[tokenizer] path = "…"``."""
        return {"path": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _clip_needs_images(self) -> JobSpec:
        if self.clip.enabled and not self.images.fetch:
            raise ValueError("clip.enabled: CLIP embeds fetched images; it needs [images] fetch = true")
        return self

    @field_validator("sources")
    @classmethod
    def _distinct_names(cls, sources: list[Source]) -> list[Source]:
        names = [s.name for s in sources]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two sources are named {name!r}; give each its own `name`")
        return sources

    def fingerprint(self) -> str:
        """What makes two runs the same job: everything but where and how it runs."""
        data = self.model_dump(mode="json", exclude={"ray": True, "output": True, "images": HOW_IMAGES_RUN})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _format_error(err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    loc = list(first["loc"])
    if loc[:1] == ["sources"] and len(loc) > 2 and loc[2] in ("commoncrawl", "pairs"):
        del loc[2]  # the union's tag: the user wrote sources.0.paths, not sources.0.pairs.paths
    where = ".".join(str(p) for p in loc) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{origin}: {where}: {msg}{more}"


def parse_job(data: dict, origin: str = "job spec", base_dir: Path | None = None) -> JobSpec:
    """Validate a job spec dict; relative local paths resolve against ``base_dir``."""
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as err:
        raise JobSpecError(_format_error(err, origin)) from None
    if base_dir is not None:
        spec = _resolve_paths(spec, base_dir)
    return spec


def load_job(path: str | Path, output: str | None = None) -> JobSpec:
    """Read and validate a TOML job spec (or its JSON form, ``*.json``); ``output`` overrides its output."""
    path = Path(path)
    if not path.is_file():
        raise JobSpecError(f"{path}: job spec not found")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise JobSpecError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'TOML'}: {err}") from None
    if output is not None:
        data["output"] = output
    return parse_job(data, origin=str(path), base_dir=path.parent)


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _resolve(p: str, base_dir: Path) -> str:
    if is_remote(p):
        return p
    p = p.removeprefix("file://")
    if Path(p).is_absolute():
        return p
    return str((base_dir / p).resolve())


def _resolve_paths(spec: JobSpec, base_dir: Path) -> JobSpec:
    sources = []
    for src in spec.sources:
        update: dict[str, Any] = {"paths": [_resolve(p, base_dir) for p in src.paths]}
        if isinstance(src, CommonCrawlSource):
            update["listing"] = _resolve(src.listing, base_dir) if src.listing else None
            update["prefix"] = _resolve(src.prefix, base_dir) if src.prefix else ""
        sources.append(src.model_copy(update=update))
    filters = _resolve_filter_paths(spec.filters, base_dir)
    clip = _resolve_clip_paths(spec.clip, base_dir)
    tokenizer = spec.tokenizer
    if tokenizer.path:
        tokenizer = tokenizer.model_copy(update={"path": _resolve(tokenizer.path, base_dir)})
    return spec.model_copy(
        update={
            "sources": sources,
            "output": _resolve(spec.output, base_dir),
            "filters": filters,
            "clip": clip,
            "tokenizer": tokenizer,
        }
    )


def _resolve_clip_paths(clip: ClipConfig, base_dir: Path) -> ClipConfig:
    """The checkpoint, model config, cache and NSFW head of [clip], relative to the job spec; a
    ``pretrained`` that names no file there is an open_clip tag and stays as it is."""
    pretrained = clip.pretrained
    if pretrained and (Path(pretrained).suffix or (base_dir / pretrained).exists()):
        pretrained = _resolve(pretrained, base_dir)
    head = clip.filters.nsfw_head
    return clip.model_copy(
        update={
            "pretrained": pretrained,
            "model_config_path": _resolve(clip.model_config_path, base_dir)
            if clip.model_config_path
            else None,
            "cache_dir": _resolve(clip.cache_dir, base_dir) if clip.cache_dir else None,
            "filters": clip.filters.model_copy(
                update={"nsfw_head": _resolve(head, base_dir) if head else None}
            ),
        }
    )


def _resolve_list(p: str, base_dir: Path) -> str:
    """A word-list path; ``loom:<name>`` names a list Loom ships (``filters/lists/<name>``): it is
    checked here and stays as it is, so each node reads its own installed copy."""
    if p.startswith("loom:"):
        from filters.lexicon import builtin_list

        try:
            builtin_list(p.removeprefix("loom:"))
        except ValueError as err:
            raise JobSpecError(f"filters.lexicon.paths: {err}") from None
        return p
    return _resolve(p, base_dir)


def _resolve_filter_paths(filters: FiltersConfig, base_dir: Path) -> FiltersConfig:
    """The model, list and blocklist files of [filters], relative to the job spec."""

    def one(p: str | None) -> str | None:
        return None if p is None else _resolve(p, base_dir)

    return filters.model_copy(
        update={
            "language": filters.language.model_copy(update={"model": one(filters.language.model)}),
            "quality": filters.quality.model_copy(update={"model": one(filters.quality.model)}),
            "nsfw": filters.nsfw.model_copy(update={"model": one(filters.nsfw.model)}),
            "lexicon": filters.lexicon.model_copy(
                update={"paths": [_resolve_list(p, base_dir) for p in filters.lexicon.paths]}
            ),
            "url_blocklist": filters.url_blocklist.model_copy(
                update={"path": one(filters.url_blocklist.path)}
            ),
        }
    )


def check_inputs(spec: JobSpec) -> None:
    """Fail early, with one line, when a source names inputs that are not there."""
    for i, src in enumerate(spec.sources):
        listing = getattr(src, "listing", None)
        if not src.paths and not listing:
            raise JobSpecError(f"sources.{i}: give `paths` or `listing`")
        for p in src.paths:
            if not is_remote(p) and not glob.glob(p):
                raise JobSpecError(f"sources.{i}.paths: no file matches {p}")
        if listing and not is_remote(listing) and not Path(listing).is_file():
            raise JobSpecError(f"sources.{i}.listing: file not found: {listing}")
    if spec.filters.enabled:
        check_filter_files(spec.filters)
    if spec.clip.enabled:
        clip = spec.clip
        files = [
            ("clip.model_config_path", clip.model_config_path),
            ("clip.filters.nsfw_head", clip.filters.nsfw_head),
        ]
        if clip.pretrained and Path(clip.pretrained).suffix:
            files.append(("clip.pretrained", clip.pretrained))
        for key, f in files:
            if f and not Path(f).is_file():
                raise JobSpecError(f"{key}: not found: {f}")
    path = spec.tokenizer.path
    if spec.tokenizer.enabled and path:
        if is_remote(path):
            raise JobSpecError(f"tokenizer.path: {path}: a tokenizer is read from a local path")
        if not Path(path).is_file():
            raise JobSpecError(f"tokenizer.path: not found: {path}")


def check_filter_files(filters: FiltersConfig) -> None:
    """The model, word-list and blocklist files [filters] names must be local and there."""
    named = [
        ("filters.language.model", filters.language.model),
        ("filters.quality.model", filters.quality.model),
        ("filters.nsfw.model", filters.nsfw.model),
        ("filters.url_blocklist.path", filters.url_blocklist.path),
        *((f"filters.lexicon.paths.{i}", p) for i, p in enumerate(filters.lexicon.paths)),
    ]
    for key, path in named:
        if path is None or path.startswith("loom:"):
            continue
        if is_remote(path):
            raise JobSpecError(
                f"{key}: {path}: models and lists are read from local paths (copy it to each node)"
            )
        if not Path(path).exists():
            raise JobSpecError(f"{key}: not found: {path}")
