"""The ``[shards]`` and ``[mix]`` tables of the job spec: how the per-file webdataset shards are cut,
and the training mixture (``docs/MIXING.md``)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from pipeline.config import Config
from pipeline.schema import KINDS


class ShardsConfig(Config):
    max_samples: int = Field(1000, ge=1, description="Samples per shard at most.")
    max_bytes: int = Field(512 * 1024 * 1024, ge=1024, description="Shard size at most (approximate).")


class MixConfig(Config):
    """``[mix]``: the training dataset: a token-weighted mixture, shuffled once, cut into shards under
    ``OUT/train/`` by token count, with nested subsets for scaling-law runs (``docs/MIXING.md``).
    Off while ``weights`` is empty."""

    weights: dict[str, float] = Field(
        default_factory=dict,
        description="Token shares by kind (text, pair, interleaved) or by source name; normalised to sum 1.",
    )
    tokens: int | None = Field(
        None,
        ge=1,
        description="Total tokens of the mixture (default: the most the scarcest component allows).",
    )
    max_epochs: float | dict[str, float] = Field(
        1.0, description="How often a component's documents may repeat: one number, or one per component."
    )
    seed: int = Field(0, description="Seeds the order of the documents.")
    subsets: list[float] = Field(
        default_factory=list, description="Nested subsets, as fractions of the mixture's tokens (0 < f < 1)."
    )
    shard_tokens: int = Field(
        20_000_000, ge=1, description="Tokens per training shard (a shard closes past it)."
    )
    bucket_tokens: int = Field(
        100_000_000,
        ge=1,
        description="Tokens per shuffle bucket: what one worker holds while it writes shards.",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.weights)

    @field_validator("weights")
    @classmethod
    def _weights(cls, weights: dict[str, float]) -> dict[str, float]:
        for name, w in weights.items():
            if not w >= 0:
                raise ValueError(f"{name} = {w}: a weight is a share of tokens, 0 or more")
        if weights and not sum(weights.values()) > 0:
            raise ValueError("every weight is 0: give at least one component a share")
        return weights

    @field_validator("max_epochs")
    @classmethod
    def _epochs(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        for name, n in value.items() if isinstance(value, dict) else [("max_epochs", value)]:
            if not n >= 1:
                raise ValueError(f"{name}: at least 1 (one pass over the component's documents), not {n}")
        return value

    @field_validator("subsets")
    @classmethod
    def _subsets(cls, subsets: list[float]) -> list[float]:
        for f in subsets:
            if not 0 < f < 1:
                raise ValueError(f"{f}: a subset is a fraction of the mixture's tokens, between 0 and 1")
        if len(set(subsets)) != len(subsets):
            raise ValueError("a fraction is listed twice")
        return sorted(subsets)

    @model_validator(mode="after")
    def _epoch_names(self) -> MixConfig:
        if isinstance(self.max_epochs, dict):
            for name in self.max_epochs:
                if name not in self.weights:
                    raise ValueError(f"max_epochs.{name}: not a component of the weights")
        return self

    def components(self) -> dict[str, float]:
        """The components that take part (weight > 0) and their shares, summing to 1."""
        total = sum(self.weights.values())
        return {name: w / total for name, w in sorted(self.weights.items()) if w > 0}

    def by_kind(self) -> bool:
        """Whether the weights name kinds (else source names)."""
        return set(self.weights) <= set(KINDS)

    def epochs(self, component: str) -> float:
        if isinstance(self.max_epochs, dict):
            return self.max_epochs.get(component, 1.0)
        return self.max_epochs
