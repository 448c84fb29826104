"""BLIP image captioning (transformers ``BlipForConditionalGeneration``) from a local folder.

The folder is in ``save_pretrained`` format (a snapshot of ``Salesforce/blip-image-captioning-base``
or ``-large``: config, weights, processor and tokenizer files), resolved by :func:`resolve_weights`
under the manifest name (default ``blip-base``). Loaded with ``local_files_only=True``; weights
come from safetensors (or torch files with ``weights_only=True``, transformers' default).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE, resolve_device, resolve_weights
from tiktok_assets.lib.models.clip import ImageInput, load_image

log = logging.getLogger("tiktok_assets.models.blip")

DEFAULT_NAME = "blip-base"
DEFAULT_MODEL = "Salesforce/blip-image-captioning-base"
DTYPES = {"auto": None, "float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def torch_dtype(dtype: str, device: str) -> Any:
    """``auto`` -> float16 on CUDA, float32 on CPU; otherwise the named torch dtype."""
    import torch

    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {sorted(DTYPES)}")
    return getattr(torch, dtype)


@dataclass
class BlipCaptioner:
    model: Any
    processor: Any
    device: str
    dtype: Any
    weights: str

    def caption(self, images: Sequence[ImageInput], max_new_tokens: int = 30, batch_size: int = 8,
                num_beams: int = 1) -> list[str]:
        """One caption per image (paths or PIL images), batched ``batch_size`` at a time."""
        import torch

        captions: list[str] = []
        for start in range(0, len(images), batch_size):
            batch = [load_image(im) for im in images[start : start + batch_size]]
            inputs = self.processor(images=batch, return_tensors="pt").to(self.device)
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
            with torch.inference_mode():
                ids = self.model.generate(**inputs, max_new_tokens=max_new_tokens, num_beams=num_beams)
            captions.extend(text.strip() for text in self.processor.batch_decode(ids, skip_special_tokens=True))
        return captions


def _build(weights: Path, device: str, dtype: str) -> BlipCaptioner:
    from transformers import BlipForConditionalGeneration, BlipProcessor

    if not (weights / "config.json").is_file():
        raise ModelUnavailableError(f"BLIP folder {weights} has no config.json (expected save_pretrained format)")
    resolved_dtype = torch_dtype(dtype, device)
    processor = BlipProcessor.from_pretrained(str(weights), local_files_only=True)
    model = BlipForConditionalGeneration.from_pretrained(str(weights), local_files_only=True, dtype=resolved_dtype)
    model.to(device).eval()
    return BlipCaptioner(model, processor, device, resolved_dtype, str(weights))


def load_blip(
    model: str | Path = DEFAULT_MODEL,
    *,
    name: str = DEFAULT_NAME,
    device: str = "auto",
    dtype: str = "auto",
    models_dir: Path | None = None,
) -> BlipCaptioner:
    """Load (once per process) a BLIP captioning model from local weights."""
    weights = resolve_weights(name, str(model), models_dir)
    resolved_device = resolve_device(device)
    key = ("blip", str(weights.resolve()), resolved_device, dtype)
    return MODEL_CACHE.get(key, lambda: _build(weights, resolved_device, dtype))
