"""The job spec: a TOML file validated into frozen pydantic models.

Every key is documented in ``docs/JOBSPEC.md``. Unknown keys and wrong types are errors that
name the key (``JobSpecError``); ``loom run`` prints them as one line and exits non-zero.
"""

from __future__ import annotations

import glob
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


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


# More source types (pair tables) join this union; `type` tells them apart.
Source = CommonCrawlSource


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


class RayConfig(_Model):
    address: str | None = Field(
        None, description="Ray cluster address; None starts local Ray (RAY_ADDRESS and --address win)."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray instance (default: all).")
    parallelism: int | None = Field(None, ge=1, description="Concurrent workers per step (default: CPUs).")


class RunConfig(_Model):
    batch_rows: int = Field(256, ge=1, description="Rows per Arrow batch given to a stage.")


class JobSpec(_Model):
    name: str = Field("loom", description="A label for the job, shown in stats.")
    output: str = Field(description="Output root: a local path or s3://bucket/prefix.")
    sources: list[Source] = Field(min_length=1)
    extract: ExtractConfig = ExtractConfig()
    shards: ShardsConfig = ShardsConfig()
    ray: RayConfig = RayConfig()
    run: RunConfig = RunConfig()

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
        data = self.model_dump(mode="json", exclude={"ray", "output"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _format_error(err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
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
        update = {
            "paths": [_resolve(p, base_dir) for p in src.paths],
            "listing": _resolve(src.listing, base_dir) if src.listing else None,
            "prefix": _resolve(src.prefix, base_dir) if src.prefix else "",
        }
        sources.append(src.model_copy(update=update))
    return spec.model_copy(update={"sources": sources, "output": _resolve(spec.output, base_dir)})


def check_inputs(spec: JobSpec) -> None:
    """Fail early, with one line, when a source names inputs that are not there."""
    for i, src in enumerate(spec.sources):
        if not src.paths and not src.listing:
            raise JobSpecError(f"sources.{i}: give `paths` or `listing`")
        for p in src.paths:
            if not is_remote(p) and not glob.glob(p):
                raise JobSpecError(f"sources.{i}.paths: no file matches {p}")
        if src.listing and not is_remote(src.listing) and not Path(src.listing).is_file():
            raise JobSpecError(f"sources.{i}.listing: file not found: {src.listing}")
