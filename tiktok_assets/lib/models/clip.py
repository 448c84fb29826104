"""CLIP (open_clip) image and text embeddings, loaded from local weights only.

Weights (``model``, resolved by :func:`resolve_weights` under the manifest name, default
``clip-vit-b-32``) may be:

- a folder in open_clip's hub layout (``open_clip_config.json`` + ``open_clip_pytorch_model.bin`` or
  ``open_clip_model.safetensors``), e.g. a snapshot of ``timm/vit_base_patch32_clip_224.openai``:
  loaded with ``open_clip.create_model_and_transforms("local-dir:<folder>")``;
- a checkpoint file (or a folder holding only one) for the architecture ``arch`` (default
  ``ViT-B-32``): ``create_model_and_transforms(arch, pretrained=<file>)``.

Both paths load with ``weights_only=True`` and never touch the network. Embeddings are float32 and
L2-normalised; the text embeddings are exactly what YOLO-World's ``set_classes`` computes with the
``clip`` package (``encode_text`` then L2 normalisation), see ``yolo_world.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE, resolve_device, resolve_weights

log = logging.getLogger("tiktok_assets.models.clip")

DEFAULT_NAME = "clip-vit-b-32"
DEFAULT_MODEL = "timm/vit_base_patch32_clip_224.openai"
DEFAULT_ARCH = "ViT-B-32"
CHECKPOINT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
CHECKPOINT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors")

ImageInput = str | Path | Image.Image


def load_image(image: ImageInput) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as img:
        return img.convert("RGB")


@dataclass
class ClipEncoder:
    """A loaded open_clip model with its image transform and tokenizer."""

    model: Any
    preprocess: Any
    tokenizer: Any
    device: str
    weights: str

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1] if hasattr(self.model, "text_projection")
                   and self.model.text_projection is not None else self.model.visual.output_dim)

    def image_tensor(self, images: Sequence[ImageInput]) -> Any:
        import torch

        return torch.stack([self.preprocess(load_image(im)) for im in images])

    def encode_images(self, images: Sequence[ImageInput], batch_size: int = 32) -> np.ndarray:
        """(n, d) float32, L2-normalised. Accepts image paths or PIL images."""
        import torch

        out: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            batch = self.image_tensor(images[start : start + batch_size]).to(self.device)
            with torch.inference_mode():
                feats = self.model.encode_image(batch)
                feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            out.append(feats.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embed_dim), dtype=np.float32)

    def text_features(self, texts: Sequence[str], batch_size: int = 256) -> Any:
        """(n, d) float32 torch tensor on ``device``, L2-normalised."""
        import torch

        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
            with torch.inference_mode():
                feats = self.model.encode_text(tokens).float()
                chunks.append(feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        return torch.cat(chunks) if chunks else torch.zeros((0, self.embed_dim))

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """(n, d) float32, L2-normalised."""
        return self.text_features(texts, batch_size).cpu().numpy()


def _checkpoint_in(folder: Path) -> Path | None:
    for name in CHECKPOINT_NAMES:
        if (folder / name).is_file():
            return folder / name
    files = [p for p in folder.iterdir() if p.suffix in CHECKPOINT_SUFFIXES]
    return files[0] if len(files) == 1 else None


def _build(weights: Path, arch: str, device: str) -> ClipEncoder:
    import open_clip

    if weights.is_dir() and (weights / "open_clip_config.json").is_file():
        if _checkpoint_in(weights) is None:
            raise ModelUnavailableError(f"CLIP folder {weights} has open_clip_config.json but no weights "
                                        f"({' or '.join(CHECKPOINT_NAMES)})")
        spec = f"local-dir:{weights}"
        model, _, preprocess = open_clip.create_model_and_transforms(spec, device=device, weights_only=True)
        tokenizer = open_clip.get_tokenizer(spec)
    else:
        checkpoint = _checkpoint_in(weights) if weights.is_dir() else weights
        if checkpoint is None:
            raise ModelUnavailableError(f"no open_clip checkpoint found in {weights} (expected one of "
                                        f"{', '.join(CHECKPOINT_NAMES)} or open_clip_config.json)")
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(checkpoint), device=device,
                                                                     weights_only=True)
        tokenizer = open_clip.get_tokenizer(arch)
    model.eval()
    return ClipEncoder(model=model, preprocess=preprocess, tokenizer=tokenizer, device=device, weights=str(weights))


def load_clip(
    model: str | Path = DEFAULT_MODEL,
    *,
    name: str = DEFAULT_NAME,
    arch: str = DEFAULT_ARCH,
    device: str = "auto",
    models_dir: Path | None = None,
) -> ClipEncoder:
    """Load (once per process) the CLIP model from local weights; see the module docstring."""
    weights = resolve_weights(name, str(model), models_dir)
    resolved_device = resolve_device(device)
    key = ("clip", str(weights.resolve()), arch, resolved_device)
    return MODEL_CACHE.get(key, lambda: _build(weights, arch, resolved_device))
