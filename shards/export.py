"""``loom export OUT``: a Loom output in the layouts that trainers' own readers load.

One pass over the shards of a folder (``train/`` when the job made a training dataset, else
``shards/``), in manifest order, writes:

- **energon** — what `Megatron-Energon <https://github.com/NVIDIA/Megatron-Energon>`_ needs to
  load the folder as a dataset of ``InterleavedSample``: beside each tar its ``<shard>.tar.idx``
  (the byte offset of each sample's first member, then the end of the last one) and, in
  ``<folder>/.nv-meta/``, ``.info.json`` (samples per shard), ``split.yaml`` (every shard in the
  ``train`` split), ``dataset.yaml`` and ``sample_loader.py`` (texts and images in reading order).
  Energon names a sample's members after the key's first dot, so ``<key>.0.jpg`` is its part
  ``0.jpg``.
- **megatron** — the token ids as a Megatron-LM indexed dataset, one document per sample in dataset
  order: ``export/megatron/<folder>_text_document.bin`` / ``.idx`` (megatron-core's
  ``IndexedDataset`` format, version 1; ids as uint16 when the vocabulary has fewer than 65,500
  tokens, else int32, since the format has no uint32).
- **hf** — ``<folder>/README.md``, a dataset card whose YAML declares the files and the features,
  so ``datasets.load_dataset("<folder>")`` reads the shards with a fixed schema: ``json`` (the
  document), ``tokens`` (bytes: little-endian uint32), and for every image position the shards use,
  ``<i>.jpg`` / ``<i>.png`` / ``<i>.webp`` (images) and ``<i>.clip`` (bytes: float16). Without it,
  the ``webdataset`` builder infers the schema from the first samples and refuses shards whose
  samples differ in members, as text, pair and interleaved samples do.

The shards are not touched; the files are written beside them (the shard listing ignores them).
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.graph import read_state
from pipeline.storage import Storage
from shards.train import TRAIN, TRAIN_MANIFEST
from shards.validate import IMAGE_FORMATS
from shards.writer import MANIFEST, SHARDS

log = logging.getLogger(__name__)

EXPORTS = ("energon", "megatron", "hf")
ENERGON_VERSION = "7.4.1"  # the megatron-energon the tests load the export with

DATASET_YAML = """\
sample_type:
  __module__: megatron.energon
  __class__: InterleavedSample
sample_loader: sample_loader.py:sample_loader
part_filter: sample_loader.py:part_filter
"""

SAMPLE_LOADER = '''\
"""Loom samples as energon InterleavedSample: texts and images in reading order (written by loom export)."""

IMAGE_FORMATS = ("jpg", "png", "webp")


def sample_loader(raw: dict) -> dict:
    doc = raw["json"]
    sequence = []
    for i, (text, image) in enumerate(zip(doc["texts"], doc["images"])):
        if text is not None:
            sequence.append(text)
        elif image is not None and image.get("sha256"):
            picture = next((raw[f"{i}.{f}"] for f in IMAGE_FORMATS if f"{i}.{f}" in raw), None)
            if picture is not None:
                sequence.append(picture)
    return dict(sequence=sequence)


def part_filter(part: str) -> bool:
    return part == "json" or part.rsplit(".", 1)[-1] in IMAGE_FORMATS
'''

#: megatron-core's indexed dataset: header magic, version and dtype codes.
MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}


@dataclass
class Exported:
    """What an export wrote, for the command's summary."""

    folder: str
    shards: int = 0
    samples: int = 0
    tokens: int = 0
    image_positions: int = 0
    files: list[str] = field(default_factory=list)


def default_folder(storage: Storage) -> str:
    return TRAIN if storage.exists(TRAIN_MANIFEST) else SHARDS


def vocab_size(storage: Storage) -> int | None:
    """The vocabulary of the job's tokenizer (its card), or None."""
    state = read_state(storage, "tokenizer")
    card = state.get("writes", {}).get("card") if state else None
    return storage.read_json(card)["vocab_size"] if card and storage.exists(card) else None


def sample_offsets(tar: tarfile.TarFile) -> tuple[list[int], dict[str, bytes], set[str]]:
    """Of one shard: the header offset of each sample's first member, then the end of the last
    member (energon's ``.tar.idx``); each sample's token ids; its members' names after the key."""
    offsets, tokens, parts, last = [], {}, set(), None
    for member in tar:
        if not member.isreg():
            continue
        key, _, part = member.name.partition(".")
        if key != last:
            offsets.append(member.offset)
            last = key
        parts.add(part)
        if part == "tokens":
            tokens[key] = tar.extractfile(member).read()
    offsets.append(tar.offset)
    return offsets, tokens, parts


