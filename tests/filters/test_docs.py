"""docs/FILTERS.md names every key of every [filters] table, every score and every filter."""

from __future__ import annotations

from pathlib import Path

from filters.config import FiltersConfig
from filters.step import ORDER
from pipeline.schema import SCORE_FIELDS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "FILTERS.md").read_text(encoding="utf-8")


def test_every_key_has_a_row_in_its_table():
    for name, field in FiltersConfig.model_fields.items():
        if name == "enabled":
            continue
        section = DOC.split(f"### `[filters.{name}]`", 1)[1].split("\n### ", 1)[0]
        for key in field.annotation.model_fields:
            assert f"| `{key}` |" in section, f"[filters.{name}] {key} is not in docs/FILTERS.md"


def test_every_score_and_filter_is_named():
    for score in SCORE_FIELDS:
        if score.startswith(("top_", "dup_")) and score.endswith("gram_frac"):
            continue  # written as top_{2,3,4}gram_frac and dup_{5..10}gram_frac
        assert f"`{score}`" in DOC, score
    for name in ORDER:
        assert f"`{name}`" in DOC, name
