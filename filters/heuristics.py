"""The heuristic quality rules of Gopher (Rae et al. 2021), C4 (Raffel et al. 2020) and FineWeb
(Penedo et al. 2024), with the published thresholds and the semantics datatrove 0.10.1 gives them.

Four stages, in the order the filters step runs them: :class:`GopherRepetition`,
:class:`GopherQuality`, :class:`C4Rules` (an *editing* rule: it removes lines) and
:class:`FineWebRules`. Each looks only at ``text`` and ``interleaved`` documents (a pair's caption
is not web prose: its scores stay null) and reads a document as one text, its text blocks joined
by a blank line (:func:`filters.base.joined_text`).

**Scores, then thresholds.** Every measurement is written to ``meta.scores`` for every document a
stage looks at, dropped or kept; the thresholds of ``filters.config`` then decide, rule by rule in
datatrove's order, and the first rule a document fails is its drop reason (``gopher_min_words``,
``c4_curly_bracket``, …; detail ``{"score", "threshold"}``). A decision compares the score as it is
stored (float32) with the threshold as a float32, the way numpy or polars compare a float32 column
with a number: thresholding the stored score again later gives exactly the decision a rerun with
that threshold would give, and a ratio equal to its threshold (3 lines of 10 against 0.3) passes
a "more than" rule, as in datatrove.

**Where Loom differs from datatrove, and why.**

* Words: datatrove runs spaCy's English tokenizer (punctuation split off). Loom uses
  :func:`filters.text.tokens`, one regular expression that splits the same way on ordinary text
  (the four stages run about 18x faster than datatrove's, ``bench/filters_bench.py``, with the same
  decisions on the benchmark's English pages); runs of Chinese, Japanese, Thai, Lao, Khmer and
  Myanmar are segmented into words by ICU's dictionaries (datatrove, given the language, segments
  Chinese and Japanese with jieba / SudachiPy; with its English default it does not). The sentence
  count of C4 uses :func:`filters.text.count_sentences` (datatrove: spaCy's sentencizer for
  English, nltk punkt for some other languages).
* Gopher's stop-word rule is English: it only judges documents whose ``meta.language`` is
  ``stop_words_language`` (or unknown); for the others the score stays null.
* Gopher's symbol-to-word rule is one score, the larger of the '#' ratio and the ellipsis ratio
  (datatrove tests them one after the other against the same threshold: the same decision).
* Gopher repetition's top n-gram measure counts a space between the tokens of an n-gram (as
  datatrove's joined string does) except in text of an unspaced script (CJK, Thai, …), where no
  space separates the words in the text.
* C4 keeps the paragraph breaks of what it keeps (datatrove joins the kept lines with a single
  newline), so FineWeb's newline-per-word ratio counts the line breaks between non-blank lines: a
  paragraph break counts once, the value datatrove's FineWeb sees after datatrove's C4.
* C4's line rules run on every text block of an interleaved document in place: image positions
  stay, a block left without lines becomes ``""`` (:func:`filters.base.edit_blocks` removes it).
* A document without text is scored null by the repetition and FineWeb rules, not dropped
  (datatrove: "empty"); Gopher quality's word minimum drops it.
* Unspaced scripts (the rules were written for English): every count is of segmented words (a
  Japanese article's repeated product name is a repeated word, not a dozen repeated characters).
  Gopher's mean word length leaves the words of unspaced scripts out and is not measured (null)
  when they are most of the words: its 3–10 bounds are for spaced languages, and a Chinese or
  Japanese word is 1–2 characters on average. C4 counts a line's words with
  :func:`filters.text.words` and takes "。！？" as terminal punctuation too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from filters.base import (
    block_texts,
    drop_detail,
    edit_blocks,
    joined_text,
    kind_mask,
    mark_drops,
    meta_values,
    with_scores,
)
from filters.config import WEB_KINDS, C4Config, FineWebConfig, GopherQualityConfig, GopherRepetitionConfig
from filters.ngrams import DUP_NGRAMS, TOP_NGRAMS, ngram_repetition
from filters.text import (
    SENTENCE_END,
    count_sentences,
    has_unspaced,
    is_symbol,
    is_unspaced_word,
    tokens,
    words,
)
from pipeline.schema import SCORE_GROUPS
from pipeline.stage import Resources

#: (reason, score field, threshold, True: drop above it / False: drop below it)
Rule = tuple[str, str, float | None, bool]
Scores = dict[str, float | None]


# --------------------------------------------------------------------------------------------------
# Shared: deciding from scores
# --------------------------------------------------------------------------------------------------


def _as_float32(values: Sequence[float | None]) -> np.ndarray:
    """Scores as stored (float32); null → NaN, which fails no comparison."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float32)


