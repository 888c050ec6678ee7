"""The ``[clip]`` table of the job spec: the open_clip model and how it runs (its image filters,
``[clip.filters]``, are ``filters.config.ClipFiltersConfig``).

Every key is in ``docs/CLIP.md``. The knobs a user needs on a GPU cluster are ``gpus_per_actor``,
``actors`` and ``batch_size``; the rest names the model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from pipeline.config import Config


class ClipConfig(Config):
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
