"""``loom stats``: the tables a data engineer reads after a run."""

from __future__ import annotations

import json
import re

import pytest
from rich.console import Console

from jobs.cli import main
from shards.stats import render_stats


def step(rows_in, rows_out, drops=None, skipped=None, extra=None):
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "drops": drops or {},
        "skipped": skipped or {},
        "seconds": 1.0,
        "wall_seconds": 1.0,
        "parts": 1,
        "extra": extra or {},
    }


def shard_totals(samples, images=0, **kinds):
    return {
        "count": 1,
        "samples": samples,
        "documents": {"text": 0, "pair": 0, "interleaved": 0, **kinds},
        "images": images,
        "image_files": images,
        "tokens": 0,
        "bytes": 500_000,
    }


def test_the_images_step_gets_its_own_table():
    stats = {
        "job": "demo",
        "fingerprint": "f",
        "loom_version": "0.1.0",
        "format_version": 2,
        "seconds": 3.0,
        "step_order": ["documents", "images", "image_table"],
        "steps": {
            "documents": step(36, 34, {"bad_url": 1, "empty_caption": 1}),
            "images": step(
                30,
                25,
                {"http_404": 2, "not_image": 1, "decode_error": 1, "noai": 1},
                {"duplicate_url": 4},
                {"image_refs": 34, "retryable": 0, "fetched_images": 25},
            ),
            "image_table": step(25, 25, extra={"distinct_images": 25, "image_bytes": 397_619}),
        },
        "shards": shard_totals(29, images=29, pair=29),
    }
    console = Console(record=True, width=200)
    render_stats(stats, console)
    text = console.export_text()
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if "│" in line]
    assert ["images", "1", "30", "25", "83.3", "5", "1.0", "1.0", "0"] in rows  # the steps table
    assert ["images", "skipped", "duplicate_url", "4"] in rows  # drops and skips by reason
    assert ["34", "30", "25", "5", "0", "25", "388.3 KB"] in rows  # the images table
    assert [r[0] for r in rows[:3]] == ["documents", "images", "image_table"]  # in the order they ran


def test_dedup_gets_a_row_of_removals_by_rule():
    stats = {
        "job": "cc",
        "fingerprint": "f",
        "loom_version": "0.1.0",
        "format_version": 2,
        "seconds": 3.0,
        "step_order": ["documents", "dedup_keys", "dedup_buckets", "dedup_components", "dedup"],
        "steps": {
            "documents": step(100, 90),
            "dedup_keys": step(90, 1440, extra={"signed": 88}),
            "dedup_buckets": step(1440, 30, extra={"rejected": 4}),
            "dedup_components": step(20, 12, extra={"rounds": 3}),
            "dedup": step(90, 80, {"exact_url": 3, "exact_text": 2, "minhash": 5}, extra={"clusters": 6}),
        },
        "shards": shard_totals(80, text=80),
    }
    console = Console(record=True, width=200)
    render_stats(stats, console)
    rows = [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in console.export_text().splitlines()
        if "│" in line
    ]
    assert ["90", "88", "3", "2", "0", "5", "4", "6", "3", "88.9"] in rows
    assert ["dedup_keys", "1", "90", "1,440", "—", "0", "1.0", "1.0", "0"] in rows  # keys are made, not kept


