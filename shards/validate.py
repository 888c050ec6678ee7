"""``loom validate OUT``: re-read every shard and check it against the manifest."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pipeline.graph import read_state
from pipeline.schema import KINDS, check_document
from pipeline.storage import Storage
from shards.train import SUBSETS, TRAIN, TRAIN_MANIFEST
from shards.writer import FORMAT

IMAGE_FORMATS = ("jpg", "png", "webp")


@dataclass(frozen=True)
class Specials:
    """The ids a tokenized sample must hold: ``<s>`` first, ``</s>`` last, ``<image>`` ``</image>``."""

    bos: int
    eos: int
    image: int
    image_end: int


def load_specials(storage: Storage) -> Specials | None:
    """The special ids of the tokenizer the job wrote (its card: the tokenizer step's ``card``)."""
    state = read_state(storage, "tokenizer")
    card = state.get("writes", {}).get("card") if state else None
    if not card or not storage.exists(card):
        return None
    ids = storage.read_json(card)["special_tokens"]
    return Specials(ids["<s>"], ids["</s>"], ids["<image>"], ids["</image>"])


@dataclass
class Report:
    shards: int = 0
    samples: int = 0
    problems: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict, repr=False)  # sample key → shard
    repeats_ok: bool = False  # training shards: a repeated document's key is <id>-<epoch>

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_output(storage: Storage) -> Report:
    """Every shard of ``shards/`` against ``manifest.parquet`` and, when the job made a training
    dataset, every shard of ``train/`` against its manifest (:func:`validate_train`)."""
    report = Report()
    if not storage.exists("manifest.parquet"):
        report.problems.append(f"{storage.uri()}: no manifest.parquet (has the job finished?)")
        return report
    _check_manifest(storage, "manifest.parquet", "shards", report)
    if storage.exists(TRAIN_MANIFEST):
        train = validate_train(storage)
        report.shards += train.shards
        report.samples += train.samples
        report.problems.extend(train.problems)
    return report


def validate_train(storage: Storage) -> Report:
    """The training shards against ``train/manifest.parquet``: bytes, counts, tokens by kind, the
    cumulative offsets, keys unique across the dataset, and the subsets within it."""
    report = Report(repeats_ok=True)
    rows = _check_manifest(storage, TRAIN_MANIFEST, TRAIN, report)
    tokens = samples = 0
    for row in rows:
        name = row["shard"]
        if (row["token_offset"], row["sample_offset"]) != (tokens, samples):
            report.problems.append(
                f"{name}: offsets {row['token_offset']}/{row['sample_offset']}, expected {tokens}/{samples}"
            )
        if sum(row[f"{k}_tokens"] for k in KINDS) != row["tokens"]:
            report.problems.append(f"{name}: tokens by kind do not add up to {row['tokens']}")
        tokens += row["tokens"]
        samples += row["samples"]
    if storage.exists(SUBSETS):
        report.problems.extend(_check_subsets(storage.read_json(SUBSETS)["subsets"], rows))
    return report


def _check_subsets(subsets: list[dict], rows: list[dict]) -> list[str]:
    """Each subset a prefix of the manifest's shards, its samples and tokens where its last shard
    says, and each nested in the next."""
    problems, before = [], 0
    for subset in sorted(subsets, key=lambda s: s["fraction"]):
        where = f"{SUBSETS}: subset {subset['fraction']}"
        shards = subset["shards"]
        if not shards or shards != [r["shard"] for r in rows[: len(shards)]]:
            problems.append(f"{where}: its shards are not the first shards of the manifest")
            continue
        last = rows[len(shards) - 1]
        if not 0 < subset["last_shard_samples"] <= last["samples"] or subset["samples"] != (
            last["sample_offset"] + subset["last_shard_samples"]
        ):
            problems.append(f"{where}: {subset['samples']} samples do not end in {last['shard']}")
        if not last["token_offset"] < subset["tokens"] <= last["token_offset"] + last["tokens"]:
            problems.append(f"{where}: {subset['tokens']} tokens do not end in {last['shard']}")
        if subset["samples"] < before:
            problems.append(f"{where}: smaller than the subset before it (not nested)")
        before = subset["samples"]
    return problems


def _check_manifest(storage: Storage, manifest: str, folder: str, report: Report) -> list[dict]:
    """Each shard a manifest lists, checked; a shard listed twice or not listed is a problem."""
    listed = set()
    specials = load_specials(storage)
    rows = storage.read_parquet(manifest).to_pylist()
    for row in rows:
        if row["shard"] in listed:
            report.problems.append(f"{row['shard']}: listed twice in the manifest")
            continue
        listed.add(row["shard"])
        report.shards += 1
        report.problems.extend(_check_shard(storage, row, report, specials))
    on_disk = {f"{folder}/{n}" for n in storage.list(folder, ".tar")}
    for extra in sorted(on_disk - listed):
        report.problems.append(f"{extra}: shard not in the manifest")
    return rows


