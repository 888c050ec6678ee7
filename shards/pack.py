"""``loom pack OUT``: a dry run of the training loader: how the data packs at a sequence length.

It runs :class:`shards.loader.PackedDataset` over the whole stream in one process and counts what a
trainer would get: sequences, real tokens and the fill (real tokens / sequence slots), documents and
how many were cut, images, samples skipped by reason, and the rate. Each run is kept in
``OUT/pack.json`` (one entry per folder, sequence length, image tokens and epochs), which
``loom stats`` shows as its Packing table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipeline.storage import Storage
from shards.loader import LoaderConfig, PackedDataset, PackedLoader

PACK = "pack.json"


def pack_summary(out: str | Path, config: LoaderConfig) -> dict[str, Any]:
    loader = PackedLoader(PackedDataset(out, config))  # one process, one sequence a batch
    started = time.perf_counter()
    sequences = tokens = images = pieces = cut = 0
    for batch in loader:
        names = batch["documents"][0]
        sequences += 1
        tokens += int(batch["tokens"][0])
        images += len(batch["image_positions"])
        pieces += len(names)
        cut += sum(not name.endswith("@0") for name in names)
    seconds = time.perf_counter() - started
    dataset, skipped = loader.dataset, loader.skipped
    return {
        "folder": dataset.source.folder,
        "seq_len": config.seq_len,
        "image_tokens": config.image_tokens,
        "epochs": config.epochs,
        "sequences": sequences,
        "tokens": tokens,
        "fill": round(tokens / (sequences * config.seq_len), 6) if sequences else 0.0,
        "documents": pieces - cut,
        "continued_pieces": cut,
        "images": images,
        "skipped": dict(skipped),
        "seconds": round(seconds, 3),
        "tokens_s": round(tokens / seconds) if seconds else 0,
    }


def render_pack(summary: dict[str, Any]) -> str:
    s = summary
    skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(s["skipped"].items())) or "none"
    return (
        f"{s['folder']}/ at seq_len {s['seq_len']:,} ({s['image_tokens']} tokens per image), "
        f"{s['epochs'] or 'endless'} epoch(s):\n"
        f"  sequences  {s['sequences']:,}\n"
        f"  tokens     {s['tokens']:,}   fill {s['fill']:.2%}\n"
        f"  documents  {s['documents']:,}   ({s['continued_pieces']:,} pieces continue a cut document)\n"
        f"  images     {s['images']:,}\n"
        f"  skipped    {skipped}\n"
        f"  {s['seconds']:.2f} s, {s['tokens_s']:,} tokens/s in one process\n"
    )


def record(storage: Storage, summary: dict[str, Any]) -> None:
    """Keep ``summary`` in ``OUT/pack.json``, replacing an earlier run with the same settings."""
    runs = load_records(storage)
    s = summary
    key = f"{s['folder']}@{s['seq_len']}/k{s['image_tokens']}/e{s['epochs']}"
    runs[key] = summary
    storage.write_json(PACK, {"runs": dict(sorted(runs.items()))})


def load_records(storage: Storage) -> dict[str, dict[str, Any]]:
    return storage.read_json(PACK)["runs"] if storage.exists(PACK) else {}
