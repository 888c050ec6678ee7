"""``loom export``: the readers trainers use load Loom output — Megatron-Energon, megatron-core's
indexed dataset and Hugging Face ``datasets`` — each with its own code, on CPU."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs.cli import main
from pipeline.storage import Storage
from shards.validate import validate_output


@pytest.fixture(scope="module")
def exported(demo_result: Path) -> Path:
    """The demo's ``loom export`` of its training set and of its shards."""
    result = demo_result
    assert main(["export", str(result)]) == 0
    assert main(["export", str(result), "--folder", "shards", "--to", "megatron", "hf"]) == 0
    return result


def tar_samples(result: Path, folder: str) -> list[tuple[str, np.ndarray, int]]:
    """(key, token ids, images with a member) of every sample, in manifest order."""
    manifest = "train/manifest.parquet" if folder == "train" else "manifest.parquet"
    out = []
    for shard in pq.read_table(result / manifest)["shard"].to_pylist():
        with tarfile.open(result / shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name in (n for n in members if n.endswith(".json")):
            key = name.removesuffix(".json")
            images = sum(
                n.startswith(f"{key}.") and n.rsplit(".", 1)[-1] in ("jpg", "png", "webp") for n in members
            )
            out.append((key, np.frombuffer(members[f"{key}.tokens"], "<u4"), images))
    return out


def test_megatron_energon_loads_the_training_set_as_interleaved_samples(exported):
    from megatron.energon import InterleavedSample, WorkerConfig, get_loader, get_val_dataset

    worker = WorkerConfig(rank=0, world_size=1, num_workers=0)
    dataset = get_val_dataset(exported / "train", split_part="train", worker_config=worker, batch_size=None)
    samples = list(get_loader(dataset))
    expected = tar_samples(exported, "train")
    assert [s.__key__ for s in samples] == [k for k, _, _ in expected]  # every sample once, in order
    assert all(isinstance(s, InterleavedSample) for s in samples)
    images = [sum(hasattr(x, "shape") for x in s.sequence) for s in samples]
    assert images == [n for _, _, n in expected] and sum(images) > 0
    pair = next(s for s in samples if hasattr(s.sequence[0], "shape"))
    assert pair.sequence[0].shape[0] == 3 and isinstance(pair.sequence[1], str)  # the image, then its caption


def test_megatron_core_reads_the_token_ids_as_an_indexed_dataset(exported):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    for folder in ("train", "shards"):
        indexed = IndexedDataset(str(exported / "export" / "megatron" / f"{folder}_text_document"))
        expected = tar_samples(exported, folder)
        assert len(indexed) == len(expected)
        assert all(np.array_equal(indexed[i], ids) for i, (_, ids, _) in enumerate(expected))
        assert indexed[0].dtype == np.uint16  # the demo's 1,024-token vocabulary


def test_hugging_face_datasets_loads_the_folder_with_its_declared_features(exported, tmp_path):
    import datasets

    for folder in ("train", "shards"):
        rows = datasets.load_dataset(str(exported / folder), split="train", cache_dir=str(tmp_path / folder))
        expected = {k: (ids, n) for k, ids, n in tar_samples(exported, folder)}
        assert len(rows) == len(expected)
        for row in rows:
            ids, images = expected[row["__key__"]]
            assert row["json"]["id"] == row["__key__"].split("-")[0]
            assert np.array_equal(np.frombuffer(row["tokens"], "<u4"), ids)
            assert (
                sum(row[c] is not None for c in rows.column_names if c.rsplit(".", 1)[-1] == "jpg") == images
            )
        pair = next(r for r in rows if r["json"]["kind"] == "pair")
        assert pair["0.jpg"].size == (pair["json"]["images"][0]["width"], pair["json"]["images"][0]["height"])
        assert len(np.frombuffer(pair["0.clip"], "<f2")) == 64


def test_the_exports_leave_the_shards_valid_and_name_every_image_position(exported):
    assert validate_output(Storage(str(exported))).ok
    card = (exported / "train" / "README.md").read_text()
    assert '- name: "0.jpg"' in card and '- name: "0.clip"' in card
    info = json.loads((exported / "train" / ".nv-meta" / ".info.json").read_text())
    assert sum(info["shard_counts"].values()) == len(tar_samples(exported, "train"))


def test_an_unknown_export_or_an_unfinished_output_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "no manifest (has the job finished?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path), "--to", "parquet"])
    assert "invalid choice: 'parquet'" in capsys.readouterr().err
