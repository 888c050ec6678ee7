"""Train Loom's byte-level BPE with HF ``tokenizers`` and write it with its card.

The tokenizer: NFC normalization (optional), a GPT-4-style split of the text into words, numbers
(runs of up to three digits, or single digits with ``split_digits``), punctuation and whitespace
(:data:`PATTERN`, which HF tokenizers and tiktoken read the same way), then byte-level
BPE over each piece, so every string encodes and decodes back exactly. Its model has
``ignore_merges`` on (a piece that is a token is that token), the rule tiktoken applies too: this
is what lets the tokenization stage encode with tiktoken and get HF's ids (``tokenizer.encode``).
The special tokens take the first ids, in the order ``TokenizerConfig.specials`` gives; the 256
byte tokens follow, then the merges in the order they were learned.

Training streams the sample (``tokenizer.sample``) into ``Tokenizer.train_from_iterator``; the
same sample and settings give a byte-identical ``tokenizer.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from pipeline import __version__
from tokenizer.config import TokenizerConfig
from tokenizer.sample import Sample

log = logging.getLogger(__name__)

#: Words (with one leading non-letter), numbers of up to three digits, punctuation runs, newlines and
#: other whitespace: the pre-tokenization of GPT-4's cl100k (as Llama 3 writes it for HF tokenizers),
#: with two changes. Combining marks (\p{M}) count as letters, as in GPT-4o's o200k, so Devanagari,
#: Thai or Tamil words are not cut at every vowel sign. A number takes the space before it, as a word
#: does (GPT-2 did too), so " 2017" is " 201" "7", not " " "201" "7": on the real text of
#: bench/tokenizer_bench.py this alone is 2.4% fewer tokens (web pages are full of numbers).
PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{M}\p{N}]?[\p{L}\p{M}]+| ?\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
#: The same with every digit on its own (``split_digits``), as LLaMA and PaLM do (" 2" "0" "1" "7").
PATTERN_SPLIT_DIGITS = PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")

TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "tokenizer.card.json"
CARD_FORMAT = "loom-tokenizer/1"


def pattern(cfg: TokenizerConfig) -> str:
    return PATTERN_SPLIT_DIGITS if cfg.split_digits else PATTERN


def new_tokenizer(cfg: TokenizerConfig) -> Tokenizer:
    """An untrained tokenizer with Loom's normalizer, pre-tokenizer, decoder and post-processor."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    if cfg.normalization == "nfc":
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern(cfg)), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def _with_post_processor(tok: Tokenizer) -> Tokenizer:
    """``encode(text)`` with special tokens on gives ``<s> … </s>``, the layout of a text document."""
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    return tok


def train_tokenizer(texts: Iterator[list[str]], cfg: TokenizerConfig) -> Tokenizer:
    """Train on batches of texts (streamed: one batch at a time is held)."""
    tok = new_tokenizer(cfg)
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=cfg.specials(),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return _with_post_processor(tok)


def tokenizer_sha256(tok: Tokenizer) -> str:
    return hashlib.sha256(tok.to_str(pretty=True).encode("utf-8")).hexdigest()


def train_from_sample(sample: Sample, cfg: TokenizerConfig) -> tuple[Tokenizer, dict[str, Any]]:
    """Plan the sample, train on it; returns the tokenizer and its card."""
    start = time.perf_counter()
    sample.plan()
    log.info(
        "tokenizer: sampling %.1f%% of %d documents (%s bytes) for %s bytes",
        100 * sample.fraction,
        sample.total_documents,
        f"{sample.total_bytes:,}",
        f"{cfg.sample_bytes:,}",
    )
    tok = train_tokenizer(sample.texts(), cfg)
    if not sample.bytes:
        raise ValueError("the training sample holds no text")
    if tok.get_vocab_size() < cfg.vocab_size:
        log.warning(
            "tokenizer: the sample holds merges for only %d of %d tokens (a larger sample, or a smaller "
            "vocab_size, or min_frequency 1)",
            tok.get_vocab_size(),
            cfg.vocab_size,
        )
    card = {
        "format": CARD_FORMAT,
        "source": "trained",
        "loom_version": __version__,
        "vocab_size": tok.get_vocab_size(),
        "requested_vocab_size": cfg.vocab_size,
        "special_tokens": special_ids(tok, cfg.specials()),
        "normalization": cfg.normalization,
        "split_digits": cfg.split_digits,
        "min_frequency": cfg.min_frequency,
        "pattern": pattern(cfg),
        "seed": cfg.seed,
        "sample_bytes": sample.bytes,
        "sample_documents": sample.documents,
        "sample_sha256": sample.sha256,
        "sample_fraction": round(sample.fraction, 9),
        "corpus_bytes": sample.total_bytes,
        "corpus_documents": sample.total_documents,
        "train_seconds": round(time.perf_counter() - start, 3),
        "tokenizer_sha256": tokenizer_sha256(tok),
    }
    return tok, card


def special_ids(tok: Tokenizer, names: list[str]) -> dict[str, int]:
    ids = {}
    for name in names:
        i = tok.token_to_id(name)
        if i is None:
            raise ValueError(f"the tokenizer has no special token {name}")
        ids[name] = i
    return ids


def supplied_card(tok: Tokenizer, path: str) -> dict[str, Any]:
    """The card of a tokenizer given by path: its source and size, no sample."""
    from tokenizer.config import FIXED_SPECIALS

    return {
        "format": CARD_FORMAT,
        "source": "supplied",
        "path": path,
        "loom_version": __version__,
        "vocab_size": tok.get_vocab_size(),
        "special_tokens": special_ids(tok, list(FIXED_SPECIALS)),
        "tokenizer_sha256": tokenizer_sha256(tok),
    }


def save(tok: Tokenizer, card: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``tokenizer.json`` and ``tokenizer.card.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tok_path, card_path = folder / TOKENIZER_FILE, folder / CARD_FILE
    tok_path.write_text(tok.to_str(pretty=True), encoding="utf-8")
    card_path.write_text(
        json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return tok_path, card_path