def decide(
    scores: dict[str, list[float | None]], rules: Sequence[Rule], n: int
) -> tuple[list[str | None], list[str | None]]:
    """The first rule each document fails (reason, detail), or (None, None)."""
    reasons: list[str | None] = [None] * n
    details: list[str | None] = [None] * n
    for reason, name, threshold, is_max in rules:
        if threshold is None:
            continue
        values = _as_float32(scores[name])
        limit = np.float32(threshold)
        fails = values > limit if is_max else values < limit
        for i in np.flatnonzero(fails):
            if reasons[i] is None:
                reasons[i] = reason
                details[i] = drop_detail(float(values[i]), threshold)
    return reasons, details


def _columns(per_doc: Sequence[Scores | None], names: Iterable[str]) -> dict[str, list[float | None]]:
    """Per-document score dicts → one list per score field (None where a document was not scored)."""
    return {name: [None if s is None else s.get(name) for s in per_doc] for name in names}


class _TextRules:
    """What the four stages share: which documents they look at, scores, then drops."""

    name = ""
    resources = Resources(cpus=1)
    fields: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.counters: Counter = Counter()

    def rules(self) -> list[Rule]:
        raise NotImplementedError

    def _score_and_mark(self, batch: pa.Table, per_doc: Sequence[Scores | None]) -> pa.Table:
        scores = _columns(per_doc, self.fields)
        batch = with_scores(batch, scores)
        reasons, details = decide(scores, self.rules(), batch.num_rows)
        if any(r is not None for r in reasons):
            batch = mark_drops(batch, reasons, details)
        return batch


def _texts_to_score(batch: pa.Table) -> list[str | None]:
    """Each document's text, or None for the kinds these rules skip (pairs)."""
    applies = kind_mask(batch, WEB_KINDS)
    return [
        joined_text(blocks) if ok else None for blocks, ok in zip(block_texts(batch), applies, strict=True)
    ]


def _duplicates(items: Sequence[str]) -> tuple[int, int]:
    """(items that repeat an earlier one, their characters)."""
    seen: set[str] = set()
    dup_items = dup_chars = 0
    for item in items:
        if item in seen:
            dup_items += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup_items, dup_chars


# --------------------------------------------------------------------------------------------------
# Gopher repetition
# --------------------------------------------------------------------------------------------------

_PARAGRAPH_SPLIT = re.compile(r"\n{2,}")
_LINE_SPLIT = re.compile(r"\n+")

REPETITION_FIELDS = SCORE_GROUPS["gopher_repetition"]


def repetition_scores(text: str) -> Scores:
    """Gopher's repetition measures of one text (None for an empty text)."""
    if not text:
        return dict.fromkeys(REPETITION_FIELDS)
    size = len(text)
    out: Scores = {}
    paras = _PARAGRAPH_SPLIT.split(text.strip())
    dup, chars = _duplicates(paras)
    out["dup_para_frac"] = dup / len(paras)
    out["dup_para_char_frac"] = chars / size
    lines = _LINE_SPLIT.split(text)
    dup, chars = _duplicates(lines)
    out["dup_line_frac"] = dup / len(lines)
    out["dup_line_char_frac"] = chars / size

    tops, dups = ngram_repetition(tokens(text), 0 if has_unspaced(text) else 1)
    for n, chars in zip(TOP_NGRAMS, tops, strict=True):
        out[f"top_{n}gram_frac"] = chars / size
    for n, chars in zip(DUP_NGRAMS, dups, strict=True):
        out[f"dup_{n}gram_frac"] = chars / size
    return out


