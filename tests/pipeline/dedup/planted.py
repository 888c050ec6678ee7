"""A synthetic corpus with planted near-duplicates of known Jaccard similarity, written as a WARC.

Each pair is a base page and a variant made by replacing random words of the base until the exact
Jaccard similarity of their word 5-gram sets (the shingles Loom's MinHash uses) reaches the planted
level. Bases share nothing but a vocabulary, so pairs are the only duplicates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from fastwarc import GzipWriter, WarcRecord, WarcRecordType

from pipeline.dedup.minhash import _char_class

NGRAM = 5


def words_of(text: str) -> list[str]:
    """Loom's word split, in plain Python (the reference for exact Jaccard); lowercased like Loom
    (Arrow's ``utf8_lower``: Turkish İ becomes i, where Python's ``str.lower`` adds a combining dot)."""
    out, cur = [], ""
    for ch in pc.utf8_lower(pa.scalar(text)).as_py():
        kind = _char_class.py_func(ord(ch))
        if kind == 0:
            cur += ch
            continue
        if cur:
            out.append(cur)
            cur = ""
        if kind == 2:
            out.append(ch)
    if cur:
        out.append(cur)
    return out


def shingles(text: str, n: int = NGRAM) -> set[str]:
    w = words_of(text)
    if len(w) < n:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True)
class Page:
    url: str
    text: str
    pair: int


def vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "da", "fe", "gu", "ha", "ji"]
    words = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size * 2)}
    return sorted(words)[:size]


def planted_pairs(levels: list[float], per_level: int, seed: int = 7, length: int = 300) -> list[Page]:
    """Two pages per pair: the base and a variant at (just under) each planted similarity level."""
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    pages = []
    pair = 0
    for level in levels:
        for _ in range(per_level):
            base = [rng.choice(vocab) for _ in range(length)]
            variant = list(base)
            target = shingles(" ".join(base))
            while jaccard(target, shingles(" ".join(variant))) > level + 0.005:
                variant[rng.randrange(length)] = rng.choice(vocab)
            for k, words in enumerate((base, variant)):
                sentences = [" ".join(words[i : i + 15]).capitalize() + "." for i in range(0, length, 15)]
                paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
                pages.append(Page(f"https://planted{pair}.example/{k}", "\n\n".join(paragraphs), pair))
            pair += 1
    return pages


def write_warc(path: Path, pages: list[Page]) -> Path:
    """One gzip member per response record, like Common Crawl."""
    with open(path, "wb") as fh:
        writer = GzipWriter(fh)
        for i, page in enumerate(pages):
            paragraphs = "".join(f"<p>{p}</p>" for p in page.text.split("\n\n"))
            head = f"<head><title>Page {i}</title></head>"
            html = f"<html>{head}<body><article>{paragraphs}</article></body></html>"
            body = html.encode()
            http = (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            record = WarcRecord()
            record.init_headers(WarcRecordType.response, f"<urn:uuid:planted-{i}>".encode())
            record.headers["WARC-Target-URI"] = page.url
            record.headers["WARC-Date"] = datetime(2024, 1, 1, 0, 0, i % 60).strftime("%Y-%m-%dT%H:%M:%SZ")
            record.headers["Content-Type"] = "application/http; msgtype=response"
            record.set_bytes_content(http)
            record.write(writer)
            writer.finish()
        writer.close()
    return path
