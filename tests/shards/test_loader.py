"""The packing loader on the demo's training set: every token once, in well-formed sequences;
ranks × workers sharing the data; exact resume; clear errors on bad shards."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shards.loader import IGNORE, LoaderConfig, PackedDataset, PackedLoader
from shards.packing import cut, greedy
from shards.stream import LoaderError, Reader

K = 8  # placeholders per image
SMALL = dict(seq_len=512, image_tokens=K, buffer_sequences=4)  # many small blocks: many resume points
BOS, EOS, PAD, IMAGE, IMAGE_END = 0, 1, 2, 3, 4


def shard_samples(result: Path, folder: str = "train") -> dict[str, dict]:
    """key → its members, read with tarfile, in manifest order."""
    manifest = "train/manifest.parquet" if folder == "train" else "manifest.parquet"
    samples: dict[str, dict] = {}
    for row in pq.read_table(result / manifest).to_pylist():
        with tarfile.open(result / row["shard"]) as tar:
            for member in tar:
                key, _, part = member.name.partition(".")
                samples.setdefault(key, {"shard": row["shard"]})[part] = tar.extractfile(member).read()
    return samples


def expanded(sample: dict) -> tuple[np.ndarray, list[int], list[bytes]]:
    """What the loader should make of a sample: ids with k placeholders per fetched image (the
    markers of an image without bytes removed), where each span starts, and the embeddings."""
    doc = json.loads(sample["json"])
    ids = np.frombuffer(sample["tokens"], "<u4").tolist()
    positions = [i for i, im in enumerate(doc["images"]) if im is not None]
    out, spans, vectors, at = [], [], [], 0
    for start, i in zip([p for p, t in enumerate(ids) if t == IMAGE], positions, strict=True):
        out += ids[at:start]
        if doc["images"][i]["sha256"]:
            spans.append(len(out))
            out += [IMAGE] + [PAD] * K + [IMAGE_END]
            vectors.append(sample[f"{i}.clip"])
        at = start + 2
    return np.array(out + ids[at:]), spans, vectors


def test_each_document_is_packed_once_into_well_formed_sequences(demo_result):
    samples = shard_samples(demo_result)
    dataset = PackedDataset(demo_result, **SMALL)
    pieces: dict[str, dict[int, np.ndarray]] = {}
    sequences = list(dataset)
    for seq in sequences:
        ids, labels, positions = seq["input_ids"].numpy(), seq["labels"].numpy(), seq["position_ids"].numpy()
        cu = seq["cu_seqlens"].tolist()
        assert len(ids) == 512 and cu[0] == 0 and cu[-1] == 512
        assert (ids[seq["tokens"] :] == PAD).all() and (labels[seq["tokens"] :] == IGNORE).all()
        images = iter(zip(seq["image_positions"].tolist(), seq["image_embeddings"].numpy(), strict=True))
        for name, lo, hi in zip(seq["documents"], cu, cu[1:], strict=False):  # then padding
            key, start = name.split("@")
            doc, spans, vectors = expanded(samples[key])
            piece = ids[lo:hi]
            assert (piece == doc[int(start) : int(start) + hi - lo]).all()
            assert (positions[lo:hi] == np.arange(hi - lo)).all()
            pieces.setdefault(key, {})[int(start)] = piece
            for n, span in enumerate(spans):
                if int(start) <= span < int(start) + hi - lo:
                    at, vector = next(images)
                    assert at == lo + span - int(start) + 1  # the first placeholder
                    assert (
                        ids[at - 1] == IMAGE and (ids[at : at + K] == PAD).all() and ids[at + K] == IMAGE_END
                    )
                    assert vector.tobytes() == vectors[n]  # the shard's CLIP embedding of that image
            nxt = doc[int(start) + 1 : int(start) + hi - lo + 1]
            want = np.full(hi - lo, IGNORE)
            want[: len(nxt)] = nxt
            for span in spans:  # no loss on predicting placeholders and </image>
                s = span - int(start)
                want[max(0, s) : max(0, s + K + 1)] = IGNORE
            assert (labels[lo:hi] == want).all()
        assert next(images, None) is None
    assert set(pieces) == set(samples)  # every document; each piece once, and they make it whole
    for key, parts in pieces.items():
        assert (np.concatenate([parts[s] for s in sorted(parts)]) == expanded(samples[key])[0]).all()


def test_fill_at_8k_on_the_demo_mixture_beats_a_naive_sequential_packer(demo_result):
    dataset = PackedDataset(demo_result, seq_len=8192, image_tokens=64, epochs=40)
    sequences = list(dataset)
    tokens = sum(s["tokens"] for s in sequences)
    fill = tokens / (8192 * len(sequences))
    src = dataset.source  # the same stream of documents, packed in order by the naive packer
    reader = Reader(src, 64, src.pad, "none", skip=False)
    docs = reader.read(src.runs(0, 40 * src.documents, 0, True), Counter())
    pieces = [p for d, doc in enumerate(docs) for p in cut(d, len(doc.ids), doc.spans, 66, 8192, None)]
    naive = greedy(pieces, 8192, None)
    assert fill >= 0.98 and len(sequences) < len(naive), (fill, tokens / (8192 * len(naive)))


def test_images_decoded_and_the_image_cap(demo_result):
    dataset = PackedDataset(demo_result, seq_len=2048, image_tokens=K, images="decoded", max_images=2)
    sequences = list(dataset)
    assert max(len(s["images"]) for s in sequences) == 2
    for seq in sequences:
        assert len(seq["images"]) == len(seq["image_positions"])
        for picture in seq["images"]:
            assert picture.dtype.is_floating_point is False and picture.shape[0] == 3


def test_loss_across_documents_labels_the_next_documents_first_token(demo_result):
    dataset = PackedDataset(demo_result, seq_len=256, image_tokens=K, loss_across_documents=True)
    starts = cuts = 0
    for seq in dataset:
        bounds = seq["cu_seqlens"].tolist()
        for name, end in zip(seq["documents"][1:], bounds[1:-1], strict=False):
            before = seq["labels"][end - 1].item()
            if seq["input_ids"][end - 1] != EOS:
                continue  # a cut piece ends there: its label is its document's next id
            if name.endswith("@0"):  # a document starts: </s> → <s>
                assert before == BOS
                starts += 1
            else:  # the rest of a cut document: no loss
                assert before == IGNORE
                cuts += 1
    assert starts and cuts


def identity(batch: dict) -> tuple:
    return tuple(tuple(row) for row in batch["documents"])


def run(result: Path, world: int, rank: int, workers: int, state=None, stop=None, **options):
    dataset = PackedDataset(result, rank=rank, world_size=world, **{**SMALL, "epochs": 2, **options})
    loader = PackedLoader(dataset, batch_size=2, num_workers=workers)
    if state is not None:
        loader.load_state_dict(state)
    out = []
    for batch in loader:
        out.append(identity(batch))
        if stop is not None and len(out) == stop:
            break
    return out, json.loads(json.dumps(loader.state_dict()))  # a state is plain JSON


def sequences(batches: list[tuple]) -> list[tuple]:
    return sorted(seq for batch in batches for seq in batch)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_resume_gives_exactly_the_batches_not_yet_yielded(demo_result, world, workers):
    single, _ = run(demo_result, 1, 0, 0)
    everything = []
    for rank in range(world):
        full, _ = run(demo_result, world, rank, workers)
        everything += full
        assert len(full) >= 4
        for stop in sorted({1, len(full) // 2, len(full) - 1}):
            first, state = run(demo_result, world, rank, workers, stop=stop)
            rest, _ = run(demo_result, world, rank, workers, state=state)
            assert first + rest == full, f"rank {rank}/{world}, {workers} workers, stopped after {stop}"
    assert sequences(everything) == sequences(single)  # the ranks share the data: no overlap, no loss


@pytest.mark.parametrize("before, after", [((2, 2), (3, 0)), ((3, 0), (1, 2))])
def test_resume_under_another_world_size_continues_from_the_global_position(demo_result, before, after):
    single, _ = run(demo_result, 1, 0, 0)
    world, workers = before
    first, states = [], []
    for rank in range(world):
        got, state = run(demo_result, world, rank, workers, stop=3 + rank)
        first += got
        states.append(state)
    rest = []
    for rank in range(after[0]):
        got, _ = run(demo_result, after[0], rank, after[1], state=states)
        rest += got
    assert sequences(first + rest) == sequences(single)


def test_resume_under_another_world_size_needs_every_ranks_state(demo_result):
    _, state = run(demo_result, 2, 0, 0, stop=1)
    with pytest.raises(LoaderError, match=r"ranks \[1\] of 2 are missing"):
        run(demo_result, 3, 0, 0, state=[state])


def test_a_state_from_other_packing_options_is_refused(demo_result):
    _, state = run(demo_result, 1, 0, 0, stop=1)
    with pytest.raises(LoaderError, match="other packing options"):
        run(demo_result, 1, 0, 0, state=state, seq_len=256)


def test_a_subset_reads_its_prefix_of_the_dataset(demo_result):
    subset = json.loads((demo_result / "train/subsets.json").read_text())["subsets"][0]
    dataset = PackedDataset(demo_result, **SMALL, subset=subset["fraction"])
    whole = PackedDataset(demo_result, **SMALL)
    assert 0.7 < dataset.block_documents / whole.block_documents < 1.4  # blocks of the same tokens
    keys = {name.split("@")[0] for seq in dataset for name in seq["documents"]}
    assert len(keys) == subset["samples"]
    with pytest.raises(LoaderError, match="train/subsets.json has"):
        PackedDataset(demo_result, subset=0.3)


def test_an_image_span_longer_than_the_sequence_is_a_config_error():
    with pytest.raises(ValueError, match="exceeds seq_len"):
        LoaderConfig(seq_len=64, image_tokens=64)


# -- bad input ----------------------------------------------------------------------------------


def broken_copy(result: Path, tmp_path: Path, damage) -> tuple[Path, str, str]:
    """A copy of the output whose first training shard has one sample damaged by ``damage``
    (members dict → members dict); returns the copy, the shard and the key."""
    copy = tmp_path / "result"
    shutil.copytree(result, copy, ignore=shutil.ignore_patterns("*.idx", "README.md", "export"))
    shard = pq.read_table(copy / "train/manifest.parquet")["shard"][0].as_py()
    with tarfile.open(copy / shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    key = next(m.name.split(".")[0] for m, _ in members if m.name.endswith(".clip"))
    parts = {m.name.partition(".")[2]: data for m, data in members if m.name.startswith(key + ".")}
    parts = damage(parts)
    with tarfile.open(copy / shard, "w") as tar:
        written = False
        for m, data in members:
            if m.name.startswith(key + "."):
                if written:
                    continue
                written = True
                for part, body in parts.items():
                    info = tarfile.TarInfo(f"{key}.{part}")
                    info.size = len(body)
                    tar.addfile(info, io.BytesIO(body))
                continue
            tar.addfile(m, io.BytesIO(data))
    return copy, shard, key


def no_eos(parts: dict) -> dict:
    ids = np.frombuffer(parts["tokens"], "<u4").copy()
    return {**parts, "tokens": ids[:-1].tobytes()}


def unbalanced(parts: dict) -> dict:
    ids = np.frombuffer(parts["tokens"], "<u4").copy()
    ids[np.flatnonzero(ids == IMAGE_END)[0]] = 100
    return {**parts, "tokens": ids.tobytes()}


def no_embedding(parts: dict) -> dict:
    return {p: v for p, v in parts.items() if not p.endswith(".clip")}


@pytest.mark.parametrize(
    "damage, reason, message",
    [
        (no_eos, "bad_tokens", "do not run from <s>"),
        (unbalanced, "unbalanced_image", "without its </image>"),
        (no_embedding, "missing_embedding", "no embedding member 0.clip"),
    ],
)
def test_a_bad_sample_is_an_error_naming_shard_and_key_or_a_counted_skip(
    demo_result, tmp_path, damage, reason, message
):
    copy, shard, key = broken_copy(demo_result, tmp_path, damage)
    with pytest.raises(LoaderError, match=rf"{shard}: sample {key}: .*{message}"):
        list(PackedDataset(copy, **SMALL))
    loader = PackedLoader(PackedDataset(copy, **SMALL, on_error="skip"), batch_size=4)
    keys = {name.split("@")[0] for batch in loader for row in batch["documents"] for name in row}
    assert key not in keys and len(keys) == len(shard_samples(demo_result)) - 1
    assert loader.skipped == {reason: 1}


def test_a_truncated_shard_is_an_error_naming_it_and_its_samples_are_counted(demo_result, tmp_path):
    copy, shard, _ = broken_copy(demo_result, tmp_path, lambda parts: parts)
    data = (copy / shard).read_bytes()
    (copy / shard).write_bytes(data[: len(data) // 2])
    with pytest.raises(LoaderError, match=rf"{shard}: truncated"):
        list(PackedDataset(copy, **SMALL))
    rows = pq.read_table(copy / "train/manifest.parquet").to_pylist()
    loader = PackedLoader(PackedDataset(copy, **SMALL, on_error="skip"))
    assert len(list(loader)) > 0
    assert loader.skipped == {"bad_shard": next(r["samples"] for r in rows if r["shard"] == shard)}
    for row in rows:  # every shard truncated, an endless stream: an error, not a silent spin
        (copy / row["shard"]).write_bytes((copy / row["shard"]).read_bytes()[:1000])
    with pytest.raises(LoaderError, match="every sample was skipped"):
        list(PackedDataset(copy, **SMALL, on_error="skip", epochs=None))


def test_a_file_that_is_not_a_tar_is_an_error_naming_it(demo_result, tmp_path):
    copy, shard, _ = broken_copy(demo_result, tmp_path, lambda parts: parts)
    (copy / shard).write_bytes(b"<html>503 Slow Down</html>\n" * 100)
    with pytest.raises(LoaderError, match=rf"{shard}: not a tar"):
        list(PackedDataset(copy, **SMALL))


def test_a_malformed_document_or_picture_is_an_error_naming_shard_and_key(demo_result, tmp_path):
    copy, shard, key = broken_copy(demo_result, tmp_path, lambda parts: {**parts, "json": b"[1, 2]"})
    with pytest.raises(LoaderError, match=rf"{shard}: sample {key}: its json member is not a Loom document"):
        list(PackedDataset(copy, **SMALL))
    copy, shard, key = broken_copy(
        demo_result, tmp_path / "2", lambda parts: {**parts, "0.jpg": b"\xff\xd8junk"}
    )
    with pytest.raises(LoaderError, match=rf"{shard}: sample {key}: 0.jpg is not a readable picture"):
        list(PackedDataset(copy, **SMALL, images="decoded"))
    loader = PackedLoader(PackedDataset(copy, **SMALL, images="decoded", on_error="skip"), batch_size=4)
    assert sum(len(b["images"]) for b in loader) > 0 and loader.skipped == {"bad_image": 1}