def export(storage: Storage, folder: str | None = None, to: tuple[str, ...] = EXPORTS) -> Exported:
    """Write the exports ``to`` for the shards of ``folder`` (default :func:`default_folder`)."""
    folder = folder or default_folder(storage)
    manifest = TRAIN_MANIFEST if folder == TRAIN else MANIFEST
    if not storage.exists(manifest):
        raise FileNotFoundError(f"{storage.uri(manifest)}: no manifest (has the job finished?)")
    unknown = sorted(set(to) - set(EXPORTS))
    if unknown:
        raise ValueError(f"unknown export {unknown[0]!r}: choose from {', '.join(EXPORTS)}")
    shards = [r["shard"] for r in storage.read_parquet(manifest, ["shard"]).to_pylist()]
    out = Exported(folder)
    counts: dict[str, int] = {}
    positions: set[int] = set()
    vocab = vocab_size(storage)
    dtype = np.dtype(np.uint16) if vocab is not None and vocab < 65_500 else np.dtype(np.int32)
    lengths: list[int] = []
    with tempfile.TemporaryDirectory(prefix="loom-export-") as tmp:
        bin_path = os.path.join(tmp, "tokens.bin")
        with open(bin_path, "wb") as bin_file:
            for shard in shards:
                with tarfile.open(fileobj=io.BytesIO(storage.read_bytes(shard)), mode="r:") as tar:
                    offsets, tokens, parts = sample_offsets(tar)
                name = shard.removeprefix(f"{folder}/")
                counts[name] = len(offsets) - 1
                positions |= {int(p.split(".")[0]) for p in parts if p.split(".")[0].isdigit()}
                if "energon" in to:
                    storage.write_bytes(f"{shard}.idx", struct.pack(f"<{len(offsets)}Q", *offsets))
                if "megatron" in to:
                    for data in tokens.values():  # in tar order: the dataset's
                        ids = np.frombuffer(data, "<u4").astype(dtype)
                        bin_file.write(ids.tobytes())
                        lengths.append(len(ids))
                out.tokens += sum(len(t) // 4 for t in tokens.values())
        out.shards, out.samples, out.image_positions = len(shards), sum(counts.values()), len(positions)
        if "megatron" in to:
            prefix = f"export/megatron/{folder}_text_document"
            storage.put_file(bin_path, f"{prefix}.bin")
            storage.write_bytes(f"{prefix}.idx", megatron_index(lengths, dtype))
            out.files += [f"{prefix}.bin", f"{prefix}.idx"]
    if "energon" in to:
        meta = f"{folder}/.nv-meta"
        split = {"split_parts": {"train": sorted(counts), "val": [], "test": []}, "exclude": []}
        storage.write_bytes(
            f"{meta}/.info.json",
            json.dumps({"energon_version": ENERGON_VERSION, "shard_counts": counts}, indent=1).encode(),
        )
        storage.write_bytes(f"{meta}/split.yaml", json.dumps(split, indent=1).encode())  # JSON is YAML
        storage.write_bytes(f"{meta}/dataset.yaml", DATASET_YAML.encode())
        storage.write_bytes(f"{meta}/sample_loader.py", SAMPLE_LOADER.encode())
        out.files += [f"{folder}/<shard>.tar.idx", f"{meta}/"]
    if "hf" in to:
        storage.write_bytes(f"{folder}/README.md", dataset_card(sorted(positions)).encode())
        out.files.append(f"{folder}/README.md")
    log.info("export %s: %d shards, %d samples, %d tokens", folder, out.shards, out.samples, out.tokens)
    return out


def megatron_index(lengths: list[int], dtype: np.dtype) -> bytes:
    """The ``.idx`` of a megatron-core indexed dataset (version 1) of one sequence per document."""
    sizes = np.asarray(lengths, np.int32)
    pointers = np.concatenate([[0], np.cumsum(sizes.astype(np.int64) * dtype.itemsize)[:-1]]).astype(np.int64)
    documents = np.arange(len(sizes) + 1, dtype=np.int64)
    head = MEGATRON_MAGIC + struct.pack("<Q", 1) + struct.pack("<B", MEGATRON_DTYPES[dtype])
    head += struct.pack("<Q", len(sizes)) + struct.pack("<Q", len(documents))
    return head + sizes.tobytes() + pointers[: len(sizes)].tobytes() + documents.tobytes()


def dataset_card(positions: list[int]) -> str:
    """A Hugging Face dataset card (README.md) declaring the shards' files and features."""
    features: list[dict[str, Any]] = [
        {"name": "__key__", "dtype": "string"},
        {"name": "__url__", "dtype": "string"},
        {"name": "json", "dtype": "json"},
        {"name": "tokens", "dtype": "binary"},
    ]
    for i in positions:
        features += [{"name": f"{i}.{f}", "dtype": "image"} for f in IMAGE_FORMATS]
        features.append({"name": f"{i}.clip", "dtype": "binary"})
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        '    path: "*.tar"',
    ]
    lines += ["dataset_info:", "  features:"]
    for f in features:
        lines += [f"  - name: {json.dumps(f['name'])}", f"    dtype: {f['dtype']}"]
    lines += [
        "---",
        "# Loom shards",
        "",
        "Webdataset shards written by Loom (docs/FORMAT.md). `json` is the document; `tokens` its token",
        "ids (little-endian uint32: `numpy.frombuffer(row['tokens'], '<u4')`); `<i>.jpg|png|webp` the image",
        "at position `i` of `json['images']`; `<i>.clip` its CLIP embedding (little-endian float16).",
        "",
    ]
    return "\n".join(lines)
