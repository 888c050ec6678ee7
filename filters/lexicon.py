"""The safety lexicon: how much of a document is on a list of obscene or offensive words.

C4 (Raffel et al. 2020) dropped every page holding a word of the LDNOOBW list ("List of Dirty,
Naughty, Obscene, and Otherwise Bad Words", a file per language), and mC4 did the same per language;
OBELICS and ROOTS use a ratio instead (flagged words / words), which keeps an anatomy article that
says "breast" twice. Loom writes both the count and the ratio (``meta.scores.lexicon_count`` /
``lexicon_ratio``) and drops on either threshold.

The lists (:class:`WordLists`) are files in the LDNOOBW format: one word or phrase per line, UTF-8, a
file per language named by its code (``en``, ``de``, ``zh``; ``fr-CA-u-sd-caqc`` counts as ``fr``);
a folder's other files (``README.md``, ``LICENSE``) are skipped. Entries and text are lowercased.

Matching:

* spaced languages match whole words: the text and every entry are split into tokens the same way
  (lowercased; punctuation and symbols other than emoji separate tokens, so "ass," and "S&M" match
  and "scunthorpe" or "classic" do not; runs of Chinese, Japanese, Thai, … are segmented into words
  apart from the Latin around them, so "sex" inside Chinese text is found), and an entry of several
  tokens ("2 girls 1 cup", "g-spot") matches that token sequence. Occurrences are counted
  leftmost-longest, without overlap: a set lookup per token, and per n-token window only where a
  token starts some phrase;
* Chinese, Japanese and Thai are not spaced: their entries holding a Han, kana or Thai character
  match as substrings (one compiled alternation per language, longest entries first, as mC4/C4 do),
  not as segmented words, whose boundaries need not be the list's (セックス inside a compound is
  still found); their plain ASCII entries ("3p", "xx") match as whole words like the spaced ones, so "xxl" or
  "2013." is not a hit. As in mC4 (and datatrove's C4 filter), "sm", "グロ", "女の子" and "性" are
  not flagged: each is a common part of ordinary words and alone flags more than 10% of documents.
  An entry made of digits only (zh "13.") is skipped for the same reason.

Which lists apply to a document: the list of its ``meta.language`` (the language stage runs earlier;
lid.176 codes, ``yue``/``wuu`` read as ``zh``, ``nb``/``nn`` as ``no``, ``tl`` as ``fil``) plus
``en`` always, since English spam turns up in pages of every language. A language with no list gets
``en`` only, and so does a document whose language is unknown: the union of every list would flag
ordinary words of other languages (French "con" is Spanish and Italian "with").

The ratio's words are :func:`filters.text.words` (whitespace-separated; Chinese, Japanese, Thai, Lao,
Khmer and Myanmar segmented into words by ICU's dictionaries), so it compares across languages as the
other filters' word counts do; a phrase counts as one occurrence.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from filters.base import doc_texts, drop_detail, mark_drops, meta_values, with_scores
from filters.config import LexiconConfig
from filters.text import has_cjk, words
from pipeline.stage import Resources

log = logging.getLogger(__name__)

#: Languages written without spaces between words: their script entries match as substrings.
SUBSTRING_LANGUAGES = frozenset({"zh", "ja", "th"})

#: Never flagged (mC4's allowlist): common parts of ordinary Japanese and Chinese words.
ALLOWLIST = frozenset({"sm", "グロ", "女の子", "性"})

#: The list that applies to every document, and alone to those of unknown or unlisted language.
DEFAULT_LANGUAGE = "en"

#: lid.176 codes read as the code of an LDNOOBW list.
ALIASES = {"yue": "zh", "wuu": "zh", "nb": "no", "nn": "no", "tl": "fil"}

#: How many distinct matched entries a drop detail shows.
DETAIL_ENTRIES = 5

#: A list file's name: a language code, optionally with a BCP 47 tail (``fr-CA-u-sd-caqc``).
_LIST_NAME = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]+)*")
_THAI = re.compile("[\u0e00-\u0e7f]")


@lru_cache(maxsize=1)
def _separators() -> re.Pattern[str]:
    """Runs of punctuation marks and math/currency/modifier symbols of the Basic Multilingual Plane
    (emoji and other symbols stay part of tokens): one character class of code-point ranges."""
    codes = [
        c
        for c in range(0x10000)
        if (cat := unicodedata.category(chr(c)))[0] == "P" or cat in ("Sm", "Sc", "Sk")
    ]
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    members = "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "") for a, b in ranges)
    return re.compile(f"[{members}]+")


def tokens(text: str) -> list[str]:
    """The lowercased tokens of ``text`` that list entries are matched against."""
    return words(_separators().sub(" ", text.lower()))


def language_code(language: str | None) -> str | None:
    """The LDNOOBW list code of a language label: ``fr-CA-u-sd-caqc`` → ``fr``, ``yue`` → ``zh``."""
    if not language:
        return None
    code = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    return ALIASES.get(code, code)


def _is_substring_entry(entry: str, language: str) -> bool:
    return language in SUBSTRING_LANGUAGES and (has_cjk(entry) or _THAI.search(entry) is not None)


@dataclass(frozen=True)
class _Matcher:
    """The entries of one or more lists, arranged for matching."""

    words: dict[str, str]  # one-token entries: token → the entry as listed
    phrases: dict[str, str]  # entries of several tokens: tokens joined by one space → the entry
    starts: frozenset[str]  # the first token of each phrase
    longest: int  # the most tokens in a phrase
    substrings: re.Pattern[str] | None  # CJK and Thai entries

    @classmethod
    def build(cls, lists: dict[str, frozenset[str]], languages: Iterable[str]) -> _Matcher:
        singles: dict[str, str] = {}
        phrases: dict[str, str] = {}
        substrings: set[str] = set()
        for language in languages:
            for entry in lists.get(language, ()):
                if _is_substring_entry(entry, language):
                    substrings.add(entry)
                    continue
                parts = tokens(entry)
                if not parts or all(p.isdigit() for p in parts):
                    continue
                (phrases if len(parts) > 1 else singles).setdefault(" ".join(parts), entry)
        pattern = None
        if substrings:
            ordered = sorted(substrings, key=lambda e: (-len(e), e))
            pattern = re.compile("|".join(re.escape(e) for e in ordered))
        return cls(
            words=singles,
            phrases=phrases,
            starts=frozenset(p.split(" ", 1)[0] for p in phrases),
            longest=max((p.count(" ") + 1 for p in phrases), default=1),
            substrings=pattern,
        )

    def find(self, text: str) -> list[str]:
        """Every occurrence in ``text``, as the entry that matched, in order of kind then position."""
        found: list[str] = []
        toks = tokens(text)
        i, n = 0, len(toks)
        while i < n:
            tok = toks[i]
            size = 0
            if tok in self.starts:
                for k in range(min(self.longest, n - i), 1, -1):
                    entry = self.phrases.get(" ".join(toks[i : i + k]))
                    if entry is not None:
                        found.append(entry)
                        size = k
                        break
            if not size and tok in self.words:
                found.append(self.words[tok])
                size = 1
            i += size or 1
        if self.substrings is not None:
            found.extend(self.substrings.findall(text.lower()))
        return found


class WordLists:
    """Word lists by language (LDNOOBW format), with the matching rules of the module docstring."""

    def __init__(self, lists: dict[str, frozenset[str]]):
        self.lists = {
            code: frozenset(e for e in entries if e not in ALLOWLIST) for code, entries in lists.items()
        }
        self._matchers: dict[str | None, _Matcher] = {}

    @classmethod
    def load(cls, paths: list[str]) -> WordLists:
        """The lists in ``paths`` (files named by language code, or folders of them); read once
        per process for the same paths."""
        return _load(tuple(str(p) for p in paths))

    @classmethod
    def read(cls, paths: Iterable[str]) -> WordLists:
        """Read the lists in ``paths`` (no cache; :meth:`load` is the cached way). ``loom:<name>``
        is a list Loom ships (:func:`builtin_list`), found where this process has Loom installed."""
        paths = [builtin_list(p.removeprefix("loom:")) if p.startswith("loom:") else p for p in paths]
        entries: dict[str, set[str]] = {}
        for path in map(Path, paths):
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.is_file() and _LIST_NAME.fullmatch(p.name))
            elif path.is_file():
                if not _LIST_NAME.fullmatch(path.name):
                    raise ValueError(
                        f"{path}: a word list file is named by its language code (en, de, zh, …)"
                    )
                files = [path]
            else:
                raise FileNotFoundError(f"word list not found: {path}")
            for file in files:
                code = language_code(file.name)
                assert code is not None
                with file.open(encoding="utf-8") as f:
                    entries.setdefault(code, set()).update(line.strip().lower() for line in f if line.strip())
        if not entries:
            raise ValueError(f"no word lists in {', '.join(map(str, paths))}")
        return cls({code: frozenset(words) for code, words in entries.items()})

    def languages_for(self, language: str | None) -> tuple[str, ...]:
        """The lists that apply to a document of ``language``: its own plus ``en``."""
        code = language_code(language)
        chosen = [DEFAULT_LANGUAGE] if DEFAULT_LANGUAGE in self.lists else []
        if code and code in self.lists and code != DEFAULT_LANGUAGE:
            chosen.append(code)
        return tuple(chosen)

    def _matcher(self, language: str | None) -> _Matcher:
        code = language_code(language)
        matcher = self._matchers.get(code)
        if matcher is None:
            matcher = self._matchers[code] = _Matcher.build(self.lists, self.languages_for(code))
        return matcher

    def find(self, text: str, language: str | None) -> list[str]:
        """The entries found in ``text``, one per occurrence."""
        return self._matcher(language).find(text)

    def count(self, text: str, language: str | None) -> tuple[int, int]:
        """(flagged occurrences, words) of ``text`` (words: :func:`filters.text.words`)."""
        return len(self.find(text, language)), len(words(text))


@lru_cache(maxsize=8)
def _load(paths: tuple[str, ...]) -> WordLists:
    lists = WordLists.read(paths)
    sizes = ", ".join(f"{code} {len(entries)}" for code, entries in sorted(lists.lists.items()))
    log.info("lexicon: %d lists from %s (%s)", len(lists.lists), ", ".join(paths), sizes)
    return lists


#: The word lists Loom ships: ``loom:<name>`` in ``[filters.lexicon] paths`` (filters/lists/README.md).
LISTS_DIR = Path(__file__).resolve().parent / "lists"


def builtin_list(name: str) -> str:
    """The folder of a list Loom ships, e.g. ``gambling``."""
    folder = LISTS_DIR / name
    if not folder.is_dir() or not name.isidentifier():
        shipped = ", ".join(sorted(p.name for p in LISTS_DIR.iterdir() if p.is_dir()))
        raise ValueError(f"loom:{name}: no such list (Loom ships: {shipped})")
    return str(folder)


class Lexicon:
    """Stage: writes ``lexicon_count`` and ``lexicon_ratio`` for every document (pair captions too)
    and drops the ones over ``max_ratio`` (reason ``lexicon_ratio``) or ``max_count``
    (``lexicon_count``). The lists load on the first batch, once per process.

    A page is read with its title (``meta.title``) before its text: spam sites often keep their
    spam in the title while the main text the extractor keeps is a disclaimer or a copyright line."""

    name = "lexicon"
    resources = Resources(cpus=1)

    def __init__(self, cfg: LexiconConfig):
        self.cfg = cfg

    def __call__(self, table: pa.Table) -> pa.Table:
        if not self.cfg.paths or not table.num_rows:
            return table
        lists = WordLists.load(self.cfg.paths)
        languages, titles = meta_values(table, "language"), meta_values(table, "title")
        texts = [
            f"{title}\n\n{text}" if title else text
            for title, text in zip(titles, doc_texts(table), strict=True)
        ]
        counts: list[int] = []
        ratios: list[float | None] = []
        reasons: list[str | None] = []
        details: list[str | None] = []
        for text, language in zip(texts, languages, strict=True):
            found = lists.find(text, language)
            total = len(words(text))
            count = len(found)
            ratio = count / total if total else None
            counts.append(count)
            ratios.append(ratio)
            reason, detail = self._judge(count, ratio, found)
            reasons.append(reason)
            details.append(detail)
        table = with_scores(table, {"lexicon_count": counts, "lexicon_ratio": ratios})
        if any(reasons):
            table = mark_drops(table, reasons, details)
        return table

    def _judge(self, count: int, ratio: float | None, found: list[str]) -> tuple[str | None, str | None]:
        shown = list(dict.fromkeys(found))[:DETAIL_ENTRIES]
        max_ratio, max_count = self.cfg.max_ratio, self.cfg.max_count
        if max_ratio is not None and ratio is not None and ratio > max_ratio:
            return "lexicon_ratio", drop_detail(ratio, max_ratio, words=shown)
        if max_count is not None and count > max_count:
            return "lexicon_count", drop_detail(count, max_count, words=shown)
        return None, None