class GopherRepetition(_TextRules):
    """Drops documents that repeat themselves: duplicate lines and paragraphs (by count and by
    characters), one n-gram taking too much of the text, too much text in repeated n-grams."""

    name = "gopher_repetition"
    fields = REPETITION_FIELDS

    def __init__(self, cfg: GopherRepetitionConfig):
        super().__init__()
        self.cfg = cfg

    def rules(self) -> list[Rule]:
        c = self.cfg
        rules: list[Rule] = [
            ("gopher_dup_para_frac", "dup_para_frac", c.max_dup_para_frac, True),
            ("gopher_dup_para_char_frac", "dup_para_char_frac", c.max_dup_para_char_frac, True),
            ("gopher_dup_line_frac", "dup_line_frac", c.max_dup_line_frac, True),
            ("gopher_dup_line_char_frac", "dup_line_char_frac", c.max_dup_line_char_frac, True),
        ]
        for n in TOP_NGRAMS:
            rules.append((f"gopher_top_{n}gram_frac", f"top_{n}gram_frac", c.max_top_ngram_frac.get(n), True))
        for n in DUP_NGRAMS:
            rules.append((f"gopher_dup_{n}gram_frac", f"dup_{n}gram_frac", c.max_dup_ngram_frac.get(n), True))
        return rules

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not self.cfg.enabled or not batch.num_rows:
            return batch
        per_doc = [None if t is None else repetition_scores(t) for t in _texts_to_score(batch)]
        return self._score_and_mark(batch, per_doc)


# --------------------------------------------------------------------------------------------------
# Gopher quality
# --------------------------------------------------------------------------------------------------

QUALITY_FIELDS = SCORE_GROUPS["gopher_quality"]
_BULLETS = ("•", "-")
_ELLIPSES = ("...", "…")


def _has_alpha(token: str) -> bool:
    return token.isalpha() or any(map(str.isalpha, token))


def quality_scores(text: str, stop_words: frozenset[str] | None) -> Scores:
    """Gopher's quality measures of one text. ``words``: tokens that are not punctuation only;
    the symbol and alphabetic ratios divide by all tokens (as datatrove does). ``mean_word_length``
    leaves the words of unspaced scripts (CJK, Thai, …) out, and is None when they are most of the
    words. ``stop_words``: how many distinct stop words occur (None when ``stop_words`` is None:
    not tested)."""
    toks = tokens(text)
    n_tokens = len(toks)
    counts = Counter(toks)
    n_words = word_chars = alpha = unspaced_words = 0
    unspaced = has_unspaced(text)
    for tok, c in counts.items():
        if tok[0].isalnum() or not is_symbol(tok):
            n_words += c
            if unspaced and is_unspaced_word(tok):
                unspaced_words += c
            else:
                word_chars += c * len(tok)
        if _has_alpha(tok):
            alpha += c
    spaced_words = n_words - unspaced_words
    # Gopher's bounds (3-10 characters) are for spaced languages: a Chinese or Japanese word is 1-2
    # characters, so the mean says nothing about text mostly in an unspaced script
    mean_length = word_chars / spaced_words if spaced_words and unspaced_words * 2 < n_words else None
    lines = text.splitlines()  # blank lines count too (as in datatrove)
    bullets = sum(s.lstrip().startswith(_BULLETS) for s in lines)
    ellipses = sum(s.rstrip().endswith(_ELLIPSES) for s in lines)
    symbols = max(text.count("#"), text.count("...") + text.count("…"))
    return {
        "words": n_words,
        "mean_word_length": mean_length,
        "symbol_word_ratio": _ratio(symbols, n_tokens),
        "bullet_lines_frac": _ratio(bullets, len(lines)),
        "ellipsis_lines_frac": _ratio(ellipses, len(lines)),
        "alpha_words_frac": _ratio(alpha, n_tokens),
        "stop_words": None if stop_words is None else len(stop_words.intersection(counts)),
    }


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class GopherQuality(_TextRules):
    """Drops documents that do not read like prose: too few or too many words, odd word lengths,
    many '#' or ellipses, mostly bullet lines or truncated lines, few alphabetic words, and (for
    the stop words' language) fewer than two of the commonest English words."""

    name = "gopher_quality"
    fields = QUALITY_FIELDS

    def __init__(self, cfg: GopherQualityConfig):
        super().__init__()
        self.cfg = cfg
        self._stop_words = frozenset(cfg.stop_words)

    def rules(self) -> list[Rule]:
        c = self.cfg
        return [
            ("gopher_min_words", "words", c.min_words, False),
            ("gopher_max_words", "words", c.max_words, True),
            ("gopher_min_mean_word_length", "mean_word_length", c.min_mean_word_length, False),
            ("gopher_max_mean_word_length", "mean_word_length", c.max_mean_word_length, True),
            ("gopher_max_symbol_word_ratio", "symbol_word_ratio", c.max_symbol_word_ratio, True),
            ("gopher_max_bullet_lines_frac", "bullet_lines_frac", c.max_bullet_lines_frac, True),
            ("gopher_max_ellipsis_lines_frac", "ellipsis_lines_frac", c.max_ellipsis_lines_frac, True),
            ("gopher_min_alpha_words_frac", "alpha_words_frac", c.min_alpha_words_frac, False),
            ("gopher_min_stop_words", "stop_words", c.min_stop_words, False),
        ]

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not self.cfg.enabled or not batch.num_rows:
            return batch
        languages = meta_values(batch, "language")
        per_doc: list[Scores | None] = []
        for text, language in zip(_texts_to_score(batch), languages, strict=True):
            if text is None:
                per_doc.append(None)
                continue
            tested = language is None or language == self.cfg.stop_words_language
            per_doc.append(quality_scores(text, self._stop_words if tested else None))
        return self._score_and_mark(batch, per_doc)


