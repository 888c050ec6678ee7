"""``loom pack``: the loader's dry run over a finished output."""

from __future__ import annotations

import json

from jobs.cli import main


def test_loom_pack_reports_sequences_fill_and_skips(demo_result, capsys):
    assert main(["pack", str(demo_result), "--seq-len", "2048", "--image-tokens", "16", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["folder"] == "train" and summary["skipped"] == {}
    assert summary["tokens"] <= summary["sequences"] * 2048 < summary["tokens"] + 2048 * 2
    assert summary["fill"] == round(summary["tokens"] / (summary["sequences"] * 2048), 6)
    assert main(["pack", str(demo_result), "--seq-len", "2048", "--epochs", "20"]) == 0
    assert "fill 9" in capsys.readouterr().out


def test_loom_pack_errors_are_one_line(demo_result, tmp_path, capsys):
    assert main(["pack", str(tmp_path)]) == 2
    assert "no manifest" in capsys.readouterr().err
    assert main(["pack", str(demo_result), "--seq-len", "32", "--image-tokens", "64"]) == 2
    assert capsys.readouterr().err.strip().endswith("exceeds seq_len")


def test_loom_stats_shows_what_loom_pack_measured(demo_result, capsys):
    assert main(["pack", str(demo_result), "--seq-len", "4096", "--image-tokens", "16"]) == 0
    capsys.readouterr()
    assert main(["stats", str(demo_result)]) == 0
    out = capsys.readouterr().out
    assert "Packing (loom pack)" in out and "train/ 4096 k=16 1 ep" in out
