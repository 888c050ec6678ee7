"""The ``tokenizer`` and ``tokens`` steps of a job.

``tokenizer`` (one part): train Loom's BPE on a seeded sample of the final documents' text, or
take the tokenizer the spec names, and write ``OUT/tokenizer/tokenizer.json`` with its card
``OUT/tokenizer/tokenizer.card.json``, next to the shards they belong to.

``tokens`` (a part per documents part): the :class:`Tokenize` stage gives each document its ids
(``<s> text <image></image> text … </s>``) and the position of each ``<image>`` token; the part's
stats count tokens by source, kind and language and the documents longer than 8k and 32k tokens
(GPT-4's context lengths).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tokenizers import Tokenizer

from pipeline.runner import Part, PartStats
from pipeline.stage import Resources
from pipeline.step import Data, DocumentStep, Processed, Step
from pipeline.storage import Storage
from tokenizer.config import TokenizerConfig
from tokenizer.encode import TOKENS_TYPE, Encoder
from tokenizer.sample import Document, Sample, table_documents
from tokenizer.train import CARD_FILE, TOKENIZER_FILE, supplied_card, train_from_sample

log = logging.getLogger(__name__)

TOKENIZER = "tokenizer"
TOKENS = "tokens"
TOKENIZER_PATH = f"{TOKENIZER}/{TOKENIZER_FILE}"
CARD_PATH = f"{TOKENIZER}/{CARD_FILE}"
#: GPT-4's context lengths: the stats count the documents longer than each.
CONTEXTS = (8192, 32768)

IMAGE_TOKENS_TYPE = pa.list_(pa.int32())


class TokenizerStep(Step):
    """Train (or take) the job's tokenizer: one part, after every document step. Outputs:
    ``tokenizer`` (``OUT/tokenizer/tokenizer.json``) and ``card`` (``tokenizer.card.json``)."""

    name = TOKENIZER

    def __init__(self, storage: Storage, doc_parts: list[Part], documents: Data, cfg: TokenizerConfig):
        super().__init__(storage, documents=documents)
        self.cfg = cfg
        self.doc_parts = doc_parts
        self.output("tokenizer", TOKENIZER_PATH)
        self.output("card", CARD_PATH)

    def settings(self) -> dict[str, Any]:
        """What the tokenizer is made of: the training settings, or the supplied file's bytes."""
        own = self.cfg.model_dump(mode="json", exclude={"encoder", "verify_documents", "enabled"})
        if self.cfg.path:
            with open(self.cfg.path, "rb") as f:
                own["sha256"] = hashlib.sha256(f.read()).hexdigest()
        return own

    def parts(self) -> list[Part]:
        return [Part(TOKENIZER)]

    def _documents(self) -> Iterator[list[Document]]:
        """The final documents' text blocks, a part at a time, in batches of 1,024 documents."""
        for p in self.doc_parts:
            texts = self.storage.read_parquet(self.inputs["documents"].path(p.name), ["texts"])["texts"]
            for start in range(0, len(texts), 1024):
                yield table_documents(texts.slice(start, 1024).to_pylist())

    def run_part(self, part: Part) -> PartStats:
        cfg = self.cfg
        if cfg.path:
            tok = Tokenizer.from_file(cfg.path)
            Encoder(tok)  # fails with the missing specials named
            card = supplied_card(tok, cfg.path)
            rows_in = rows_out = 0
        else:
            sample = Sample(self._documents, cfg.sample_bytes, cfg.seed)
            if not sample.plan().total_bytes:  # every document dropped: nothing to tokenize either
                log.warning("tokenizer: the job kept no text to train on; no tokenizer written")
                card = {"source": "none", "vocab_size": 0}
                return PartStats(rows_in=sample.total_documents, extra={"tokenizer": card})
            tok, card = train_from_sample(sample, cfg)
            rows_in, rows_out = sample.total_documents, sample.documents
        self.storage.write_bytes(self["tokenizer"].path(), tok.to_str(pretty=True).encode("utf-8"))
        self.storage.write_json(self["card"].path(), card)
        log.info("tokenizer: %s, %d tokens", card["source"], card["vocab_size"])
        return PartStats(rows_in=rows_in, rows_out=rows_out, extra={"tokenizer": card})