# --------------------------------------------------------------------------------------------------
# C4
# --------------------------------------------------------------------------------------------------

C4_FIELDS = SCORE_GROUPS["c4"]
CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
#: C4's terminal punctuation, and the CJK full stops and marks (a Chinese line ends in "。").
TERMINAL_PUNCT = frozenset('.?!"' + "'" + "\u3002\uff01\uff1f\uff61")
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


@dataclass
class C4Result:
    """What C4's rules make of one document."""

    blocks: list[str | None]  # the text blocks with the kept lines ("" when none is left)
    sentences: int = 0  # in the kept lines
    lines: int = 0  # non-blank lines read
    removed: Counter = field(default_factory=Counter)  # lines removed, by rule
    reason: str | None = None  # c4_lorem_ipsum / c4_curly_bracket: the whole document goes
    offending: str | None = None  # the line that decided it

    @property
    def removed_frac(self) -> float | None:
        return sum(self.removed.values()) / self.lines if self.lines else None


class C4Rules(_TextRules):
    """C4's cleaning: removes lines that are not sentences (no terminal punctuation, fewer than 3
    words, a 1000-character word), that mention javascript or a cookie/privacy notice, and
    Wikipedia citation marks; drops documents holding "lorem ipsum" or "{", or left with fewer
    than 5 sentences. Paragraph breaks between the lines kept are kept.

    ``counters``: ``c4_lines_<rule>``, the lines removed from the documents C4 keeps."""

    name = "c4"
    fields = C4_FIELDS

    def __init__(self, cfg: C4Config):
        super().__init__()
        self.cfg = cfg

    def rules(self) -> list[Rule]:
        return [("c4_min_sentences", "c4_sentences", self.cfg.min_sentences, False)]

    def _line_verdict(self, line: str) -> tuple[str | None, str]:
        """(the rule that removes ``line`` or ends the document, or None; the line as kept)."""
        c = self.cfg
        line_words = words(line)
        if c.max_word_length is not None and len(line) > c.max_word_length:
            if max(map(len, line_words)) > c.max_word_length:
                return "too_long_word", line
        n_words = len(line_words)
        if c.remove_citations and "[" in line:
            line = CITATION.sub("", line)
        if c.drop_lines_without_terminal_punct and (line[-1:] not in TERMINAL_PUNCT or line.endswith("...")):
            return "no_terminal_punct", line
        if c.min_words_per_line is not None and n_words < c.min_words_per_line:
            return "too_few_words", line
        lower = line.lower()
        if c.lorem_ipsum and "lorem ipsum" in lower:
            return "c4_lorem_ipsum", line
        if c.javascript and "javascript" in lower:
            return "javascript", line
        if c.curly_bracket and "{" in line:
            return "c4_curly_bracket", line
        if c.policy and any(p in lower for p in POLICY_PHRASES):
            return "policy", line
        return None, line

    def clean(self, blocks: Sequence[str | None]) -> C4Result:
        """C4's rules over one document's blocks (None at image positions)."""
        result = C4Result(blocks=[])
        for block in blocks:
            if block is None:
                result.blocks.append(None)
                continue
            kept: list[str] = []
            gap = False
            for raw in block.splitlines():
                line = raw.strip()
                if not line:
                    gap = True
                    continue
                result.lines += 1
                verdict, line = self._line_verdict(line)
                if verdict is None:
                    if kept:
                        kept.append("\n\n" if gap else "\n")
                    kept.append(line)
                    gap = False
                    result.sentences += count_sentences(line)
                elif verdict.startswith("c4_"):
                    if result.reason is None:
                        result.reason, result.offending = verdict, line
                else:
                    result.removed[verdict] += 1
            result.blocks.append("".join(kept))
        return result

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not self.cfg.enabled or not batch.num_rows:
            return batch
        applies = kind_mask(batch, WEB_KINDS)
        old_blocks = block_texts(batch)
        results = [self.clean(blocks) if ok else None for blocks, ok in zip(old_blocks, applies, strict=True)]
        per_doc: list[Scores | None] = [
            None if r is None else {"c4_sentences": r.sentences, "c4_lines_removed_frac": r.removed_frac}
            for r in results
        ]
        scores = _columns(per_doc, self.fields)
        batch = with_scores(batch, scores)
        reasons, details = decide(scores, self.rules(), batch.num_rows)
        new_blocks: list[list[str | None]] = []
        changed = False
        for i, (r, old) in enumerate(zip(results, old_blocks, strict=True)):
            if r is not None and r.reason is not None:  # a line decides before the sentence count
                reasons[i] = r.reason
                details[i] = drop_detail(None, None, line=(r.offending or "")[:200])
            if r is None or reasons[i] is not None or r.blocks == old:
                new_blocks.append(old)
                continue
            new_blocks.append(r.blocks)
            changed = True
            for rule, count in r.removed.items():
                self.counters[f"c4_lines_{rule}"] += count
        if any(r is not None for r in reasons):
            batch = mark_drops(batch, reasons, details)
        if changed:
            batch = edit_blocks(batch, new_blocks)
        return batch


