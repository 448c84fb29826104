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

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tiktok_assets.lib.bars import ContentBox
from tiktok_assets.lib.crop import box_to_frame
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE, resolve_device, resolve_weights
from tiktok_assets.lib.models.clip import ClipEncoder

log = logging.getLogger("tiktok_assets.models.yolo_world")

DEFAULT_NAME = "yolo-world-s"
DEFAULT_MODEL = "yolov8s-worldv2.pt"
_safe_load_lock = threading.Lock()

FrameInput = str | Path | Image.Image | np.ndarray


@dataclass(frozen=True)
class Detection:
    label: str
    confidence: float
    box_xyxy_norm: tuple[float, float, float, float]  # x1, y1, x2, y2 as fractions of width / height
    is_product: bool

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": round(self.confidence, 4),
                "box_xyxy_norm": [round(v, 4) for v in self.box_xyxy_norm], "is_product": self.is_product}

    def in_frame(self, box: ContentBox | None) -> Detection:
        """This detection, found in the content area ``box``, with its box normalised to the full frame."""
        return replace(self, box_xyxy_norm=box_to_frame(self.box_xyxy_norm, box))


def _prepare_env() -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")  # no connectivity checks / hub calls from ultralytics


@contextlib.contextmanager
def _ultralytics_safe_load(enabled: bool) -> Iterator[None]:
    """Turn on ultralytics' weights_only checkpoint loading for one load (its flag is read at call time)."""
    from ultralytics.nn import tasks

    with _safe_load_lock:
        previous = tasks.SAFE_LOAD
        tasks.SAFE_LOAD = enabled or previous
        try:
            yield
        finally:
            tasks.SAFE_LOAD = previous


def _checkpoint(weights: Path) -> Path:
    if weights.is_file():
        return weights
    found = sorted(weights.glob("*.pt"))
    if len(found) != 1:
        raise ModelUnavailableError(f"expected one ultralytics .pt file in {weights}, found {len(found)}")
    return found[0]


def load_yolo_world_model(weights: Path, device: str, safe_load: bool = True) -> Any:
    """An ultralytics ``YOLOWorld`` from a local ``.pt`` (no prompts set yet)."""
    _prepare_env()
    from ultralytics import YOLOWorld

    checkpoint = _checkpoint(weights)
    try:
        with _ultralytics_safe_load(safe_load):
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


def _to_bgr(frame: FrameInput) -> np.ndarray:
    if isinstance(frame, np.ndarray):
        return frame
    if isinstance(frame, Image.Image):
        return np.ascontiguousarray(np.asarray(frame.convert("RGB"))[:, :, ::-1])
    import cv2

    image = cv2.imread(str(frame), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read frame {frame}")
    return image


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
        out: list[list[Detection]] = []
        for start in range(0, len(frames), batch_size):
            batch = [_to_bgr(f) for f in frames[start : start + batch_size]]
            results = self.yolo.predict(batch, conf=conf, iou=iou, imgsz=self.imgsz, device=self.device,
                                        max_det=max_det, verbose=False, save=False)
            out.extend(self._convert(r) for r in results)
        return out

    def _convert(self, result: Any) -> list[Detection]:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return []
        xyxyn = boxes.xyxyn.cpu().numpy()
        confs = boxes.conf.cpu().numpy()
        cls = boxes.cls.cpu().numpy().astype(int)
        dets = [Detection(self.classes[c], float(p), tuple(float(v) for v in box), self.classes[c] in self.product_classes)
                for box, p, c in zip(xyxyn, confs, cls, strict=True)]
        return sorted(dets, key=lambda d: -d.confidence)


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
        yolo = load_yolo_world_model(weights, resolved_device, safe_load)
        set_offline_classes(yolo, classes, clip.text_features(classes))
        return YoloWorldDetector(yolo, classes, products, resolved_device, str(weights), imgsz)

    key = ("yolo_world", str(weights.resolve()), resolved_device, tuple(classes), products, clip.weights, imgsz)
    return MODEL_CACHE.get(key, build)