def large_run():
    """The stats of a large multimodal job: every table, rows in the millions, steps that keep all
    (100.0 %), long step and reason names, a mixture of two components and a packing run."""
    big = {"parts": 512, "seconds": 123_456.7, "wall_seconds": 4_321.9, "peak_rss_mb": 12_288.0}
    steps = {
        "documents": {
            **step(
                12_345_678,
                1_234_567,
                {"not_html": 9_876_543, "http_status": 1_000_000, "page_too_large": 234_568},
                {"record_request": 12_345_678, "revisit_other_profile": 42},
            ),
            **big,
        },
        "filters": step(
            1_234_567,
            1_000_000,
            {"language_not_allowed": 200_000, "fineweb_line_punct_frac": 34_567},
            extra={
                "order": ["language", "fineweb"],
                "filters": {
                    "language": {"in": 1_234_567, "out": 1_034_567},
                    "fineweb": {"in": 1_034_567, "out": 1_000_000},
                },
                "blocks": {"node_special_char_ratio": 7_654_321},
                "counters": {"c4_lines_no_terminal_punct": 23_456_789, "pii_email": 98_765},
            },
        ),
        "images": step(
            8_765_432,
            7_654_321,
            {"http_404": 1_000_000, "too_many_pixels": 111_111},
            {"duplicate_url": 2_345_678},
            {"image_refs": 11_111_110, "retryable": 54_321},
        ),
        "image_table": step(
            7_654_321, 7_654_321, extra={"distinct_images": 7_600_000, "image_bytes": 987_654_321_000}
        ),
        "clip": step(
            7_600_000,
            7_599_999,
            {"decode_error": 1},
            extra={"model": {"ViT-B-32/laion2b_s34b_b79k": 7_599_999}, "dim": 512},
        ),
        "clip_filters": step(
            1_000_000,
            987_654,
            {"clip_pair_similarity": 12_346},
            extra={"images_scored": 7_599_999, "images_removed": {"pair_similarity": 23_456}},
        ),
        "dedup_keys": step(987_654, 123_456_789, extra={"signed": 987_000}),
        "dedup_buckets": step(123_456_789, 2_345_678, extra={"rejected": 345_678}),
        "dedup_components": {**step(2_345_678, 2_345_678, extra={"rounds": 7}), **big},
        "dedup": step(
            987_654,
            900_000,
            {"exact_url": 12_345, "exact_text": 23_456, "exact_images": 3_456, "minhash": 48_397},
            extra={"clusters": 45_678},
        ),
        "tokenizer": step(
            900_000,
            900_000,
            extra={
                "tokenizer": {
                    "source": "trained",
                    "vocab_size": 65_536,
                    "sample_bytes": 1_073_741_824,
                    "sample_documents": 456_789,
                    "seed": 0,
                }
            },
        ),
        "tokens": step(
            900_000,
            900_000,
            extra={
                "tokens": {
                    "total": 1_234_567_890,
                    "documents": 900_000,
                    "by_source": {"common-crawl-2024-10": 1_000_000_000, "laion-400m": 234_567_890},
                    "by_kind": {"interleaved": 1_000_000_000, "pair": 234_567_890},
                    "by_language": {"en": 1_234_567_890},
                    "longer_than": {"8192": {"documents": 12_345, "tokens": 234_567_890}},
                }
            },
        ),
        "mix": step(
            900_000,
            900_000,
            extra={
                "mix": {
                    "budget": 1_000_000_000,
                    "components": {
                        "common-crawl-2024-10": {
                            "requested_share": 0.8,
                            "delivered_share": 0.8001,
                            "tokens": 800_100_000,
                            "documents": 654_321,
                            "epochs": 0.8,
                            "max_epochs": 4,
                            "holds_tokens": 1_000_000_000,
                        },
                        "laion-400m": {
                            "requested_share": 0.2,
                            "delivered_share": 0.1999,
                            "tokens": 199_900_000,
                            "documents": 345_679,
                            "epochs": 0.85,
                            "max_epochs": 2,
                            "holds_tokens": 234_567_890,
                        },
                    },
                }
            },
        ),
        "train": step(
            1_000_000,
            1_000_000,
            extra={
                "shards": 1_024,
                "samples": 1_000_000,
                "repeats": 12_345,
                "tokens": 1_000_000_000,
                "subsets": [
                    {
                        "fraction": 0.01,
                        "tokens": 10_000_000,
                        "samples": 10_001,
                        "shares": {"common-crawl-2024-10": 0.8, "laion-400m": 0.2},
                    }
                ],
            },
        ),
    }
    return {
        "job": "cc-2024-10-multimodal",
        "fingerprint": "2b1fcf651c9dd274",
        "loom_version": "0.1.0",
        "format_version": 4,
        "seconds": 98_765.4,
        "step_order": list(steps),
        "steps": steps,
        "shards": {
            "count": 12_345,
            "samples": 1_234_567,
            "documents": {"text": 234_567, "pair": 345_678, "interleaved": 654_322},
            "images": 7_654_321,
            "image_files": 7_600_000,
            "tokens": 1_234_567_890,
            "bytes": 9_876_543_210_987,
        },
    }


