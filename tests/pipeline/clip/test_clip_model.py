"""Loading open_clip models, the device, and the image path split between CPU tasks and the actor."""

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from pipeline.clip.config import ClipConfig
from pipeline.clip.images import embedding_pipeline
from pipeline.clip.model import ClipEncoder, autocast, model_id, preprocess_settings, select_device


def direct_embeddings(encoder: ClipEncoder, photos: list[bytes]) -> np.ndarray:
    """open_clip as its README uses it: PIL, the model's preprocess, encode_image, normalize."""
    with torch.inference_mode():
        x = torch.stack([encoder.preprocess(Image.open(io.BytesIO(b))) for b in photos])
        return torch.nn.functional.normalize(encoder.model.encode_image(x), dim=-1).numpy()


def test_a_checkpoint_loads_through_the_path_real_weights_take(tiny_clip):
    saved = torch.load(tiny_clip.pretrained)["state_dict"]
    encoder = ClipEncoder(tiny_clip)
    loaded = encoder.model.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert encoder.dim == 64 and model_id(tiny_clip) == "loom-tiny-clip/loom-tiny-clip.pt"


def test_on_this_machine_it_runs_on_the_cpu_without_autocast(tiny_clip):
    assert select_device(tiny_clip) == "cpu"
    assert select_device(tiny_clip.model_copy(update={"device": "cpu"})) == "cpu"
    with autocast("cpu", "fp16"):
        assert not torch.is_autocast_enabled()
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        select_device(tiny_clip.model_copy(update={"device": "cuda"}))


def test_a_pretrained_tag_gives_its_preprocessing_without_a_download():
    settings = preprocess_settings(ClipConfig(enabled=True))  # ViT-B-32, laion2b_s34b_b79k
    assert settings["image_size"] == 224 and settings["embed_dim"] == 512
    assert settings["interpolation"] == "bicubic"
    with pytest.raises(ValueError, match="neither a file nor a tag"):
        preprocess_settings(ClipConfig(enabled=True, pretrained="no-such-tag"))


def test_the_ray_stage_gives_open_clips_own_embeddings(tiny_clip, photos, local_ray):
    shas = [hashlib.sha256(b).hexdigest() for b in photos]
    table = pa.table({"part": ["table-00000"] * len(photos), "sha256": shas, "image": photos})
    settings = preprocess_settings(tiny_clip)
    batches = list(embedding_pipeline([table], tiny_clip, settings, n_actors=1))
    got = {
        sha: np.frombuffer(emb, np.float16).astype(np.float32)
        for b in batches
        for sha, emb in zip(b["sha256"].to_pylist(), b["embedding"].to_pylist(), strict=True)
    }
    assert set(got) == set(shas)
    expected = direct_embeddings(ClipEncoder(tiny_clip), photos)
    cosines = [float(got[sha] @ expected[i]) for i, sha in enumerate(shas)]
    assert min(cosines) >= 0.999
    assert all(abs(np.linalg.norm(v) - 1) < 1e-3 for v in got.values())


def test_text_embeddings_are_unit_vectors(tiny_clip):
    vectors = ClipEncoder(tiny_clip).encode_texts(["a red kite over a beach", "北京的天气"])
    assert vectors.shape == (2, 64) and vectors.dtype == np.float16
    assert np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1, atol=1e-3)


def test_nsfw_scores_come_from_the_prompts_or_from_a_trained_head(tiny_clip, tmp_path):
    from filters.clip import ImageScorer

    images = np.eye(64, dtype=np.float16)[:3]
    zero_shot = ImageScorer(tiny_clip).nsfw(images)
    assert zero_shot.shape == (3,) and ((zero_shot > 0) & (zero_shot < 1)).all()
    head = tmp_path / "nsfw.npz"
    weight = np.zeros(64, np.float32)
    weight[1] = 4.0
    np.savez(head, weight=weight, bias=np.float32(-2.0))
    scores = ImageScorer(tiny_clip, nsfw_head=str(head)).nsfw(images)
    assert scores == pytest.approx([1 / (1 + np.exp(2.0)), 1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(2.0))])


GPU_LAYOUT = """
import hashlib, json, sys
import pyarrow as pa, ray
from pipeline.clip.config import ClipConfig
from pipeline.clip.images import embedding_pipeline, gpus_per_actor
from pipeline.clip.model import preprocess_settings

cfg = ClipConfig.model_validate_json(sys.argv[1])
photos = [open(p, "rb").read() for p in sys.argv[2:]]
ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False)  # a GPU Ray can schedule
table = pa.table({"part": ["t"] * len(photos), "sha256": [hashlib.sha256(b).hexdigest() for b in photos],
                  "image": photos})
rows = sum(b.num_rows for b in embedding_pipeline([table], cfg, preprocess_settings(cfg), n_actors=1))
print(json.dumps({"gpus_per_actor": gpus_per_actor(cfg), "rows": rows}))
"""


def test_with_a_gpu_the_decoding_runs_in_cpu_tasks_before_the_gpu_actors(tiny_clip, shared_data, tmp_path):
    """A Ray cluster that offers a GPU (a logical one here: the actor then finds no CUDA and runs on
    the CPU) gets the GPU layout: a `preprocess` task map, then actors asking for `num_gpus`."""
    files = sorted(str(p) for p in (shared_data / "images/conceptual-captions-openimages").glob("*.jpg"))[:6]
    cfg = tiny_clip.model_copy(update={"gpus_per_actor": 0.5})
    done = subprocess.run(
        [sys.executable, "-c", GPU_LAYOUT, cfg.model_dump_json(), *files],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"gpus_per_actor": 0.5, "rows": 6}
    assert "TaskPoolMapOperator[MapBatches(preprocess)] -> ActorPoolMapOperator[MapBatches(Embed)]" in (
        done.stdout + done.stderr
    )
