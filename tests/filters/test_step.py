"""The filters step in the job: the demo WARC's planted pages go, with their rule and score, and the
scores of every kept document stay in ``meta.scores`` of the shards."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from filters.step import ORDER, filter_stages
from jobs.demo import (
    CONTACT_IP,
    DEMO_SPEC,
    FILTERED_KINDS,
    Kind,
    benchmark_id,
    build_demo_corpus,
    demo_filters,
    demo_plan,
    quoted_item,
)
from jobs.run import run_job
from jobs.spec import load_job, parse_job
from pipeline.stage import apply_stages
from pipeline.storage import Storage
from shards.config import MixConfig
from shards.inspect import read_samples
from shards.stats import filter_rows, render_stats


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The demo job on its WARC (120 pages), in this process."""
    out = tmp_path_factory.mktemp("filters")
    warc = build_demo_corpus(out / "input", pages=120)
    spec = load_job(DEMO_SPEC, output=str(out / "result"))
    cc = spec.sources[0].model_copy(update={"paths": [str(warc)]})
    no_clip = spec.clip.model_copy(update={"enabled": False})  # the demo WARC's images are not fetched
    spec = spec.model_copy(
        update={
            "sources": [cc],
            "filters": demo_filters(spec.filters, out / "input"),
            "clip": no_clip,
            "mix": MixConfig(),  # no pairs here: no training mixture (tests/shards/test_mix.py)
        }
    )
    run_job(spec, use_ray=False)
    return out / "result"


def ledger(result: Path, suffix: str) -> list[dict]:
    return [
        row
        for f in sorted((result / "work/filters").glob(f"*{suffix}"))
        for row in pq.read_table(f).to_pylist()
    ]


def test_the_planted_pages_go_each_by_its_filter(demo_run):
    plan = demo_plan(120)
    planted = {c.url: c for c in plan.captures if c.kind in FILTERED_KINDS}
    dropped = {row["url"]: row for row in ledger(demo_run, ".ledger.parquet")}
    assert set(dropped) == set(planted)  # nothing else: the articles pass every filter
    reasons = {url: (row["stage"], row["reason"]) for url, row in dropped.items()}
    spam = plan.by_kind(Kind.SPAM)
    quotes = plan.by_kind(Kind.CONTAMINATED)
    assert reasons == {
        plan.by_kind(Kind.FOREIGN)[0].url: ("language", "language_not_allowed"),
        plan.by_kind(Kind.BOILERPLATE)[0].url: ("gopher_repetition", "gopher_dup_para_frac"),
        spam[0].url: ("url_blocklist", "url_gambling"),  # a subdomain of the listed domain
        spam[1].url: ("lexicon", "lexicon_ratio"),
        quotes[0].url: ("decontaminate", "decontaminate"),
        quotes[1].url: ("decontaminate", "decontaminate"),
    }
    for ordinal, page in enumerate(quotes):  # the ledger names the benchmark item each one quotes
        detail = json.loads(dropped[page.url]["detail"])
        assert (detail["file"], detail["item"]) == ("benchmark.jsonl", benchmark_id(quoted_item(ordinal)))
        assert detail["ngrams"] >= 7 and detail["items"] == 1
    german = json.loads(dropped[plan.by_kind(Kind.FOREIGN)[0].url]["detail"])
    assert german["language"] == "de" and german["score"] > 0.9
    teaser = json.loads(dropped[plan.by_kind(Kind.BOILERPLATE)[0].url]["detail"])
    assert teaser["score"] > teaser["threshold"] == 0.3


def test_the_pages_that_quote_the_benchmark_pass_every_other_filter(demo_run):
    """Without decontamination the two quiz pages would be kept: every other filter passes them."""
    quotes = {c.url for c in demo_plan(120).by_kind(Kind.CONTAMINATED)}
    docs = pq.read_table(next((demo_run / "work/documents").glob("demo-*[0-9].parquet")))
    docs = docs.filter(pc.is_in(docs["url"], value_set=pa.array(sorted(quotes))))
    assert docs.num_rows == 2
    spec = load_job(DEMO_SPEC, output=str(demo_run))
    cfg = demo_filters(spec.filters, demo_run.parent / "input")
    others = [st for st in filter_stages(cfg) if st.name != "decontaminate"]
    assert len(others) == len(filter_stages(cfg)) - 1
    assert apply_stages(docs, others, "filters").dropped.num_rows == 0


def test_kept_documents_carry_their_scores_into_the_shards(demo_run):
    samples = [
        doc
        for name in sorted(p.name for p in (demo_run / "shards").glob("*.tar"))
        for doc in read_samples(Storage(str(demo_run / "shards")), name)
    ]
    assert samples
    for doc in samples:
        scores = doc["meta"]["scores"]
        assert doc["meta"]["language"] == "en" and scores["language_score"] >= 0.65
        assert scores["quality"] >= 0.5  # the demo's threshold: re-thresholding needs no model
        assert scores["words"] >= 50 and scores["dup_para_frac"] <= 0.3


def test_pii_is_redacted_in_the_kept_contact_page(demo_run):
    [contact] = demo_plan(120).by_kind(Kind.CONTACT)
    docs = pq.read_table(next((demo_run / "work/filters").glob("demo-*[0-9].parquet")))
    [row] = docs.filter(pc.equal(docs["url"], contact.url)).to_pylist()
    text = "\n".join(t for t in row["texts"] if t)
    assert "<EMAIL>" in text and "<IP>" in text
    assert "@" not in text and CONTACT_IP not in text


