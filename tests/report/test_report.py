"""`loom report`: the demo's output as one offline HTML page, and the errors on what is not an output."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.storage import Storage
from report import REPORT, ReportError, build_report
from report.collect import collect

SECTIONS = ("summary", "funnel", "tokens", "images", "scores", "dedup", "mixture", "samples", "dropped")


@pytest.fixture(scope="module")
def report(demo_result: Path, tmp_path_factory) -> tuple[Path, str]:
    """The report of a copy of the demo's output (the copy: so that no other test sees it change)."""
    root = tmp_path_factory.mktemp("report") / "result"
    shutil.copytree(demo_result, root)
    result = build_report(Storage(str(root)))
    assert result.path == str(root / REPORT)
    return root, (root / REPORT).read_text(encoding="utf-8")


def test_the_report_has_every_section_and_stays_one_small_offline_file(report):
    root, html = report
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    assert len(html.encode()) < 3_000_000  # bins, not points: the bulk is Bokeh's own JavaScript
    # nothing is fetched when it opens: no script, stylesheet or image from elsewhere
    assert not re.search(r'<script[^>]+src=|<link[^>]+href=|<img[^>]+src="(?!data:)', html)
    assert 'id="missing"' not in html  # the demo's output has everything the report reads


def test_every_filter_score_is_drawn_over_the_documents_that_reached_its_filter(demo_result):
    data = collect(Storage(str(demo_result)))
    by_score = {d.score: d for d in data.scores}
    assert {"language_score", "words", "dup_para_frac", "c4_sentences", "line_punct_frac"} <= set(by_score)
    # the demo has a page of repeated paragraphs: Gopher drops it, and its score is in the histogram,
    # beyond the threshold, although the document is not among the kept ones
    dist = by_score["dup_para_frac"]
    [threshold] = dist.thresholds
    assert threshold["reason"] == "gopher_dup_para_frac" and threshold["removed"] >= 1
    edges, counts = np.array(dist.hist.edges), np.array(dist.hist.counts)
    assert counts[edges[:-1] >= threshold["value"]].sum() >= threshold["removed"]
    filters = data.stats["steps"]["filters"]["extra"]["filters"]
    assert dist.reached == filters["gopher_repetition"]["in"]  # kept + dropped there or later


def test_the_sample_browser_shows_kept_documents_with_their_images_inline(report):
    _, html = report
    samples = html.count('<div class="doc sample">')
    assert samples == 12
    for kind in ("text", "pair", "interleaved"):
        assert f'<div class="head"><b>{kind}</b>' in html
    assert html.count('<img src="data:image/jpeg;base64,') >= 1  # the pairs' images, from the shard bytes


def test_dropped_documents_are_shown_by_reason_with_their_url_and_detail(report):
    _, html = report
    assert 'id="drop-filters-gopher-dup-para-frac"' in html
    assert '<td class="note">demo-pairs · pair 1</td>' in html  # each reason by source and kind
    assert 'href="#drop-filters-gopher-dup-para-frac">examples</a>' in html
    assert "&#34;threshold&#34;: 0.3" in html or "&quot;threshold&quot;: 0.3" in html


def test_a_folder_that_is_not_an_output_is_a_one_line_error(tmp_path):
    with pytest.raises(ReportError, match="not a Loom output"):
        build_report(Storage(str(tmp_path)))
    (tmp_path / "work").mkdir()
    with pytest.raises(ReportError, match="has not finished"):
        build_report(Storage(str(tmp_path)))


def test_an_output_of_another_format_version_is_refused(demo_result, tmp_path):
    stats = json.loads((demo_result / "stats.json").read_text())
    (tmp_path / "stats.json").write_text(json.dumps(stats | {"format_version": 3}))
    with pytest.raises(ReportError, match="format v3; this Loom reads v"):
        build_report(Storage(str(tmp_path)))


def test_an_output_without_its_work_folder_says_which_sections_it_could_not_build(demo_result, tmp_path):
    for name in ("stats.json", "job.json", "manifest.parquet"):
        shutil.copy(demo_result / name, tmp_path / name)
    shutil.copytree(demo_result / "shards", tmp_path / "shards")
    result = build_report(Storage(str(tmp_path)))
    missing = " ".join(result.missing)
    assert "token lengths: no work/tokens/*.parquet" in missing
    html = (tmp_path / REPORT).read_text()
    assert '<section id="missing">' in html and "token lengths" in html
    assert result.samples == 12  # the shards are there: the sample browser is not lost


def test_the_job_writes_its_report_and_loom_stats_points_at_it(demo_result, capsys):
    from jobs.cli import main

    assert (demo_result / REPORT).stat().st_size > 100_000  # [report] enabled = true: run_job wrote it
    assert main(["stats", str(demo_result)]) == 0
    assert f"report: {demo_result / REPORT}" in capsys.readouterr().out


def test_loom_report_rebuilds_it_or_says_in_one_line_why_not(report, tmp_path, capsys):
    from jobs.cli import main

    root, _ = report
    assert main(["report", str(root), "--samples", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"report: {root / REPORT}   (") and "MB" in out
    assert (root / REPORT).read_text().count('<div class="doc sample">') == 3

    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("loom: error: ") and "not a Loom output" in err
