"""Every score threshold of a job's filters, in one list: which score, which bound, which filter.

The filters decide on ``meta.scores`` with thresholds from their config; ``loom report`` draws each
score's distribution with its thresholds. This module lists them from the config, so that the report
never hard-codes a filter's rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.config import ClipFiltersConfig, FiltersConfig
from filters.heuristics import C4Rules, FineWebRules, GopherQuality, GopherRepetition


@dataclass(frozen=True)
class Threshold:
    """A document whose ``score`` is above (``is_max``) or below ``value`` is dropped by ``filter``
    with ``reason`` (``kinds``: only documents of these kinds; empty: every kind)."""

    filter: str  # the stage (or step) that applies it
    reason: str  # the drop reason in the ledger
    score: str  # a field of meta.scores
    value: float
    is_max: bool
    kinds: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{'max' if self.is_max else 'min'} {self.value:g}"


def filter_thresholds(cfg: FiltersConfig) -> list[Threshold]:
    """The thresholds of the filters step that are on, in the order its filters run."""
    if not cfg.enabled:
        return []
    out: list[Threshold] = []
    if cfg.language.enabled and cfg.language.min_score > 0:  # reason: language_score
        out.append(Threshold("language", "language_score", "language_score", cfg.language.min_score, False))
    if cfg.lexicon.paths:  # no word list: the lexicon is off
        if cfg.lexicon.max_ratio is not None:
            out.append(Threshold("lexicon", "lexicon_ratio", "lexicon_ratio", cfg.lexicon.max_ratio, True))
        if cfg.lexicon.max_count is not None:
            out.append(Threshold("lexicon", "lexicon_count", "lexicon_count", cfg.lexicon.max_count, True))
    for stage in (
        GopherRepetition(cfg.gopher_repetition),
        GopherQuality(cfg.gopher_quality),
        C4Rules(cfg.c4),
        FineWebRules(cfg.fineweb),
    ):
        if stage.cfg.enabled:
            out += [
                Threshold(stage.name, reason, score, value, is_max)
                for reason, score, value, is_max in stage.rules()
                if value is not None
            ]
    for name in ("quality", "nsfw"):
        classifier = getattr(cfg, name)
        if classifier.model is None:  # the classifier does not run
            continue
        if classifier.min_score is not None:
            out.append(Threshold(name, f"{name}_min_score", name, classifier.min_score, False))
        if classifier.max_score is not None:
            out.append(Threshold(name, f"{name}_max_score", name, classifier.max_score, True))
    return out


def clip_thresholds(cfg: ClipFiltersConfig) -> list[Threshold]:
    """The document-level thresholds of the ``clip_filters`` step."""
    out = []
    if cfg.pair_min_similarity is not None:
        out.append(
            Threshold(
                "clip_filters",
                "clip_pair_similarity",
                "clip_similarity",
                cfg.pair_min_similarity,
                False,
                ("pair",),
            )
        )
    if cfg.nsfw_max is not None:
        out.append(Threshold("clip_filters", "clip_image_nsfw", "nsfw_image", cfg.nsfw_max, True, ("pair",)))
    return out
