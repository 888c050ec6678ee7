"""The extraction development sets and how each is scored (used by ``extract_bench.py`` and the tests).

Three sets of real pages, all read from ``../shared/data`` (nothing is copied into the project):

* ``readability`` — the 130 Mozilla Readability test pages; gold: the text of ``expected.html``
  (main content, images in reading order). Loom's extractor was first tuned on these.
* ``articles`` — the 181 news and article pages of the article-extraction benchmark (many sites,
  many languages); gold: each page's ``articleBody``.
* ``warc`` — pages cut from the real captures in ``warc/`` (Common Crawl, a wget capture of
  academic sites, iana.org), hand-labelled in ``bench/extract_sets/warc_snippets_*.json``: for each
  page, snippets of main text a good extractor must output (``with``) and snippets of boilerplate it
  must not (``without``), with the page's type (front page, listing, profile, table, spam, …).

Every set is split once, by a hash of the page's name, into a **dev** part (two thirds: the pages
the extractor may be tuned on) and a **held-out** part (one third: pages nobody looks at while
tuning; their figures say whether a gain is real). ``readability`` is all dev: it was tuned on.

Scores:

* token sets (``readability``, ``articles``): bag-of-tokens precision / recall / F1 of the text
  against the gold text (lowercase ``\\w+`` tokens, multiset overlap), macro-averaged over pages;
* snippet sets (``warc``): each ``with`` snippet found in the text is a true positive, each one
  missing a false negative, each ``without`` snippet found a false positive; precision and recall
  are summed over the pages (micro), as trafilatura's own evaluation does. Matching is on text with
  whitespace runs collapsed to one space.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data"
READABILITY_DIR = DATA_DIR / "html" / "readability" / "test-pages"
ARTICLES_DIR = DATA_DIR / "html" / "article-extraction-benchmark"
SNIPPETS_DIR = Path(__file__).resolve().parent / "extract_sets"
#: The page URL Readability's test-suite resolves relative links against.
READABILITY_URL = "http://fakehost/test/page.html"
HELD_OUT_SHARE = 3  # one page in three is held out
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Page:
    """One page of a development set: its raw bytes and what a good extraction holds."""

    name: str
    source: bytes  # the raw HTML bytes, as served
    url: str
    http_charset: str | None = None
    expected: str = ""  # gold text (token sets)
    expected_html: str = ""  # readability's expected.html (for the image checks)
    with_: tuple[str, ...] = ()  # snippet sets: main text that must be output
    without: tuple[str, ...] = ()  # snippet sets: boilerplate that must not
    page_type: str = ""
    held_out: bool = False


@dataclass
class DevSet:
    name: str
    scoring: str  # "tokens" or "snippets"
    pages: list[Page] = field(default_factory=list)

    def part(self, held_out: bool) -> list[Page]:
        return [p for p in self.pages if p.held_out == held_out]


def held_out(name: str) -> bool:
    """The fixed dev / held-out split: a hash of the page's name, one page in three held out."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % HELD_OUT_SHARE == 0


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def load_readability(pages_dir: Path = READABILITY_DIR) -> DevSet:
    """The Readability pages, sorted by name; all dev (they were tuned on)."""
    out = DevSet("readability", "tokens")
    if not pages_dir.is_dir():
        return out
    for d in sorted(p for p in pages_dir.iterdir() if (p / "source.html").is_file()):
        expected = (d / "expected.html").read_text(encoding="utf-8", errors="replace")
        source = (d / "source.html").read_bytes()
        out.pages.append(Page(d.name, source, READABILITY_URL, None, gold_text(expected), expected))
    return out


def load_articles(root: Path = ARTICLES_DIR) -> DevSet:
    """The article-extraction benchmark: pages and their ``articleBody``, split dev / held out."""
    out = DevSet("articles", "tokens")
    truth_file = root / "ground-truth.json"
    if not truth_file.is_file():
        return out
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    for key in sorted(truth):
        path = root / "html" / f"{key}.html.gz"
        if path.is_file():
            body = gzip.decompress(path.read_bytes())
            item = truth[key]
            out.pages.append(
                Page(key, body, item.get("url") or "", expected=item["articleBody"], held_out=held_out(key))
            )
    return out


