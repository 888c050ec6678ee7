"""What the report shows, read from a finished output and summarised: counts and bins, never raw rows.

Everything here is plain data (numbers, lists, dicts) built from ``stats.json``, ``job.json``, the
manifest, the ledgers, the score columns and the steps' outputs, reading only the columns it needs,
one batch at a time. A section whose inputs are missing is left out with the reason in
:attr:`ReportData.missing`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.config import ClipFiltersConfig, FiltersConfig
from filters.thresholds import Threshold, clip_thresholds, filter_thresholds
from pipeline.schema import SCORE_GROUPS
from pipeline.storage import Storage
from report import ReportError
from shards.format import FORMAT_VERSION, MANIFEST

log = logging.getLogger(__name__)

BINS = 40
CONTEXTS = (8192, 32768)  # marked on the token-length plot
#: The filter stage whose scores a group of meta.scores holds (its position in the filters' order
#: decides which documents reached it); classifiers are one stage per score.
GROUP_STAGE = {
    "language": "language",
    "lexicon": "lexicon",
    "gopher_quality": "gopher_quality",
    "gopher_repetition": "gopher_repetition",
    "c4": "c4",
    "fineweb": "fineweb",
    "blocks": "node_rules",
}


@dataclass
class Hist:
    """Counts per bin: ``counts[i]`` values in ``[edges[i], edges[i + 1])``."""

    edges: list[float]
    counts: list[int]
    log: bool = False

    @property
    def total(self) -> int:
        return int(sum(self.counts))


@dataclass
class ScoreDist:
    """One score over the documents that reached its filter, with the thresholds on it."""

    score: str
    filter: str
    reached: int  # documents that reached the filter
    measured: int  # of them, with a value for this score
    hist: Hist
    thresholds: list[dict[str, Any]]  # label, value, is_max, reason, removed, share
    kept_only: bool = False  # the ledgers had no scores (an older output): kept documents only


@dataclass
class ReportData:
    root: str
    stats: dict[str, Any]
    job: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    drops: list[dict[str, Any]] = field(default_factory=list)
    token_lengths: dict[str, Hist] = field(default_factory=dict)
    longer_than: dict[str, dict[str, int]] = field(default_factory=dict)
    tokens_by: dict[str, dict[str, int]] = field(default_factory=dict)
    images_per_doc: dict[str, dict[int, int]] = field(default_factory=dict)
    image_sides: dict[str, Hist] = field(default_factory=dict)
    scores: list[ScoreDist] = field(default_factory=list)
    dedup_clusters: dict[int, int] = field(default_factory=dict)
    dedup_removed: dict[str, int] = field(default_factory=dict)
    fetch_statuses: dict[str, int] = field(default_factory=dict)
    mixture: dict[str, Any] = field(default_factory=dict)
    subsets: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------


def _json(storage: Storage, rel: str) -> dict[str, Any]:
    return json.loads(storage.read_bytes(rel))


def part_files(storage: Storage, step: str, suffix: str = ".parquet") -> list[str]:
    """The files of a step's output named ``<part><suffix>`` (``.parquet``: the documents, not the
    ledgers, block ledgers or image ledgers beside them)."""
    others = (".ledger.parquet", ".blocks.parquet", ".images.parquet", ".manifest.parquet", ".urls.parquet")
    names = storage.list(f"work/{step}", suffix)
    if suffix == ".parquet":
        names = [n for n in names if not n.endswith(others) and not n.endswith(".histogram.parquet")]
    return [f"work/{step}/{n}" for n in names]


def _batches(storage: Storage, files: list[str], columns: list[str]) -> Iterator[pa.RecordBatch]:
    for rel in files:
        yield from storage.iter_parquet(rel, columns=columns)


def open_output(storage: Storage) -> tuple[dict[str, Any], dict[str, Any]]:
    """``stats.json`` and the job spec (from ``job.json``) of a finished output of this format, or a
    :class:`ReportError`."""
    if not storage.exists("stats.json"):
        what = "a Loom output whose job has not finished" if storage.exists("work") else "not a Loom output"
        raise ReportError(f"{storage.root}: {what} (no stats.json; `loom run` writes it when a job ends)")
    try:
        stats = _json(storage, "stats.json")
    except ValueError as err:
        raise ReportError(f"{storage.root}/stats.json: not JSON ({err})") from None
    if not isinstance(stats, dict) or "steps" not in stats or "step_order" not in stats:
        raise ReportError(f"{storage.root}/stats.json: not the stats of a Loom job")
    version = stats.get("format_version")
    if version != FORMAT_VERSION:
        raise ReportError(
            f"{storage.root}: an output of format v{version}; this Loom reads v{FORMAT_VERSION} "
            "(rerun the job with this Loom, or report it with the Loom that made it)"
        )
    job = _json(storage, "job.json") if storage.exists("job.json") else {}
    return stats, job.get("spec", {})


# --------------------------------------------------------------------------------------------------
# bins
# --------------------------------------------------------------------------------------------------


def linear_hist(values: np.ndarray, marks: list[float] = (), bins: int = BINS) -> Hist:
    """Equal bins over the values' range, widened to take in the thresholds (``marks``) that lie
    near it; a threshold far outside (Gopher's 100,000 words) would squeeze the data into one bin."""
    if not len(values):
        return Hist([0.0, 1.0], [0])
    lo, hi = float(values.min()), float(values.max())
    span = max(hi - lo, 1e-9)
    for m in marks:
        if lo - span <= m <= hi + span:
            lo, hi = min(lo, m), max(hi, m)
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return Hist([float(e) for e in edges], [int(c) for c in counts])


def log_edges(high: float, per_decade: int = 8) -> np.ndarray:
    """Edges 1, 10^(1/per_decade), … up to at least ``high``."""
    decades = max(1.0, np.ceil(np.log10(max(high, 10.0)) * per_decade) / per_decade)
    return np.logspace(0, decades, int(round(decades * per_decade)) + 1)


# --------------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------------


def _steps(data: ReportData) -> None:
    for name in data.stats["step_order"]:
        s = data.stats["steps"][name]
        data.steps.append(
            {
                "step": name,
                "rows_in": s.get("rows_in", 0),
                "rows_out": s.get("rows_out", 0),
                "dropped": sum(s.get("drops", {}).values()),
                "skipped": sum(s.get("skipped", {}).values()),
                "seconds": s.get("seconds", 0.0),
                "wall_seconds": s.get("wall_seconds", 0.0),
            }
        )
        for kind in ("drops", "skipped"):
            for reason, count in sorted(s.get(kind, {}).items(), key=lambda kv: -kv[1]):
                data.drops.append(
                    {
                        "step": name,
                        "kind": "dropped" if kind == "drops" else "skipped",
                        "reason": reason,
                        "count": count,
                    }
                )


def _tokens(storage: Storage, data: ReportData) -> None:
    steps = data.stats["steps"]
    if "tokens" not in steps:
        data.missing.append("token lengths: the job has no tokens step")
        return
    extra = steps["tokens"].get("extra", {}).get("tokens", {})
    data.tokens_by = {k: extra.get(f"by_{k}", {}) for k in ("source", "kind", "language")}
    data.longer_than = extra.get("longer_than", {})
    files = part_files(storage, "tokens")
    if not files:
        data.missing.append("token lengths: no work/tokens/*.parquet")
        return
    lengths: dict[str, list[np.ndarray]] = defaultdict(list)
    images: dict[str, Counter] = defaultdict(Counter)
    for batch in _batches(storage, files, ["kind", "tokens", "image_tokens"]):
        kinds = batch.column("kind").to_numpy(zero_copy_only=False)
        n_tokens = pc.list_value_length(batch.column("tokens")).to_numpy(zero_copy_only=False)
        n_images = pc.list_value_length(batch.column("image_tokens")).to_numpy(zero_copy_only=False)
        for kind in np.unique(kinds):
            mask = kinds == kind
            lengths[str(kind)].append(n_tokens[mask].astype(np.int64))
            images[str(kind)].update(Counter(n_images[mask].tolist()))
    every = np.concatenate([np.concatenate(v) for v in lengths.values()]) if lengths else np.zeros(0)
    edges = log_edges(max(float(every.max()) if len(every) else 1.0, CONTEXTS[-1] * 2.0))
    for kind, parts in sorted(lengths.items()):
        values = np.maximum(np.concatenate(parts), 1)
        counts, _ = np.histogram(values, bins=edges)
        data.token_lengths[kind] = Hist([float(e) for e in edges], [int(c) for c in counts], log=True)
    data.images_per_doc = {k: dict(sorted(v.items())) for k, v in sorted(images.items())}


def _images(storage: Storage, data: ReportData) -> None:
    steps = data.stats["steps"]
    if "images" not in steps:
        data.missing.append("images: the job fetches no images")
        return
    statuses: Counter = Counter()
    for batch in _batches(storage, part_files(storage, "images", ".urls.parquet"), ["status"]):
        statuses.update(batch.column("status").to_pylist())
    data.fetch_statuses = dict(statuses.most_common())
    files = part_files(storage, "image_table")
    sides: dict[str, list[np.ndarray]] = {"width": [], "height": []}
    for batch in _batches(storage, files, ["original_width", "original_height"]):
        for side in sides:
            values = batch.column(f"original_{side}").to_numpy(zero_copy_only=False)
            sides[side].append(values[~np.isnan(values.astype(float))].astype(np.int64))
    if not files:
        data.missing.append("image sizes: no work/image_table/*.parquet")
        return
    widths, heights = (np.concatenate(v) if v else np.zeros(0) for v in sides.values())
    high = max([1.0, *(float(x.max()) for x in (widths, heights) if len(x))])
    edges = log_edges(high, per_decade=10)
    for side, values in (("width", widths), ("height", heights)):
        counts, _ = np.histogram(np.maximum(values, 1), bins=edges)
        data.image_sides[side] = Hist([float(e) for e in edges], [int(c) for c in counts], log=True)


def _score_columns(storage: Storage, files: list[str], names: list[str], with_stage: bool) -> dict[str, Any]:
    """The ``scores`` (a struct column, or ``meta.scores``) of the files as numpy arrays by name, plus
    each row's stage (ledgers) and kind (documents)."""
    values: dict[str, list[np.ndarray]] = defaultdict(list)
    stages: list[np.ndarray] = []
    reasons: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    columns = ["stage", "reason", "scores"] if with_stage else ["kind", "meta.scores"]
    for batch in _batches(storage, files, columns):
        table = pa.Table.from_batches([batch])
        scores = table.column("scores" if with_stage else "meta").combine_chunks()
        if not with_stage:
            scores = pc.struct_field(scores, "scores")
            kinds.append(table.column("kind").to_numpy(zero_copy_only=False))
        else:
            stages.append(table.column("stage").to_numpy(zero_copy_only=False))
            reasons.append(table.column("reason").to_numpy(zero_copy_only=False))
        for name in names:
            col = pc.struct_field(scores, name)
            values[name].append(col.to_numpy(zero_copy_only=False).astype(np.float64))
    out: dict[str, Any] = {n: np.concatenate(v) if v else np.zeros(0) for n, v in values.items()}
    out["_stage"] = np.concatenate(stages) if stages else np.zeros(0, dtype=object)
    out["_reason"] = np.concatenate(reasons) if reasons else np.zeros(0, dtype=object)
    out["_kind"] = np.concatenate(kinds) if kinds else np.zeros(0, dtype=object)
    return out


def _ledger_has_scores(storage: Storage, files: list[str]) -> bool:
    return all("scores" in storage.parquet_schema(rel).names for rel in files)


def _distributions(
    storage: Storage,
    data: ReportData,
    step: str,
    order: list[str],
    scores: dict[str, str],
    thresholds: list[Threshold],
) -> None:
    """Each score of ``scores`` (name → its stage) over the documents that reached its stage in
    ``step``: the documents the step kept, and those its ledger says a stage at or after it dropped."""
    names = [n for n, stage in scores.items() if stage in order]
    files = part_files(storage, step)
    if not files:
        data.missing.append(f"{step} scores: no work/{step}/*.parquet")
    if not names or not files:
        return
    kept = _score_columns(storage, files, names, with_stage=False)
    ledgers = part_files(storage, step, ".ledger.parquet")
    with_scores = _ledger_has_scores(storage, ledgers)
    dropped = _score_columns(storage, ledgers, names, with_stage=True) if with_scores else None
    if not with_scores:
        data.missing.append(
            f"{step} scores: the ledgers have no scores (an output of an older Loom): kept documents only"
        )
    position = {stage: i for i, stage in enumerate(order)}
    # where in the order each dropped document left: it reached every stage up to that one
    left_at = np.array([position.get(s, -1) for s in dropped["_stage"]] if dropped else [], dtype=np.int64)
    for name in names:
        stage = scores[name]
        parts = [kept[name]]
        reasons: Counter = Counter()
        if dropped is not None and len(left_at):
            later = left_at >= position[stage]
            parts.append(dropped[name][later])
            reasons = Counter(dropped["_reason"][later].tolist())
        values = np.concatenate(parts)
        reached = len(values)
        measured = values[~np.isnan(values)]
        if not len(measured):
            continue
        mine = [t for t in thresholds if t.score == name]
        data.scores.append(
            ScoreDist(
                score=name,
                filter=stage,
                reached=reached,
                measured=len(measured),
                hist=linear_hist(measured, [t.value for t in mine]),
                thresholds=[
                    {
                        "label": t.label,
                        "value": t.value,
                        "is_max": t.is_max,
                        "reason": t.reason,
                        "removed": reasons.get(t.reason, 0),
                        "share": reasons.get(t.reason, 0) / reached if reached else 0.0,
                    }
                    for t in mine
                ],
                kept_only=not with_scores,
            )
        )


def _scores(storage: Storage, data: ReportData) -> None:
    steps = data.stats["steps"]
    spec_filters = FiltersConfig.model_validate(data.job.get("filters", {}))
    if "filters" in steps:
        order = steps["filters"].get("extra", {}).get("order", [])
        names = {n: GROUP_STAGE[g] for g, fields in SCORE_GROUPS.items() if g in GROUP_STAGE for n in fields}
        names |= {"quality": "quality", "nsfw": "nsfw"}
        _distributions(storage, data, "filters", order, names, filter_thresholds(spec_filters))
    else:
        data.missing.append("filter scores: the job has no filters step")
    if "clip_filters" in steps:
        clip = ClipFiltersConfig.model_validate(data.job.get("clip", {}).get("filters", {}))
        names = dict.fromkeys(SCORE_GROUPS["clip"], "clip_filters")
        _distributions(storage, data, "clip_filters", ["clip_filters"], names, clip_thresholds(clip))


def _dedup(storage: Storage, data: ReportData) -> None:
    steps = data.stats["steps"]
    if "dedup" not in steps:
        data.missing.append("dedup: the job has no dedup step")
        return
    data.dedup_removed = dict(steps["dedup"].get("drops", {}))
    if not storage.exists("work/dedup_components/result.json"):
        data.missing.append("dedup clusters: no work/dedup_components/result.json")
        return
    labels = _json(storage, "work/dedup_components/result.json").get("labels", [])
    sizes: Counter = Counter()
    for batch in _batches(storage, labels, ["label"]):
        sizes.update(batch.column("label").to_pylist())
    data.dedup_clusters = dict(sorted(Counter(sizes.values()).items()))


def _mixture(data: ReportData) -> None:
    steps = data.stats["steps"]
    if "mix" not in steps:
        data.missing.append("mixture: the job has no [mix] weights")
        return
    data.mixture = steps["mix"].get("extra", {}).get("mix", {})
    data.subsets = steps.get("train", {}).get("extra", {}).get("subsets", [])


def _totals(storage: Storage, data: ReportData) -> None:
    shards = data.stats.get("shards", {})
    data.totals = {
        "documents": shards.get("samples", 0),
        "tokens": shards.get("tokens", 0),
        "shards": shards.get("count", 0),
        "images": shards.get("images", 0),
        "bytes": shards.get("bytes", 0),
        "by_kind": shards.get("documents", {}),
    }
    if not storage.exists(MANIFEST):
        data.missing.append(f"manifest: no {MANIFEST}")


def collect(storage: Storage) -> ReportData:
    """Everything the report shows, from the output at ``storage``."""
    stats, job = open_output(storage)
    data = ReportData(root=storage.root, stats=stats, job=job)
    if not job:
        data.missing.append("thresholds: no job.json (the scores are drawn without thresholds)")
    for section in (_steps, _mixture):
        section(data)
    for section in (_totals, _tokens, _images, _scores, _dedup):
        try:
            section(storage, data)
        except (OSError, KeyError, ValueError, pa.ArrowException) as err:  # a damaged or partial output
            log.warning("report: %s failed: %s", section.__name__.strip("_"), err)
            data.missing.append(f"{section.__name__.strip('_')}: could not be read ({err})")
    return data
