"""Loading an open_clip model once per actor, choosing its device, and the two halves of the image path.

Decoding and resizing (``ImagePreprocessor``) run in CPU tasks: open_clip's own eval transform
up to the centre crop, as ``uint8`` arrays, so a GPU actor only receives small, ready batches.
The actor (``ClipEncoder``) turns them into the model's input exactly as the rest of open_clip's
transform would (``/255`` and the mean/std normalization, on the device) and runs the encoder
under autocast on CUDA. Embeddings are L2-normalized and stored as float16.

The model comes from open_clip: a name and a pretrained tag (weights downloaded into
``cache_dir``), or a local checkpoint file as ``pretrained``; ``model_config_path`` registers a
model config open_clip does not ship (how the tests build a tiny model).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.clip.config import ClipConfig

log = logging.getLogger(__name__)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def register_model_config(cfg: ClipConfig) -> None:
    """Make a custom model config known to open_clip under ``cfg.model`` (its file's stem)."""
    if cfg.model_config_path:
        import open_clip

        path = Path(cfg.model_config_path)
        if path.stem != cfg.model:
            raise ValueError(f"clip.model_config_path: the file is named {path.stem!r}; set clip.model to it")
        open_clip.add_model_config(path)


def model_id(cfg: ClipConfig) -> str:
    """What the manifest names the embeddings by: ``model/pretrained`` (a checkpoint by file name)."""
    tag = cfg.pretrained or "random-init"
    if Path(tag).suffix in (".pt", ".pth", ".bin", ".safetensors"):
        tag = Path(tag).name
    return f"{cfg.model}/{tag}"


def preprocess_settings(cfg: ClipConfig) -> dict[str, Any]:
    """Image size, mean/std, interpolation and resize mode of the model, without building it."""
    import open_clip

    register_model_config(cfg)
    model_cfg = open_clip.get_model_config(cfg.model)
    if model_cfg is None:
        raise ValueError(f"clip.model: open_clip has no model {cfg.model!r}")
    size = model_cfg["vision_cfg"].get("image_size", 224)
    pre = {}
    if cfg.pretrained and not Path(cfg.pretrained).exists():
        pre = open_clip.get_pretrained_cfg(cfg.model, cfg.pretrained) or {}
        if not pre:
            raise ValueError(
                f"clip.pretrained: {cfg.pretrained!r} is neither a file nor a tag of {cfg.model}"
            )
    return {
        "image_size": size,
        "mean": tuple(pre.get("mean", OPENAI_MEAN)),
        "std": tuple(pre.get("std", OPENAI_STD)),
        "interpolation": pre.get("interpolation", "bicubic"),
        "resize_mode": pre.get("resize_mode", "shortest"),
        "embed_dim": model_cfg["embed_dim"],
    }


class ImagePreprocessor:
    """Image bytes → ``uint8`` arrays [H, W, 3] of the model's input size (CPU work).

    open_clip's eval transform without its last two steps (to-tensor and normalize); an image that
    does not decode gives None.
    """

    def __init__(self, settings: dict[str, Any]):
        import open_clip

        full = open_clip.image_transform(
            settings["image_size"],
            is_train=False,
            mean=settings["mean"],
            std=settings["std"],
            resize_mode=settings["resize_mode"],
            interpolation=settings["interpolation"],
        )
        from torchvision.transforms import Compose

        self.transform = Compose(full.transforms[:-2])  # resize, crop, RGB: PIL in, PIL out

    def __call__(self, data: bytes) -> np.ndarray | None:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                return np.asarray(self.transform(im), dtype=np.uint8)
        except Exception:  # noqa: BLE001 - a stored image that no longer decodes is counted, not fatal
            return None


def select_device(cfg: ClipConfig) -> str:
    """``cuda`` when asked for or when the actor was given a GPU; else ``cpu``."""
    import torch

    if cfg.device == "cpu":
        return "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("clip.device = cuda, but this worker sees no CUDA device")
    return "cuda" if torch.cuda.is_available() else "cpu"


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """fp16/bf16 autocast on CUDA; nothing on CPU (full precision there)."""
    import torch

    if device != "cuda" or precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


class ClipEncoder:
    """The model, loaded once (per actor), with image and text encoders that return unit vectors."""

    def __init__(self, cfg: ClipConfig):
        import open_clip
        import torch

        register_model_config(cfg)
        self.cfg = cfg
        self.device = select_device(cfg)
        model, _, preprocess = open_clip.create_model_and_transforms(
            cfg.model, pretrained=cfg.pretrained, cache_dir=cfg.cache_dir, device=self.device
        )
        self.model = model.eval()
        self.preprocess = preprocess  # the whole open_clip transform (tests compare with it)
        self.tokenizer = open_clip.get_tokenizer(cfg.model)
        normalize = preprocess.transforms[-1]
        self.mean = torch.tensor(normalize.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(normalize.std, device=self.device).view(1, 3, 1, 1)
        log.info("clip: %s on %s", model_id(cfg), self.device)

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        """``uint8`` [N, H, W, 3] → L2-normalized float16 [N, dim]."""
        import torch

        out = []
        with torch.inference_mode(), autocast(self.device, self.cfg.precision):
            for start in range(0, len(pixels), self.cfg.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(pixels[start : start + self.cfg.batch_size]))
                x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div(255)
                out.append(self._unit(self.model.encode_image((x - self.mean) / self.std)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float16)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts (cut to the model's context) → L2-normalized float16 [N, dim]."""
        import torch

        out = []
        with torch.inference_mode(), autocast(self.device, self.cfg.precision):
            for start in range(0, len(texts), self.cfg.batch_size):
                tokens = self.tokenizer(list(texts[start : start + self.cfg.batch_size])).to(self.device)
                out.append(self._unit(self.model.encode_text(tokens)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float16)

    @property
    def dim(self) -> int:
        return int(self.model.text_projection.shape[-1]) if hasattr(self.model, "text_projection") else 0

    @staticmethod
    def _unit(x: Any) -> np.ndarray:
        import torch

        x = torch.nn.functional.normalize(x.float(), dim=-1)
        return x.cpu().numpy().astype(np.float16)


def write_tiny_model(folder: Path, name: str = "loom-tiny-clip", seed: int = 0) -> tuple[Path, Path]:
    """A tiny, randomly initialised open_clip model (its config and a checkpoint of its state dict):
    what the demo and the tests load through the same path as real checkpoints. Returns
    (config path, checkpoint path)."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }
    config_path = folder / f"{name}.json"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    open_clip.add_model_config(config_path)
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    checkpoint = folder / f"{name}.pt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    return config_path, checkpoint
