"""Real text for the tokenizer tests, and one tokenizer trained on part of it (once per session)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from pipeline.config import ExtractConfig
from pipeline.extract import extract_html
from pipeline.sources.commoncrawl import nodes_to_lists
from tokenizer.config import TokenizerConfig
from tokenizer.train import train_tokenizer


@pytest.fixture(scope="session")
def articles(shared_data: Path) -> list[list[str | None]]:
    """The 130 readability articles as Loom documents: text blocks with images (None) between."""
    docs = []
    for page in sorted((shared_data / "html/readability/test-pages").glob("*/expected.html")):
        html = page.read_text(encoding="utf-8")
        blocks, _ = nodes_to_lists(
            extract_html(html, "http://fakehost/test/page.html", ExtractConfig()).nodes
        )
        if any(blocks):
            docs.append(blocks)
    assert len(docs) >= 120
    return docs


@pytest.fixture(scope="session")
def sentences(shared_data: Path) -> dict[str, list[str]]:
    """lingua's labelled sentences: language → its sentences (20 languages, CJK and Arabic too)."""
    folder = shared_data / "langid/lingua/sentences"
    return {f.stem: f.read_text(encoding="utf-8").splitlines() for f in sorted(folder.glob("*.txt"))}


@pytest.fixture(scope="session")
def training_texts(articles, sentences) -> list[str]:
    """Every other article and the first half of each language's sentences, NFC."""
    texts = ["\n\n".join(t for t in doc if t) for doc in articles[::2]]
    texts += ["\n".join(lines[: len(lines) // 2]) for lines in sentences.values()]
    return [unicodedata.normalize("NFC", t) for t in texts]


@pytest.fixture(scope="session")
def trained(training_texts) -> Tokenizer:
    """Loom's BPE, 8,000 tokens, trained on ``training_texts``."""
    return train_tokenizer(iter([training_texts]), TokenizerConfig(vocab_size=8000))