def test_removed_paragraphs_are_ledgered_and_counted_in_the_scores(demo_run):
    blocks = ledger(demo_run, ".blocks.parquet")
    assert blocks and all(
        row["stage"] == "node_rules" and row["reason"].startswith("node_") for row in blocks
    )
    per_doc = Counter(row["id"] for row in blocks)
    docs = pq.read_table(next((demo_run / "work/filters").glob("demo-*[0-9].parquet"))).to_pylist()
    for doc in docs:
        assert (doc["meta"]["scores"]["blocks_dropped"] or 0) == per_doc.get(doc["id"], 0)


def test_stats_show_retention_per_filter_in_run_order(demo_run):
    stats = json.loads((demo_run / "stats.json").read_text())
    step = stats["steps"]["filters"]
    rows = filter_rows(step)
    assert [r["filter"] for r in rows] == [n for n in ORDER if n != "nsfw"]  # no NSFW model in the demo
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["in"] == before["out"]
    assert rows[0]["in"] == step["rows_in"] and rows[-1]["out"] == step["rows_out"]
    assert step["extra"]["counters"]["pii_email"] == 1
    console = Console(width=120, record=True)
    render_stats(stats, console)
    text = console.export_text()
    assert "Filters" in text and "url_blocklist" in text and "node_min_words" in text


def test_the_real_cc_excerpt_keeps_its_three_ordinary_pages(shared_data, tmp_path):
    """The 16 pages of the CC-MAIN-2020-34 excerpt through every default rule, LDNOOBW plus Loom's
    gambling list and the partial UT1 blocklist. The lexicon reads the pages before the quality rules
    edit them, so the porn and lottery pages go as `lexicon_ratio`; the other spam and the thin
    pages go by the Gopher and C4 rules. The blocklist flags none: the partial UT1 list holds neither
    these numeric hosts nor an adult `domains` file (tests/filters/test_urls.py tests it on LAION)."""
    data = shared_data
    spec = parse_job(
        {
            "output": str(tmp_path / "out"),
            "sources": [{"paths": [str(data / "warc/resiliparse/warcfile.warc.gz")]}],
            "images": {"fetch": False},
            "filters": {
                "lexicon": {"paths": [str(data / "safety/ldnoobw"), "loom:gambling"]},
                "url_blocklist": {"path": str(data / "safety/ut1-partial")},
            },
        },
        base_dir=tmp_path,
    )
    run_job(spec, use_ray=False)
    dropped = {
        row["url"]: (row["stage"], row["reason"]) for row in ledger(tmp_path / "out", ".ledger.parquet")
    }
    assert {url for url, (stage, _) in dropped.items() if stage == "lexicon"} == {
        "http://041696.com/15477/list_6_4.html",  # Mark Six tips
        "http://0513mt.com/index.php/art/detail/id/8884.html",  # an explicit story
        "http://05925.net/index.php/vod/type/id/53.html",  # a porn video listing
        "http://077678u.info/erxiaoshujinguang/list_6_2.html",  # lottery "tips"
        "http://096355.com/video/11073.html?11073-0-2",  # a porn title over a "share" line
    }
    assert not any(stage == "url_blocklist" for stage, _ in dropped.values())
    assert dropped["http://0760.jxtdw.com/area/sanxiang/"] == ("gopher_repetition", "gopher_dup_para_frac")
    kept = pq.read_table(next((tmp_path / "out/work/filters").glob("*[0-9].parquet")))
    assert sorted(kept["url"].to_pylist()) == [
        "http://01spb.ru/company/",
        "http://037426.cn/",  # a chemicals company under a hijacked title
        "http://0900-hovenier.nl/gelderland/oosterbeek/",
    ]
    assert [m["language"] for m in kept.sort_by("url")["meta"].to_pylist()] == ["ru", "en", "nl"]


def test_a_dropped_document_keeps_its_scores_in_the_ledger(tmp_path):
    """The ledger row of a document a filter dropped holds the scores measured up to that filter,
    so a report can draw each score over every document that reached its filter."""
    import pyarrow as pa

    from pipeline.schema import DOC_SCHEMA, SCORES_TYPE
    from pipeline.stage import split_dropped

    scores = {f.name: None for f in SCORES_TYPE} | {"words": 3.0, "stop_words": 0.0}
    doc = {
        "id": "d1",
        "source": "s",
        "kind": "text",
        "url": "https://example.org/",
        "texts": ["too short"],
        "images": [None],
        "meta": {"scores": scores},
        "_drop_reason": "gopher_min_words",
        "_drop_detail": '{"score": 3, "threshold": 50}',
    }
    schema = DOC_SCHEMA.append(pa.field("_drop_reason", pa.string())).append(
        pa.field("_drop_detail", pa.string())
    )
    out = split_dropped(pa.Table.from_pylist([doc], schema=schema), "filters", "gopher_quality")
    [row] = out.dropped.to_pylist()
    assert (row["reason"], row["scores"]["words"], row["scores"]["stop_words"]) == (
        "gopher_min_words",
        3.0,
        0.0,
    )
    assert row["scores"]["quality"] is None  # not measured before the drop