PACKING = {
    "train-8192-64-1": {
        "folder": "train",
        "seq_len": 8192,
        "image_tokens": 64,
        "epochs": 1,
        "sequences": 150_703,
        "tokens": 1_234_567_890,
        "fill": 0.9998,
        "continued_pieces": 123_456,
        "skipped": {"too_many_images": 1_234},
    }
}

NUMBER = re.compile(r"(?<![\w.,])\d[\d,]*(?:\.\d+)?(?![\w])")  # 1,234,567 and 100.0, not the 4 of c4


def shown(stats, width, packing=None):
    console = Console(record=True, width=width)
    render_stats(stats, console, packing)
    return console.export_text()


def header_words(text):
    return {
        word for line in text.splitlines() if line.startswith("┃") for word in line.replace("┃", " ").split()
    }


@pytest.mark.parametrize("width", [60, 80, 120])
def test_every_header_and_number_is_whole_in_a_narrow_terminal(width):
    everything = shown(large_run(), 300, PACKING)  # wide enough for each table in one piece
    text = shown(large_run(), width, PACKING)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    assert set(NUMBER.findall(text)) == set(NUMBER.findall(everything))  # whole: no piece of one
    assert header_words(text) == header_words(everything)
    for number in ("1,234,567", "1,234,567,890", "123,456,789", "100.0", "123456.7", "9.0 TB"):
        assert number in text


def test_a_table_too_wide_for_80_columns_is_split_and_each_part_names_its_rows():
    text = shown(large_run(), 80)
    lines = text.splitlines()
    assert "Steps" in lines and "Steps (continued)" in lines
    first, rest = text.split("Steps (continued)")
    for name in ("documents", "dedup_components", "clip_filters"):
        assert f"│ {name} " in first.split("Drops and skips")[0] and f"│ {name} " in rest.split("Drops")[0]
    assert "part s: the seconds of its parts, summed (worker time)" in " ".join(lines)  # abbreviations, once
    # long names and titles stay on one line where they fit
    assert "│ fineweb_line_punct_frac " in text and "│ ViT-B-32" not in text
    assert "Filters: blocks removed, edits and counts" in lines
    assert "model ViT-B-32/laion2b_s34b_b79k, dimension 512" in lines


def test_a_wide_terminal_shows_each_table_in_one_piece():
    text = shown(large_run(), 160, PACKING)
    assert "(continued)" not in text
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if "│" in line]
    documents = ["documents", "512", "12,345,678", "1,234,567", "10.0", "11,111,111", "123456.7", "4321.9"]
    assert [*documents, "12,288"] in rows
    components = ["dedup_components", "512", "2,345,678", "2,345,678", "100.0", "0", "123456.7", "4321.9"]
    assert [*components, "12,288"] in rows
    shards = [
        "12,345",
        "1,234,567",
        "234,567",
        "345,678",
        "654,322",
        "7,654,321",
        "7,600,000",
        "1,234,567,890",
    ]
    assert [*shards, "9.0 TB"] in rows


def test_loom_stats_prints_tables_for_an_80_column_pipe_and_json_unchanged(tmp_path, monkeypatch, capsys):
    stats = large_run()
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["stats", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "1,234,567,890" in text
    assert main(["stats", str(tmp_path), "--json"]) == 0
    assert capsys.readouterr().out == json.dumps(stats, indent=1, sort_keys=True) + "\n"
