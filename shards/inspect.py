"""``loom inspect SHARD``: what a shard holds, one document at a time, for a person to read."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

from pipeline.storage import Storage


def read_samples(storage: Storage, shard: str) -> Iterator[dict[str, Any]]:
    """The JSON documents of a shard, in order (plain tar reading, no Loom format code)."""
    with tarfile.open(fileobj=io.BytesIO(storage.read_bytes(shard)), mode="r:") as tar:
        for member in tar.getmembers():
            if member.name.endswith(".json"):
                yield json.loads(tar.extractfile(member).read())


def describe(doc: dict[str, Any], width: int = 100) -> str:
    """A few lines per document: kind, url, then its texts and images in reading order."""
    lines = [f"{doc['id']}  {doc['kind']}  {doc['url']}"]
    if tokens := doc.get("tokens"):
        lines.append(f"  tokens: {tokens['count']:,} (<image> at {tokens['images']})")
    if title := doc["meta"].get("title"):
        lines.append(f"  title: {title}")
    for text, image in zip(doc["texts"], doc["images"], strict=True):
        if image is not None:
            size = f"{image['width'] or '?'}x{image['height'] or '?'}"
            if image.get("sha256"):
                size += f" sha256:{image['sha256'][:12]}"
            lines.append(
                f"  [image {size}] {image['url']}" + (f"  alt={image['alt']!r}" if image["alt"] else "")
            )
        else:
            flat = " ".join(text.split())
            lines.append(f"  {flat[:width]}{'…' if len(flat) > width else ''}  ({len(text):,} chars)")
    return "\n".join(lines)