# --------------------------------------------------------------------------------------------------
# FineWeb
# --------------------------------------------------------------------------------------------------

FINEWEB_FIELDS = SCORE_GROUPS["fineweb"]


def fineweb_scores(text: str, short_line_chars: int) -> Scores:
    """FineWeb's measures of one text, over its non-blank lines (None without any)."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return dict.fromkeys(FINEWEB_FIELDS)
    n = len(lines)
    return {
        "line_punct_frac": sum(line[-1] in SENTENCE_END for line in lines) / n,
        "short_line_frac": sum(len(line) <= short_line_chars for line in lines) / n,
        "dup_char_frac": _duplicates(lines)[1] / len(text.replace("\n", "")),
        "newline_word_ratio": (n - 1) / len(tokens(text)),
    }


class FineWebRules(_TextRules):
    """FineWeb's own rules: drops documents whose lines mostly do not end a sentence, are mostly
    short, repeat each other, or that have many lines per word (lists, menus)."""

    name = "fineweb"
    fields = FINEWEB_FIELDS

    def __init__(self, cfg: FineWebConfig):
        super().__init__()
        self.cfg = cfg

    def rules(self) -> list[Rule]:
        c = self.cfg
        return [
            ("fineweb_line_punct_frac", "line_punct_frac", c.min_line_punct_frac, False),
            ("fineweb_short_line_frac", "short_line_frac", c.max_short_line_frac, True),
            ("fineweb_dup_char_frac", "dup_char_frac", c.max_dup_char_frac, True),
            ("fineweb_newline_word_ratio", "newline_word_ratio", c.max_newline_word_ratio, True),
        ]

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not self.cfg.enabled or not batch.num_rows:
            return batch
        short = self.cfg.short_line_chars
        per_doc = [None if t is None else fineweb_scores(t, short) for t in _texts_to_score(batch)]
        return self._score_and_mark(batch, per_doc)