def _check_shard(storage: Storage, row: dict, report: Report, specials: Specials | None) -> list[str]:
    name = row["shard"]
    if not storage.exists(name):
        return [f"{name}: missing"]
    data = storage.read_bytes(name)
    problems = []
    if hashlib.sha256(data).hexdigest() != row["sha256"]:
        problems.append(f"{name}: sha256 differs from the manifest")
    if len(data) != row["bytes"]:
        problems.append(f"{name}: {len(data)} bytes, manifest says {row['bytes']}")
    kinds: Counter = Counter()
    images = samples = image_files = tokens = embeddings = 0
    dim = row.get("embedding_dim")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = tar.getmembers()
            names = {m.name for m in members}
            for member in members:
                key, _, ext = member.name.partition(".")
                if ext.endswith(".clip"):
                    embeddings += 1
                    if dim and member.size != 2 * dim:
                        problems.append(f"{name}:{member.name}: {member.size} bytes, not {dim} float16")
                if ext != "json":
                    continue
                samples += 1
                if key in report.keys:
                    problems.append(f"{name}:{key}: the same key is in {report.keys[key]}")
                report.keys[key] = name
                doc = json.loads(tar.extractfile(member).read())
                problems.extend(_check_sample(name, key, doc, report.repeats_ok))
                if "tokens" in doc:
                    member = f"{key}.tokens"
                    if member not in names:
                        problems.append(f"{name}:{key}: no tokens member")
                    else:
                        ids = tar.extractfile(member).read()
                        problems.extend(_check_tokens(f"{name}:{key}", doc, ids, specials))
                        tokens += doc["tokens"]["count"]
                kinds[doc.get("kind")] += 1
                images += sum(im is not None for im in doc.get("images", []))
                for i, im in enumerate(doc.get("images", [])):
                    if im is None or not im.get("sha256"):
                        continue
                    if not any(f"{key}.{i}.{fmt}" in names for fmt in IMAGE_FORMATS):
                        problems.append(f"{name}:{key}: image {i} ({im['sha256'][:12]}…) has no member")
                    else:
                        image_files += 1
    except (tarfile.TarError, json.JSONDecodeError, UnicodeDecodeError) as err:
        return problems + [f"{name}: unreadable: {err}"]
    report.samples += samples
    for key, got in (
        ("samples", samples),
        ("images", images),
        ("image_files", image_files),
        ("tokens", tokens),
        ("embeddings", embeddings),
        *((k, kinds[k]) for k in ("text", "pair", "interleaved")),
    ):
        if got != row.get(key, got):
            problems.append(f"{name}: {got} {key}, manifest says {row[key]}")
    return problems


def _check_sample(shard: str, key: str, doc: dict, repeats_ok: bool = False) -> list[str]:
    where = f"{shard}:{key}"
    missing = {"format", "id", "source", "kind", "url", "texts", "images", "meta"} - doc.keys()
    if missing:
        return [f"{where}: missing fields {sorted(missing)}"]
    problems = [f"{where}: {p}" for p in check_document(doc)]
    if doc["format"] != FORMAT:
        problems.append(f"{where}: format {doc['format']!r}, expected {FORMAT!r}")
    repeat = repeats_ok and re.fullmatch(rf"{re.escape(doc['id'])}-[1-9]\d*", key)
    if doc["id"] != key and not repeat:
        problems.append(f"{where}: id {doc['id']!r} differs from the key")
    return problems


def _check_tokens(where: str, doc: dict, data: bytes, specials: Specials | None) -> list[str]:
    """The ``tokens`` member against the JSON: its length, ``<s>`` … ``</s>``, and an ``<image>``
    ``</image>`` pair at each listed position, one per image."""
    count, positions = doc["tokens"]["count"], doc["tokens"]["images"]
    if len(data) != 4 * count:
        return [f"{where}: tokens member holds {len(data)} bytes, the JSON says {count} tokens"]
    n_images = sum(im is not None for im in doc["images"])
    if len(positions) != n_images:
        return [f"{where}: {len(positions)} <image> positions for {n_images} images"]
    if specials is None:
        return []
    ids = np.frombuffer(data, dtype="<u4")
    problems = []
    if count < 2 or ids[0] != specials.bos or ids[-1] != specials.eos:
        problems.append(f"{where}: tokens do not start with <s> and end with </s>")
    markers = np.flatnonzero(ids == specials.image).tolist()
    if markers != positions or any(p + 1 >= count or ids[p + 1] != specials.image_end for p in positions):
        problems.append(f"{where}: <image></image> pairs are not where the JSON says")
    return problems
