"""HTML → main-content text blocks and images in reading order.

One lexbor parse (selectolax), one iterative walk in Python, then cheap arithmetic on what the
walk recorded. Runs at about the speed of resiliparse's C++ ``extract_plain_text`` and scores
higher than trafilatura on the development sets of ``bench/extract_sets.py`` (Readability's pages,
the article-extraction benchmark, hand-labelled pages of real WARC captures; see
``bench/extract_bench.py`` and docs/EXTRACTION.md).

The modules, in the order a page goes through them:

* ``page.py`` — ``extract_html``: parse, title, ``<base href>``, the strict/relaxed passes and the
  whole-page fallback for pages without prose (listings, tables of figures);
* ``walk.py`` — the walk: element records and the event stream (text runs, block boundaries,
  ``<br>``, images), with the record layouts; ``nesting_exceeds``, the pre-parse depth guard;
* ``tags.py``, ``boilerplate.py`` — what each tag is; boilerplate/weight verdicts from
  tag, class, id and role, and hidden elements;
* ``stats.py`` — prefix sums over the event stream (subtree totals in O(1));
* ``main_content.py`` — readability-like scoring, the top candidate and its siblings, the retry
  loop; ``cleaning.py`` — conditional cleaning inside the chosen content;
* ``images.py`` — ``ImageRef``: URL (srcset, lazy-load attributes, ``<picture>``), declared size,
  alt;
* ``assemble.py`` — the kept events → text blocks and images, with the caps of ``ExtractConfig``;
  repeated captions, datelines and photo credits (``lines.py``) and headings left without a
  section are dropped there.
"""

# _best_from_srcset and _declared_too_small: private helpers that bench/extract_bench.py imports.
from pipeline.extract.images import MAX_IMAGE_SIDE, ImageRef
from pipeline.extract.images import _best_from_srcset as _best_from_srcset
from pipeline.extract.images import _declared_too_small as _declared_too_small
from pipeline.extract.page import Extraction, extract_html
from pipeline.extract.walk import MAX_DEPTH, nesting_exceeds

__all__ = ["MAX_DEPTH", "MAX_IMAGE_SIDE", "Extraction", "ImageRef", "extract_html", "nesting_exceeds"]
