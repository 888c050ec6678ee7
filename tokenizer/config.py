"""The ``[tokenizer]`` table of the job spec: train a byte-level BPE on the job's own text, or use one.

``tokenizer = "path/to/tokenizer.json"`` (a string) is short for ``[tokenizer] path = "…"``.
Every key is in ``docs/TOKENIZER.md`` and ``docs/JOBSPEC.md``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config import Config

#: The special tokens every Loom tokenizer starts with, at these ids (the KOSMOS-1 layout:
#: ``<s> text <image></image> text … </s>``). ``special_tokens`` adds more after them.
FIXED_SPECIALS = ("<s>", "</s>", "<pad>", "<image>", "</image>")


class TokenizerConfig(Config):
    """Byte-level BPE: trained on a deterministic sample of the kept text, or supplied."""

    enabled: bool = Field(True, description="Tokenize the documents (and train a tokenizer unless `path`).")
    path: str | None = Field(
        None, description="A tokenizer.json to use instead of training one (it must hold the specials)."
    )
    vocab_size: int = Field(64_000, ge=512, description="Tokens in the vocabulary, specials included.")
    sample_bytes: int = Field(
        1_000_000_000, ge=1, description="UTF-8 bytes of text to train on, sampled by a seeded hash."
    )
    seed: int = Field(0, ge=0, description="The sample's seed: the same text and seed give the same sample.")
    min_frequency: int = Field(2, ge=1, description="A pair seen fewer times in the sample is not merged.")
    normalization: Literal["nfc", "none"] = Field(
        "nfc", description="Unicode normalization of the text (the shards' texts are stored normalized)."
    )
    split_digits: bool = Field(False, description="Every digit is its own token (else runs of up to 3).")
    special_tokens: list[str] = Field(
        default_factory=list, description="More special tokens, at ids 5, 6, … (e.g. <unk>, <|endofchunk|>)."
    )
    reserved_tokens: int = Field(
        11,
        ge=0,
        description="Placeholder specials <reserved_N> after them, so a model can add its own later.",
    )
    encoder: Literal["tiktoken", "tokenizers"] = Field(
        "tiktoken",
        description="tiktoken: the same ids ~5x faster, where the tokenizer allows (else tokenizers).",
    )
    verify_documents: int = Field(
        64,
        ge=0,
        description="Documents per part also encoded by HF tokenizers and compared id for id (0: none).",
    )

    @field_validator("special_tokens")
    @classmethod
    def _new_specials(cls, tokens: list[str]) -> list[str]:
        for t in tokens:
            if not t or t in FIXED_SPECIALS or tokens.count(t) > 1:
                raise ValueError(f"{t!r}: a special token must be non-empty, new and given once")
        return tokens

    @model_validator(mode="after")
    def _room_for_bytes(self) -> TokenizerConfig:
        specials = len(FIXED_SPECIALS) + len(self.special_tokens) + self.reserved_tokens
        if self.vocab_size < specials + 256 + 1:
            raise ValueError(f"vocab_size must exceed {specials} specials + 256 byte tokens")
        return self

    def specials(self) -> list[str]:
        """The special tokens in id order: the fixed five, the extra ones, the reserved ones."""
        fixed = [*FIXED_SPECIALS, *self.special_tokens]
        return fixed + [f"<reserved_{len(fixed) + i}>" for i in range(self.reserved_tokens)]
