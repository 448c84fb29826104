"""YOLO-World open-vocabulary detection with class prompts set offline from the project's CLIP.

ultralytics' ``YOLOWorld.set_classes`` encodes class names with OpenAI CLIP ViT-B/32 through the
``clip`` package and pip-installs it from GitHub at run time when it is missing. We never call it.
:func:`set_offline_classes` does exactly what ``WorldModel.set_classes`` + ``YOLOWorld.set_classes``
do (ultralytics 8.3/8.4), with text features from :class:`ClipEncoder` (open_clip ``ViT-B-32``,
pretrained ``openai``: the same weights, ``encode_text`` then L2 normalisation):

- ``world_model.txt_feats = features.reshape(1, n, d)`` (float32, on the model's device);
- ``world_model.model[-1].nc = n`` (the ``WorldDetect`` head);
- ``world_model.names = list(classes)``; ``yolo.predictor = None`` (so the next predict rebuilds it).

Checkpoints load with ultralytics' ``weights_only=True`` path (its allow-list of ultralytics and
torch classes) unless ``safe_load=False`` is asked for a trusted file that needs more. Only an
existing local ``.pt`` is ever handed to ultralytics, so it has nothing to download.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE, resolve_device, resolve_weights
from tiktok_assets.lib.models.clip import ClipEncoder
from tiktok_assets.lib.models.detection import (
    Detection,
    FrameInput,
    predict_batches,
    prepare_ultralytics_env,
    result_detections,
    ultralytics_safe_load,
)
from tiktok_assets.lib.models.manifest import check_first_pull_lock

__all__ = ["Detection", "YoloWorldDetector", "load_yolo_world", "load_yolo_world_model", "set_offline_classes"]

log = logging.getLogger("tiktok_assets.models.yolo_world")

DEFAULT_NAME = "yolo-world-s"
DEFAULT_MODEL = "yolov8s-worldv2.pt"


def _checkpoint(weights: Path) -> Path:
    if weights.is_file():
        return weights
    found = sorted(weights.glob("*.pt"))
    if len(found) != 1:
        raise ModelUnavailableError(f"expected one ultralytics .pt file in {weights}, found {len(found)}")
    return found[0]


def load_yolo_world_model(weights: Path, device: str, safe_load: bool = True) -> Any:
    """An ultralytics ``YOLOWorld`` from a local ``.pt`` (no prompts set yet)."""
    prepare_ultralytics_env()
    from ultralytics import YOLOWorld

    checkpoint = _checkpoint(weights)
    try:
        with ultralytics_safe_load(safe_load):
            yolo = YOLOWorld(str(checkpoint))
    except TypeError as exc:
        if safe_load:
            raise ModelUnavailableError(
                f"{checkpoint} could not be loaded with weights_only=True ({exc}). If the file is trusted, set "
                f"safe_load=False on the YOLO-World resource."
            ) from exc
        raise
    if type(yolo.model).__name__ != "WorldModel":
        raise ModelUnavailableError(f"{checkpoint} is a {type(yolo.model).__name__}, not a YOLO-World WorldModel")
    yolo.model.to(device).eval()
    return yolo


def set_offline_classes(yolo: Any, classes: Sequence[str], text_features: Any) -> None:
    """Set YOLO-World's classes from precomputed L2-normalised text features of shape (n, d) or (1, n, d)."""
    import torch

    world = yolo.model
    feats = torch.as_tensor(np.asarray(text_features) if not isinstance(text_features, torch.Tensor)
                            else text_features).float()
    feats = feats.reshape(-1, len(classes), feats.shape[-1])
    expected = world.txt_feats.shape[-1]
    if feats.shape[-1] != expected:
        raise ValueError(f"text features have dimension {feats.shape[-1]}, the YOLO-World model expects {expected} "
                         "(use open_clip ViT-B-32, as YOLO-World was trained with)")
    device = next(world.model.parameters()).device
    world.txt_feats = feats.to(device)
    world.model[-1].nc = len(classes)
    world.names = list(classes)
    yolo.predictor = None


@dataclass
class YoloWorldDetector:
    """A YOLO-World model with its class prompts set; ``detect`` batches frames through it."""

    yolo: Any
    classes: list[str]
    product_classes: frozenset[str]
    device: str
    weights: str
    imgsz: int = 640

    def detect(self, frames: Sequence[FrameInput], conf: float = 0.25, batch_size: int = 8, iou: float = 0.7,
               max_det: int = 50) -> list[list[Detection]]:
        """One list of detections per frame (paths, PIL images or BGR arrays), highest confidence first."""
        products = [c in self.product_classes for c in self.classes]
        return predict_batches(self.yolo, frames, lambda r: result_detections(r, self.classes, products), conf=conf,
                               iou=iou, imgsz=self.imgsz, device=self.device, max_det=max_det,
                               batch_size=batch_size)


def load_yolo_world(
    clip: ClipEncoder,
    classes: Sequence[str],
    product_classes: Sequence[str] | None = None,
    model: str | Path = DEFAULT_MODEL,
    *,
    name: str = DEFAULT_NAME,
    device: str = "auto",
    imgsz: int = 640,
    safe_load: bool = True,
    models_dir: Path | None = None,
) -> YoloWorldDetector:
    """Load (once per process and class list) YOLO-World with prompts from ``clip``'s text encoder.

    ``classes`` are the detector prompts (e.g. ``Vocabulary.names``); ``product_classes`` the ones
    flagged ``is_product`` (default: all).
    """
    weights = resolve_weights(name, str(model), models_dir)
    resolved_device = resolve_device(device)
    classes = list(classes)
    products = frozenset(product_classes if product_classes is not None else classes)
    if not classes:
        raise ValueError("YOLO-World needs at least one class prompt")

    def build() -> YoloWorldDetector:
        check_first_pull_lock(weights)
        yolo = load_yolo_world_model(weights, resolved_device, safe_load)
        set_offline_classes(yolo, classes, clip.text_features(classes))
        return YoloWorldDetector(yolo, classes, products, resolved_device, str(weights), imgsz)

    key = ("yolo_world", str(weights.resolve()), resolved_device, tuple(classes), products, clip.weights, imgsz)
    return MODEL_CACHE.get(key, build)