class Tokenize:
    """The tokenization stage: NFC-normalized ``texts`` (when the tokenizer normalizes), a
    ``tokens`` column (``list<uint32>``) and an ``image_tokens`` column (the index of each
    ``<image>`` token, in image order). The encoder loads on first use, once per worker."""

    name = "tokenize"
    resources = Resources(cpus=1)

    def __init__(self, load: Callable[[], Encoder]):
        self._load = load
        self._encoder: Encoder | None = None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = self._load()
        return self._encoder

    def __call__(self, batch: pa.Table, verify: int = 0) -> pa.Table:
        enc = self.encoder
        texts = batch["texts"].to_pylist()
        normalized = [[t if t is None else enc.normalize(t) for t in doc] for doc in texts]
        if normalized != texts:
            i = batch.schema.get_field_index("texts")
            batch = batch.set_column(i, "texts", pa.array(normalized, batch.schema.field("texts").type))
        tokens = enc.encode_documents(normalized, verify=verify, keys=batch["id"].to_pylist())
        return batch.append_column("tokens", tokens).append_column(
            "image_tokens", image_positions(tokens, enc.image)
        )


def image_positions(tokens: pa.ListArray, image_id: int) -> pa.Array:
    """For each document, the indexes of its ``<image>`` tokens."""
    values = tokens.values.to_numpy(zero_copy_only=False)
    offsets = tokens.offsets.to_numpy()
    hits = np.flatnonzero(values == image_id)
    doc = np.searchsorted(offsets, hits, side="right") - 1
    counts = np.bincount(doc, minlength=len(tokens))
    out_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(
        pa.array(out_offsets), pa.array((hits - offsets[doc]).astype(np.int32)), type=IMAGE_TOKENS_TYPE
    )


def token_counts(docs: pa.Table) -> dict[str, Any]:
    """The tokens of a tokenized table by source, kind and language, and how its documents fall
    against the context lengths (documents longer than each, and the tokens they hold)."""
    lengths = pc.list_value_length(docs["tokens"]).to_numpy(zero_copy_only=False).astype(np.int64)
    language = pc.fill_null(pc.struct_field(docs["meta"], "language"), "unknown").to_pylist()
    by: dict[str, Counter] = {"by_source": Counter(), "by_kind": Counter(), "by_language": Counter()}
    docs_by_kind: Counter = Counter()
    for n, source, kind, lang in zip(
        lengths.tolist(), docs["source"].to_pylist(), docs["kind"].to_pylist(), language, strict=True
    ):
        by["by_source"][source] += n
        by["by_kind"][kind] += n
        by["by_language"][lang] += n
        docs_by_kind[kind] += 1
    return {
        "total": int(lengths.sum()),
        "documents": len(lengths),
        **{k: dict(sorted(v.items())) for k, v in by.items()},
        "documents_by_kind": dict(sorted(docs_by_kind.items())),
        "longer_than": {
            str(c): {"documents": int((lengths > c).sum()), "tokens": int(lengths[lengths > c].sum())}
            for c in CONTEXTS
        },
    }


class TokensStep(DocumentStep):
    """Final documents → tokenized documents (``work/tokens/<part>.parquet``), which the shards carry."""

    name = TOKENS

    def __init__(
        self,
        storage: Storage,
        doc_parts: list[Part],
        documents: Data,
        tokenizer: Data,
        cfg: TokenizerConfig,
        batch_rows: int = 256,
    ):
        super().__init__(storage, doc_parts, documents, tokenizer=tokenizer)
        self.cfg = cfg
        self.batch_rows = batch_rows
        self.stage = Tokenize(self._load)

    def _load(self) -> Encoder:
        path = self.inputs["tokenizer"].path()
        if not self.storage.exists(path):
            raise ValueError(
                "no tokenizer: the job's documents hold no text to train one on; give [tokenizer] path"
            )
        tok = Tokenizer.from_str(self.storage.read_bytes(path).decode("utf-8"))
        return Encoder(tok, fast=self.cfg.encoder == "tiktoken")

    def process(self, docs: pa.Table, part: Part) -> Processed:
        rows, verify = self.batch_rows, self.cfg.verify_documents
        out = []
        for start in range(0, docs.num_rows, rows):
            out.append(self.stage(docs.slice(start, rows), verify=max(0, verify - start)))
        extra: dict[str, Any] = {"encoder": {self.stage.encoder.backend: 1}} if out else {}
        if not out:  # nothing left of this part: no tokenizer needed
            empty = pa.array([], TOKENS_TYPE)
            out.append(
                docs.append_column("tokens", empty).append_column("image_tokens", image_positions(empty, 0))
            )
        table = pa.concat_tables(out)
        extra["tokens"] = token_counts(table)
        return Processed(table, extra=extra)
