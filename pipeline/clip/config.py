"""The ``[clip]`` table of the job spec: the open_clip model, how it runs, and the image filters on it.

Every key is in ``docs/CLIP.md``. The knobs a user needs on a GPU cluster are ``gpus_per_actor``,
``actors`` and ``batch_size``; the rest names the model and the thresholds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: LAION-400M's image–caption threshold for ViT-B/32 (Schuhmann et al. 2021); other models score on
#: other scales, so ``[clip.filters] pair_min_similarity`` is per model.
LAION_VIT_B_32_MIN_SIMILARITY = 0.28

#: Zero-shot NSFW concepts (the image's score: the softmax mass on the unsafe prompts).
NSFW_PROMPTS = ["a photo of nudity", "pornography", "an explicit sexual image", "a photo of gore"]
SAFE_PROMPTS = ["a photo", "a picture of an object", "a photo of people", "a drawing", "a screenshot of text"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClipFilters(_Model):
    """Thresholds on the scores the ``clip_filters`` step writes (none: the score is still written)."""

    pair_min_similarity: float | None = Field(
        LAION_VIT_B_32_MIN_SIMILARITY,
        description="Drop a pair whose image–caption cosine similarity is lower (LAION: 0.28 for ViT-B/32).",
    )
    interleaved_min_similarity: float | None = Field(
        None,
        description="Remove an interleaved image whose similarity to the text beside it is lower.",
    )
    nsfw_max: float | None = Field(
        None, description="Remove an image (drop a pair) whose NSFW score is higher (zero-shot or head)."
    )
    nsfw_head: str | None = Field(
        None,
        description="A linear NSFW head (.npz: `weight` [dim], `bias`) instead of the zero-shot prompts.",
    )
    min_side: int | None = Field(
        150, description="OBELICS: remove images whose original width or height is smaller."
    )
    max_side: int | None = Field(20_000, description="OBELICS: remove images whose original side is larger.")
    max_aspect_ratio: float | None = Field(
        2.0, description="OBELICS: remove images whose max(w/h, h/w) is larger."
    )
    duplicate_similarity: float | None = Field(
        None,
        description="Near duplicates: an image this similar to an earlier one of its document is removed; "
        "a pair whose image is this similar to another image of the job is dropped (one kept).",
    )


class ClipConfig(_Model):
    """open_clip embeddings of every distinct image, and of the text next to each image."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    enabled: bool = Field(False, description="Embed images and texts (needs `model` and its weights).")
    model: str = Field("ViT-B-32", description="An open_clip model name (or the name in `model_config`).")
    pretrained: str | None = Field(
        "laion2b_s34b_b79k", description="An open_clip pretrained tag, or a local checkpoint file."
    )
    model_config_path: str | None = Field(
        None, description="A JSON model config (open_clip's layout) for a model open_clip does not ship."
    )
    cache_dir: str | None = Field(None, description="Where open_clip keeps downloaded weights.")
    gpus_per_actor: float = Field(
        1.0, ge=0, le=8, description="GPUs per embedding actor (0.25: four per GPU)."
    )
    actors: int | None = Field(
        None, ge=1, description="Embedding actors (default: GPUs / gpus_per_actor, or 1 without GPUs)."
    )
    cpus_per_actor: int | None = Field(
        None, ge=1, description="Without GPUs: CPUs (torch threads) per actor (default: the CPUs / actors)."
    )
    batch_size: int = Field(256, ge=1, description="Images (or texts) per forward pass.")
    precision: Literal["fp16", "bf16", "fp32"] = Field("fp16", description="Autocast dtype on CUDA.")
    device: Literal["auto", "cuda", "cpu"] = Field("auto", description="auto: CUDA when the actor has a GPU.")
    filters: ClipFilters = ClipFilters()