def load_snippets(data_dir: Path = DATA_DIR, snippets_dir: Path = SNIPPETS_DIR) -> DevSet:
    """The hand-labelled pages of the WARC captures (pages whose capture is absent are left out)."""
    from pipeline.config import ExtractConfig
    from pipeline.sources.commoncrawl import read_archive

    out = DevSet("warc", "snippets")
    labels: list[dict] = []
    for path in sorted(snippets_dir.glob("warc_snippets_*.json")):
        labels += json.loads(path.read_text(encoding="utf-8"))
    by_capture: dict[str, dict[str, dict]] = {}
    for label in labels:
        by_capture.setdefault(label["capture"], {})[label["uri"].strip("<>")] = label
    for capture, wanted in sorted(by_capture.items()):
        path = data_dir / capture
        if not path.is_file():
            continue
        for row in read_archive(str(path), ExtractConfig().max_page_bytes, Counter()):
            label = wanted.pop(row["url"].strip("<>"), None)
            if label is None or not row.get("body"):
                continue
            name = f"{capture}#{row['url']}"
            out.pages.append(
                Page(
                    name,
                    row["body"],
                    row["url"].strip("<>"),
                    row["http_charset"],
                    with_=tuple(label["with"]),
                    without=tuple(label["without"]),
                    page_type=label["page_type"],
                    held_out=held_out(name),
                )
            )
        if wanted:
            raise ValueError(f"labelled pages not found in {capture}: {sorted(wanted)}")
    out.pages.sort(key=lambda p: p.name)
    return out


def load_all() -> list[DevSet]:
    return [load_readability(), load_articles(), load_snippets()]


def decode(page: Page) -> str:
    """Bytes → str the way Loom's WARC path does it (HTTP charset, ``<meta>``, detection)."""
    from pipeline.sources.commoncrawl import decode_html

    return decode_html(page.source, page.http_charset)[0]


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------

_BLOCK_TAG = re.compile(
    r"(</?(?:p|div|section|article|li|ul|ol|dl|dt|dd|h[1-6]|br|hr|tr|td|th|table|pre|blockquote"
    r"|figure|figcaption|header|footer|aside|nav|main|details|summary|caption|address)\b)",
    re.IGNORECASE,
)


def gold_text(expected_html: str) -> str:
    """The text of Readability's expected.html.

    A space goes before every block-level tag, and inline boundaries add nothing, so that
    "<p>a</p><p>b</p>" gives two words and a drop cap "<span>Z</span>imbabwe" gives one.
    """
    tree = LexborHTMLParser(_BLOCK_TAG.sub(r" \1", expected_html))
    node = tree.body or tree.root
    return node.text(separator="") if node is not None else ""


def tokens(text: str) -> Counter:
    """Lowercase ``\\w+`` tokens as a bag."""
    return Counter(_WORD.findall(text.lower()))


def token_prf(pred: str, gold: str) -> tuple[float, float, float]:
    """Bag-of-tokens precision, recall and F1 of ``pred`` against ``gold``.

    Empty vs empty is a perfect score; empty vs non-empty scores 0.
    """
    p_tok, g_tok = tokens(pred), tokens(gold)
    n_pred, n_gold = sum(p_tok.values()), sum(g_tok.values())
    if not n_pred or not n_gold:
        same = float(n_pred == n_gold)
        return same, same, same
    overlap = sum((p_tok & g_tok).values())
    p, r = overlap / n_pred, overlap / n_gold
    return p, r, (2 * p * r / (p + r) if overlap else 0.0)


def squeeze(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def snippet_counts(pred: str, page: Page) -> tuple[int, int, int]:
    """(true positives, false negatives, false positives) of one page's snippets in ``pred``."""
    text = squeeze(pred)
    tp = sum(1 for s in page.with_ if squeeze(s) in text)
    fp = sum(1 for s in page.without if squeeze(s) in text)
    return tp, len(page.with_) - tp, fp


def prf(tp: int, fn: int, fp: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score(dev_set: DevSet, pages: list[Page], texts: list[str]) -> tuple[float, float, float]:
    """Precision, recall and F1 of ``texts`` (one per page) on ``pages`` of ``dev_set``."""
    if not pages:
        return float("nan"), float("nan"), float("nan")
    if dev_set.scoring == "snippets":
        counts = [snippet_counts(t, p) for t, p in zip(texts, pages, strict=True)]
        return prf(*(sum(c[k] for c in counts) for k in range(3)))
    scores = [token_prf(t, p.expected) for t, p in zip(texts, pages, strict=True)]
    return tuple(sum(s[k] for s in scores) / len(scores) for k in range(3))  # type: ignore[return-value]
