"""``loom stats``: the tables a data engineer reads after a run."""

from __future__ import annotations

from rich.console import Console

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
