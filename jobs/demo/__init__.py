"""The demo ``loom demo`` runs: a synthetic corpus, a pair table, their image server and the job.

Everything is generated, deterministically, with no network and no outside files:

* ``plan.py``: what the Common Crawl-like WARC holds, capture by capture (``demo_plan``);
* ``pages.py``: what its pages say (vocabulary, sites, articles and their images);
* ``bodies.py``: each capture's HTTP payload (the HTML with its boilerplate, PNGs, a PDF);
* ``warc.py``: the WARC file itself (``build_demo_corpus``);
* ``filters.py``: the pages planted for the filters, and the blocklist, lexicon, benchmark and
  quality corpus;
* ``pairs.py``: the generated images, the LAION-style pair table and the image server;
* ``job.py``: ``demo_job``, which puts them together with ``jobs/demo.toml``.
"""

from jobs.demo.bodies import PNG_SIGNATURE, make_png
from jobs.demo.filters import (
    CONTACT_IP,
    DEMO_BENCHMARK,
    DEMO_BLOCKLIST,
    DEMO_LEXICON,
    SPAM_SITES,
    benchmark_id,
    build_demo_benchmark,
    build_demo_filters,
    demo_quality_corpus,
    quoted_item,
)
from jobs.demo.job import DEMO_SPEC, demo_clip, demo_filters, demo_job
from jobs.demo.pages import Article, Heading, PlannedImage, Site
from jobs.demo.pairs import IMAGE_PORT, DemoPairs, build_demo_pairs, demo_server
from jobs.demo.plan import (
    DOCUMENT_KINDS,
    DROPPED_KINDS,
    FILTERED_KINDS,
    MIN_PAGES,
    Capture,
    DemoPlan,
    Kind,
    PngSpec,
    demo_plan,
)
from jobs.demo.warc import DEMO_WARC_NAME, build_demo_corpus

__all__ = [
    "CONTACT_IP",
    "DEMO_BENCHMARK",
    "DEMO_BLOCKLIST",
    "DEMO_LEXICON",
    "DEMO_SPEC",
    "DEMO_WARC_NAME",
    "DOCUMENT_KINDS",
    "DROPPED_KINDS",
    "FILTERED_KINDS",
    "IMAGE_PORT",
    "MIN_PAGES",
    "PNG_SIGNATURE",
    "SPAM_SITES",
    "Article",
    "Capture",
    "DemoPairs",
    "DemoPlan",
    "Heading",
    "Kind",
    "PlannedImage",
    "PngSpec",
    "Site",
    "benchmark_id",
    "build_demo_benchmark",
    "build_demo_corpus",
    "build_demo_filters",
    "build_demo_pairs",
    "demo_clip",
    "demo_filters",
    "demo_job",
    "demo_plan",
    "demo_quality_corpus",
    "demo_server",
    "make_png",
    "quoted_item",
]
