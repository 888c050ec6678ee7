"""docs/CLIP.md names every [clip] and [clip.filters] key."""

from pathlib import Path

from filters.config import ClipFiltersConfig
from pipeline.clip.config import ClipConfig

DOC = (Path(__file__).resolve().parents[3] / "docs" / "CLIP.md").read_text(encoding="utf-8")


def test_every_clip_key_is_documented():
    for key in ClipConfig.model_fields:
        assert f"| `{key}` |" in DOC, f"[clip] {key} is not in docs/CLIP.md"
    for key in ClipFiltersConfig.model_fields:
        if key != "nsfw_head":
            assert f"`{key}`" in DOC, f"[clip.filters] {key} is not in docs/CLIP.md"
    assert "`nsfw_head`" in DOC
