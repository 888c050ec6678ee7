"""The job spec: a TOML file validated into frozen pydantic models, composed from the config
model each package owns (``pipeline.config`` for the engine's steps, ``filters.config``,
``tokenizer.config``, ``shards.config``).

Every key is documented in ``docs/JOBSPEC.md``. Unknown keys and wrong types are errors that
name the key (``JobSpecError``); ``loom run`` prints them as one line and exits 2.
"""

from __future__ import annotations

import glob
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from filters.config import ClipFiltersConfig, FiltersConfig
from pipeline.clip.config import ClipConfig
from pipeline.config import (
    HOW_IMAGES_RUN,
    CommonCrawlSource,
    Config,
    DedupConfig,
    ExtractConfig,
    ImagesConfig,
    JobSpecError,
    RayConfig,
    RunConfig,
    Source,
    is_remote,
    resolve_path,
)
from pipeline.schema import KINDS
from report.config import ReportConfig
from shards.config import MixConfig, ShardsConfig
from tokenizer.config import TokenizerConfig

__all__ = ["ClipSpec", "JobSpec", "JobSpecError", "check_inputs", "load_job", "parse_job"]


class ClipSpec(ClipConfig):
    """``[clip]``: the engine's CLIP settings and, under ``[clip.filters]``, the image filters on them."""

    filters: ClipFiltersConfig = ClipFiltersConfig()


class JobSpec(Config):
    name: str = Field("loom", description="A label for the job, shown in stats.")
    output: str = Field(description="Output root: a local path or s3://bucket/prefix.")
    sources: list[Source] = Field(min_length=1)
    extract: ExtractConfig = ExtractConfig()
    images: ImagesConfig = ImagesConfig()
    filters: FiltersConfig = FiltersConfig()
    clip: ClipSpec = ClipSpec()
    dedup: DedupConfig = DedupConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    shards: ShardsConfig = ShardsConfig()
    mix: MixConfig = MixConfig()
    report: ReportConfig = ReportConfig()
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

    @model_validator(mode="after")
    def _mix_components(self) -> JobSpec:
        """``[mix]`` weights name kinds the sources make, or the sources; the mixture needs tokens."""
        mix = self.mix
        if not mix.enabled:
            return self
        if not self.tokenizer.enabled:
            raise ValueError("mix: the mixture is measured in tokens; it needs [tokenizer] enabled")
        names = [s.name for s in self.sources]
        made = {
            k for s in self.sources for k in (("pair",) if s.type == "pairs" else ("text", "interleaved"))
        }
        if mix.by_kind():
            missing = [k for k in mix.weights if k not in made]
            if missing:
                raise ValueError(
                    f"mix.weights.{missing[0]}: no source of this job makes it "
                    f"(they make {', '.join(sorted(made))})"
                )
            return self
        kinds, sources = [k for k in mix.weights if k in KINDS], [k for k in mix.weights if k in names]
        if kinds and sources:
            raise ValueError(
                f"mix.weights: name kinds ({', '.join(kinds)}) or sources ({', '.join(sources)}), not both"
            )
        missing = [k for k in mix.weights if k not in names]
        if missing:
            raise ValueError(
                f"mix.weights.{missing[0]}: neither a kind ({', '.join(KINDS)}) "
                f"nor a source ({', '.join(names)})"
            )
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
    where = ".".join(str(p) for p in loc)
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    if not loc:  # a check across keys names its key in the message
        return f"{origin}: {msg}{more}"
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


def _resolve_paths(spec: JobSpec, base_dir: Path) -> JobSpec:
    sources = []
    for src in spec.sources:
        update: dict[str, Any] = {"paths": [resolve_path(p, base_dir) for p in src.paths]}
        if isinstance(src, CommonCrawlSource):
            update["listing"] = resolve_path(src.listing, base_dir) if src.listing else None
            update["prefix"] = resolve_path(src.prefix, base_dir) if src.prefix else ""
        sources.append(src.model_copy(update=update))
    filters = _resolve_filter_paths(spec.filters, base_dir)
    clip = _resolve_clip_paths(spec.clip, base_dir)
    tokenizer = spec.tokenizer
    if tokenizer.path:
        tokenizer = tokenizer.model_copy(update={"path": resolve_path(tokenizer.path, base_dir)})
    return spec.model_copy(
        update={
            "sources": sources,
            "output": resolve_path(spec.output, base_dir),
            "filters": filters,
            "clip": clip,
            "tokenizer": tokenizer,
        }
    )


def _resolve_clip_paths(clip: ClipSpec, base_dir: Path) -> ClipSpec:
    """The checkpoint, model config, cache and NSFW head of [clip], relative to the job spec; a
    ``pretrained`` that names no file there is an open_clip tag and stays as it is."""
    pretrained = clip.pretrained
    if pretrained and (Path(pretrained).suffix or (base_dir / pretrained).exists()):
        pretrained = resolve_path(pretrained, base_dir)
    head = clip.filters.nsfw_head
    return clip.model_copy(
        update={
            "pretrained": pretrained,
            "model_config_path": resolve_path(clip.model_config_path, base_dir)
            if clip.model_config_path
            else None,
            "cache_dir": resolve_path(clip.cache_dir, base_dir) if clip.cache_dir else None,
            "filters": clip.filters.model_copy(
                update={"nsfw_head": resolve_path(head, base_dir) if head else None}
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
    return resolve_path(p, base_dir)


def _resolve_filter_paths(filters: FiltersConfig, base_dir: Path) -> FiltersConfig:
    """The model, list and blocklist files of [filters], relative to the job spec."""

    def one(p: str | None) -> str | None:
        return None if p is None else resolve_path(p, base_dir)

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
            "decontaminate": filters.decontaminate.model_copy(
                update={"paths": [resolve_path(p, base_dir) for p in filters.decontaminate.paths]}
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
    """The model, word-list, blocklist and evaluation files [filters] names must be local and there;
    each evaluation file is read once, as the decontaminate stage will read it."""
    decontaminate = filters.decontaminate
    named = [
        ("filters.language.model", filters.language.model),
        ("filters.quality.model", filters.quality.model),
        ("filters.nsfw.model", filters.nsfw.model),
        ("filters.url_blocklist.path", filters.url_blocklist.path),
        *((f"filters.lexicon.paths.{i}", p) for i, p in enumerate(filters.lexicon.paths)),
        *((f"filters.decontaminate.paths.{i}", p) for i, p in enumerate(decontaminate.paths)),
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
    if decontaminate.paths:
        from filters.decontaminate import EvalSetError, check_eval_file

        for i, path in enumerate(decontaminate.paths):
            try:
                check_eval_file(path, decontaminate)
            except EvalSetError as err:
                raise JobSpecError(f"filters.decontaminate.paths.{i}: {err}") from None
