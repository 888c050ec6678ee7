"""Token ids of documents in the KOSMOS-1 layout: ``<s> text <image></image> text … </s>``.

:class:`Encoder` turns text blocks into ids. HF ``Tokenizer.encode_batch`` defines the ids, but it
builds offsets and an ``Encoding`` object per text; for a byte-level BPE whose pre-tokenizer is a
regex split (Loom's own, or GPT-2's), tiktoken computes the same ids from the same vocabulary about
five times faster, so the encoder uses it there (:func:`tiktoken_encoding`). The first documents of
every part are also encoded by HF and compared id for id (``verify_documents``); a difference stops
the part with the document named instead of writing other ids than HF's. Any other tokenizer
(WordPiece, Unigram, a normalizer other than NFC) is encoded by HF itself.

Text never encodes to a special token: a literal ``<image>`` in a page is text (tiktoken's
``encode_ordinary``; HF with ``encode_special_tokens``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer

from tokenizer.config import FIXED_SPECIALS

#: GPT-2's pre-tokenization: what ``ByteLevel(use_regex=True)`` splits by.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

TOKENS_TYPE = pa.list_(pa.uint32())
_NONE: frozenset[str] = frozenset()  # no special token is recognised in text


class TokenizerMismatch(RuntimeError):
    """The fast encoder gave other ids than HF tokenizers for a text."""


def byte_decoder() -> dict[str, int]:
    """The byte-level alphabet: the printable character that stands for each byte (GPT-2's map)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = 256 + extra
            extra += 1
    return {chr(c): b for b, c in chars.items()}


def _split_pattern(pre: dict[str, Any] | None) -> str | None:
    """The regex of a byte-level pre-tokenizer tiktoken can reproduce, else None."""
    if pre is None:
        return None
    if pre.get("type") == "ByteLevel":
        return GPT2_PATTERN if pre.get("use_regex") and not pre.get("add_prefix_space") else None
    if pre.get("type") != "Sequence" or len(pre.get("pretokenizers", [])) != 2:
        return None
    split, byte_level = pre["pretokenizers"]
    if (
        split.get("type") != "Split"
        or "Regex" not in split.get("pattern", {})
        or split.get("behavior") != "Isolated"
        or split.get("invert")
        or byte_level.get("type") != "ByteLevel"
        or byte_level.get("use_regex")
        or byte_level.get("add_prefix_space")
    ):
        return None
    return split["pattern"]["Regex"]


def _normalization(norm: dict[str, Any] | None) -> str | None:
    """ "nfc" or "none" for the normalizers the fast path reproduces; None for any other."""
    if norm is None:
        return "none"
    if norm.get("type") == "NFC":
        return "nfc"
    if norm.get("type") == "Sequence" and [n.get("type") for n in norm.get("normalizers", [])] == ["NFC"]:
        return "nfc"
    return None


def tiktoken_encoding(tok: Tokenizer) -> tuple[Any, str] | None:
    """A tiktoken ``Encoding`` with the ranks and split of this tokenizer, and its normalization;
    None when the tokenizer is not a byte-level BPE that tiktoken can reproduce."""
    import tiktoken

    data = json.loads(tok.to_str())
    model = data["model"]
    normalization = _normalization(data.get("normalizer"))
    pat = _split_pattern(data.get("pre_tokenizer"))
    plain_bpe = model.get("type") == "BPE" and not any(
        model.get(k) for k in ("dropout", "byte_fallback", "continuing_subword_prefix", "end_of_word_suffix")
    )
    if not plain_bpe or pat is None or normalization is None:
        return None
    added = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
    if not all(t.get("special") for t in data.get("added_tokens", [])):
        return None
    decode = byte_decoder()
    ranks: dict[bytes, int] = {}
    for token, rank in model["vocab"].items():
        if token in added:
            continue
        try:
            ranks[bytes(decode[c] for c in token)] = rank
        except KeyError:
            return None  # not a byte-level vocabulary
    if any(bytes([b]) not in ranks for b in range(256)):
        return None
    enc = tiktoken.Encoding("loom", pat_str=pat, mergeable_ranks=ranks, special_tokens=added)
    return enc, normalization


class Encoder:
    """Ids of text blocks and of whole documents, identical to HF ``Tokenizer.encode``."""

    def __init__(self, tok: Tokenizer, *, fast: bool = True):
        self.hf = tok
        self.hf.encode_special_tokens = True  # a literal "<image>" in a text is text
        found = tiktoken_encoding(tok) if fast else None
        self.fast, normalization = found if found else (None, None)
        data = json.loads(tok.to_str())
        self.nfc = (normalization or _normalization(data.get("normalizer"))) == "nfc"
        missing = [s for s in ("<s>", "</s>", "<image>", "</image>") if tok.token_to_id(s) is None]
        if missing:
            raise ValueError(
                f"the tokenizer has no special token {', '.join(missing)} (Loom needs {FIXED_SPECIALS})"
            )
        self.bos, self.eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
        self.image, self.image_end = tok.token_to_id("<image>"), tok.token_to_id("</image>")
        self.vocab_size = tok.get_vocab_size()

    @classmethod
    def from_file(cls, path: str | Path, *, fast: bool = True) -> Encoder:
        return cls(Tokenizer.from_file(str(path)), fast=fast)

    @property
    def backend(self) -> str:
        return "tiktoken" if self.fast is not None else "tokenizers"

    def normalize(self, text: str) -> str:
        """The text as the tokenizer sees it (NFC when the tokenizer normalizes so)."""
        if self.nfc and not unicodedata.is_normalized("NFC", text):
            return unicodedata.normalize("NFC", text)
        return text

    def encode_hf(self, texts: Sequence[str]) -> list[list[int]]:
        """HF tokenizers' ids of each text (no specials added): the reference."""
        return [e.ids for e in self.hf.encode_batch(list(texts), add_special_tokens=False)]

    def encode_texts(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids of each text, by the fast path when there is one (which normalizes first, as the
        tokenizer's own normalizer would: checking text already in NFC costs ~2 ms per MB)."""
        return [a.tolist() for a in self.encode_arrays([self.normalize(t) for t in texts])]

    def encode_arrays(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The ids of each text, already normalized, as ``uint32`` arrays. tiktoken writes them
        straight into an array (no Python int per token), one text at a time: its batch call runs
        a thread pool, slower than this loop on one core."""
        if self.fast is None:
            return [np.asarray(ids, dtype=np.uint32) for ids in self.encode_hf(texts)]
        encode = self.fast.encode_to_numpy
        return [encode(t, allowed_special=_NONE, disallowed_special=()) for t in texts]

    def verify(self, texts: Sequence[str], ids: Sequence[Sequence[int]], keys: Sequence[str]) -> None:
        """Compare ids with HF's; raise :class:`TokenizerMismatch` naming the first text that differs."""
        if self.fast is None or not texts:
            return
        for key, mine, theirs in zip(keys, ids, self.encode_hf(texts), strict=True):
            if list(mine) != theirs:
                pairs = enumerate(zip(mine, theirs, strict=False))
                at = next((i for i, (a, b) in pairs if a != b), min(len(mine), len(theirs)))
                raise TokenizerMismatch(
                    f"{key}: tiktoken and HF tokenizers disagree at token {at} ({list(mine[at : at + 4])} "
                    f'vs {theirs[at : at + 4]}); set [tokenizer] encoder = "tokenizers" for this tokenizer'
                )

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=False)

    def encode_documents(
        self, texts: Sequence[Sequence[str | None]], *, verify: int = 0, keys: Sequence[str] | None = None
    ) -> pa.Array:
        """Token ids of documents (``texts`` as the record holds them, already normalized:
        :meth:`normalize`): ``<s>``, then each text block's ids or ``<image></image>`` for an image,
        then ``</s>``. The first ``verify`` documents are compared with HF. Returns a
        ``list<uint32>`` array."""
        blocks = [t for doc in texts for t in doc if t is not None]
        ids = self.encode_arrays(blocks)
        if verify:
            n = sum(t is not None for doc in texts[:verify] for t in doc)
            named = zip(keys or range(len(texts)), texts[:verify], strict=False)
            where = [k for k, doc in named for t in doc if t is not None]
            self.verify(blocks[:n], [a.tolist() for a in ids[:n]], [str(k) for k in where])
        bos, eos = np.array([self.bos], np.uint32), np.array([self.eos], np.uint32)
        marker = np.array([self.image, self.image_end], np.uint32)
        pieces: list[np.ndarray] = []
        ends = []
        it = iter(ids)
        for doc in texts:
            pieces.append(bos)
            pieces.extend(marker if t is None else next(it) for t in doc)
            pieces.append(eos)
            ends.append(len(pieces))
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        cum = np.concatenate([[0], np.cumsum(lengths)])
        offsets = cum[np.concatenate([[0], np.asarray(ends, dtype=np.int64)])].astype(np.int32)
        values = np.concatenate(pieces) if pieces else np.zeros(0, np.uint32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), type=TOKENS_TYPE)
