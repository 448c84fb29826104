"""What every detector backend shares: the Detection record, frame inputs, ultralytics plumbing.

Backends: :mod:`yolo_world` (open vocabulary, prompts from the product vocabulary) and
:mod:`closed_set` (any Ultralytics detector file or export with a fixed class list). Both batch
frames through ``ultralytics`` ``predict`` and return, per frame, detections sorted by confidence.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tiktok_assets.lib.media.bars import ContentBox
from tiktok_assets.lib.media.crop import box_to_frame

FrameInput = str | Path | Image.Image | np.ndarray

_safe_load_lock = threading.Lock()


@dataclass(frozen=True)
class Detection:
    label: str  # the product vocabulary class, or the detector's own class name when it has none
    confidence: float
    box_xyxy_norm: tuple[float, float, float, float]  # x1, y1, x2, y2 as fractions of width / height
    is_product: bool
    model_label: str | None = None  # the detector's own class name, when a class map renamed it (COCO `cup`)

    def to_json(self) -> dict[str, Any]:
        out = {"label": self.label, "confidence": round(self.confidence, 4),
               "box_xyxy_norm": [round(v, 4) for v in self.box_xyxy_norm], "is_product": self.is_product}
        if self.model_label is not None:
            out["model_label"] = self.model_label
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Detection:
        return cls(data["label"], data["confidence"], tuple(data["box_xyxy_norm"]), data["is_product"],
                   data.get("model_label"))

    def in_frame(self, box: ContentBox | None) -> Detection:
        """This detection, found in the content area ``box``, with its box normalised to the full frame."""
        return replace(self, box_xyxy_norm=box_to_frame(self.box_xyxy_norm, box))


def prepare_ultralytics_env() -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")  # no connectivity checks / hub calls from ultralytics


@contextlib.contextmanager
def ultralytics_safe_load(enabled: bool) -> Iterator[None]:
    """Turn on ultralytics' weights_only checkpoint loading for one load (its flag is read at call time)."""
    from ultralytics.nn import tasks

    with _safe_load_lock:
        previous = tasks.SAFE_LOAD
        tasks.SAFE_LOAD = enabled or previous
        try:
            yield
        finally:
            tasks.SAFE_LOAD = previous


def to_bgr(frame: FrameInput) -> np.ndarray:
    if isinstance(frame, np.ndarray):
        return frame
    if isinstance(frame, Image.Image):
        return np.ascontiguousarray(np.asarray(frame.convert("RGB"))[:, :, ::-1])
    import cv2

    image = cv2.imread(str(frame), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read frame {frame}")
    return image


def predict_batches(
    yolo: Any,
    frames: Sequence[FrameInput],
    convert: Callable[[Any], list[Detection]],
    *,
    conf: float,
    iou: float,
    imgsz: int,
    device: str,
    max_det: int,
    batch_size: int,
) -> list[list[Detection]]:
    """Run an ultralytics model over ``frames`` in batches; one ``convert(result)`` per frame."""
    out: list[list[Detection]] = []
    for start in range(0, len(frames), batch_size):
        batch = [to_bgr(f) for f in frames[start : start + batch_size]]
        results = yolo.predict(batch, conf=conf, iou=iou, imgsz=imgsz, device=device, max_det=max_det,
                               verbose=False, save=False)
        out.extend(convert(r) for r in results)
    return out


def result_detections(
    result: Any, labels: Sequence[str], products: Sequence[bool], model_labels: Sequence[str | None] | None = None
) -> list[Detection]:
    """An ultralytics result as Detections, highest confidence first. ``labels[i]`` / ``products[i]`` /
    ``model_labels[i]`` describe the model's class index i."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return []
    xyxyn = boxes.xyxyn.cpu().numpy()
    confs = boxes.conf.cpu().numpy()
    cls = boxes.cls.cpu().numpy().astype(int)
    dets = [Detection(labels[c], float(p), tuple(float(v) for v in box), products[c],
                      model_labels[c] if model_labels is not None else None)
            for box, p, c in zip(xyxyn, confs, cls, strict=True)]
    return sorted(dets, key=lambda d: -d.confidence)
