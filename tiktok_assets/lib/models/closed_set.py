"""Closed-set detection: any Ultralytics detector file or export with a fixed class list (a trained
``.pt``, an OpenVINO export folder, an ``.onnx`` file; e.g. YOLO11n on the 80 COCO classes), its
classes mapped onto the product vocabulary by a class map (:mod:`tiktok_assets.lib.vision.class_map`).

Unlike YOLO-World it needs no text encoder: the classes are the model's own. Each detection's label
is the vocabulary class its model class maps to (COCO ``cup`` -> ``mug``, with ``model_label="cup"``),
else the model's own class name (COCO ``bus``, a non-product object).

- Formats are told from the files, without loading anything (:func:`detector_format`). ultralytics
  recognises an OpenVINO export by its folder name (``*_openvino_model``): a folder named otherwise
  is handed to it through a symbolic link with such a name in a temporary folder (nothing is copied).
- An export (ONNX, OpenVINO) carries its class names and input size in its metadata: a static one runs at
  the size it was exported at whatever ``imgsz`` says (ultralytics reads it from there). ONNX runs on
  onnxruntime; ultralytics also wants the ``onnx`` package to load it (both in the ``vision`` extra).
- A ``.pt`` is loaded with ultralytics' ``weights_only=True`` path unless ``safe_load=False``.
  Whether a ``.pt`` is YOLO-World or a closed-set detector is read from its pickle's class names
  without unpickling (:func:`checkpoint_model_classes`), so the detection stage can tell which
  backend a file needs before loading it.
- The model is loaded once per process, weights, device and class map (``MODEL_CACHE``), and run
  once on a blank image at load so that load and compile time (seconds for OpenVINO) are not
  charged to the first video.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import pickletools
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE, resolve_device
from tiktok_assets.lib.models.detection import (
    Detection,
    FrameInput,
    predict_batches,
    prepare_ultralytics_env,
    result_detections,
    ultralytics_safe_load,
)
from tiktok_assets.lib.models.manifest import check_first_pull_lock
from tiktok_assets.lib.vision.class_map import ClassMap
from tiktok_assets.lib.vision.vocabulary import Vocabulary

log = logging.getLogger("tiktok_assets.models.closed_set")

CACHE_FAMILY = "detector"  # MODEL_CACHE key family of closed-set detectors
PT, ONNX, OPENVINO, OTHER = "pt", "onnx", "openvino", "other"
OPEN_VOCABULARY_CLASSES = frozenset({"WorldModel", "YOLOEModel"})  # ultralytics model classes set by prompts
OPENVINO_SUFFIX = "_openvino_model"  # how ultralytics recognises an OpenVINO export folder


def detector_format(weights: Path) -> str:
    """``pt``, ``onnx`` or ``openvino`` from the files (a ``.pt`` / ``.onnx`` file, or a folder holding
    one, or an OpenVINO ``.xml`` + ``.bin`` pair); ``other`` for anything else ultralytics may know."""
    if weights.is_file():
        return {".pt": PT, ".onnx": ONNX, ".xml": OPENVINO}.get(weights.suffix.lower(), OTHER)
    if weights.name.endswith(OPENVINO_SUFFIX) or any(weights.glob("*.xml")):
        return OPENVINO
    if len(list(weights.glob("*.onnx"))) == 1:
        return ONNX
    if len(list(weights.glob("*.pt"))) == 1:
        return PT
    return OTHER


def _single(weights: Path, pattern: str) -> Path:
    if weights.is_file():
        return weights
    found = sorted(weights.glob(pattern))
    if len(found) != 1:
        raise ModelUnavailableError(f"expected one {pattern} file in {weights}, found {len(found)}")
    return found[0]


@lru_cache(maxsize=32)
def _pickled_model_classes(checkpoint: Path, mtime_ns: int, size: int) -> frozenset[str]:
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            pickled = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            data = archive.read(pickled) if pickled else b""
    except zipfile.BadZipFile:
        return frozenset()
    found: set[str] = set()
    strings: list[str] = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            module, _, name = str(arg).partition(" ")
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            module, name = strings[-2], strings[-1]
        else:
            if isinstance(arg, str):
                strings.append(arg)
            continue
        if module == "ultralytics.nn.tasks" and name.endswith("Model"):
            found.add(name)
    return frozenset(found)


def checkpoint_model_classes(checkpoint: Path) -> frozenset[str]:
    """The ultralytics model classes a ``.pt`` checkpoint pickles (e.g. ``{"DetectionModel"}``), read from
    the pickle's opcodes without unpickling or importing torch; empty when it is not a torch zip file."""
    stat = checkpoint.stat()
    return _pickled_model_classes(checkpoint.resolve(), stat.st_mtime_ns, stat.st_size)


def is_open_vocabulary(weights: Path) -> bool:
    """True for a YOLO-World (or YOLOE) ``.pt``: a model whose classes are set by text prompts."""
    if detector_format(weights) != PT:
        return False
    try:
        checkpoint = _single(weights, "*.pt")
    except ModelUnavailableError:
        return False
    return bool(checkpoint_model_classes(checkpoint) & OPEN_VOCABULARY_CLASSES)


_links_dir: Path | None = None


def ultralytics_source(weights: Path) -> Path:
    """The path to hand to ultralytics for ``weights`` (see the module docstring for OpenVINO folders)."""
    global _links_dir
    fmt = detector_format(weights)
    if fmt == PT:
        return _single(weights, "*.pt")
    if fmt == ONNX:
        return _single(weights, "*.onnx")
    if fmt != OPENVINO:
        return weights
    folder = weights.parent if weights.is_file() else weights
    if folder.name.endswith(OPENVINO_SUFFIX):
        return folder
    if _links_dir is None:
        _links_dir = Path(tempfile.mkdtemp(prefix="tiktok_assets_openvino_"))
        atexit.register(shutil.rmtree, _links_dir, True)
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    link = _links_dir / digest / f"{folder.name}{OPENVINO_SUFFIX}"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(folder.resolve(), target_is_directory=True)
    return link


@dataclass
class ClosedSetDetector:
    """A closed-set ultralytics detector with its classes mapped onto the product vocabulary."""

    yolo: Any
    model_classes: list[str]  # class index -> the model's own class name
    labels: list[str]  # class index -> label in outputs (vocabulary class, else the model's name)
    products: list[bool]  # class index -> is a product class of the vocabulary
    device: str
    weights: str
    format: str
    imgsz: int = 640

    def detect(self, frames: Sequence[FrameInput], conf: float = 0.25, batch_size: int = 8, iou: float = 0.7,
               max_det: int = 50) -> list[list[Detection]]:
        """One list of detections per frame (paths, PIL images or BGR arrays), highest confidence first."""
        model_labels = [m if m != label else None for m, label in zip(self.model_classes, self.labels, strict=True)]
        return predict_batches(
            self.yolo, frames, lambda r: result_detections(r, self.labels, self.products, model_labels), conf=conf,
            iou=iou, imgsz=self.imgsz, device=self.device, max_det=max_det, batch_size=batch_size)


def load_closed_set_model(weights: Path, device: str, imgsz: int = 640, safe_load: bool = True) -> tuple[Any, str]:
    """An ultralytics ``YOLO`` for a closed-set detector file or export, run once; (model, format)."""
    prepare_ultralytics_env()
    from ultralytics import YOLO

    fmt = detector_format(weights)
    source = ultralytics_source(weights)
    if fmt == PT and checkpoint_model_classes(source) & OPEN_VOCABULARY_CLASSES:
        raise ModelUnavailableError(
            f"{source} is an open-vocabulary YOLO-World model, not a closed-set detector: choose it with "
            f"TIKTOK_ASSETS_YOLO_WORLD_MODEL (the yolo_world resource's `model`), not as the detector_model")
    try:
        with ultralytics_safe_load(safe_load and fmt == PT):
            yolo = YOLO(str(source), task="detect")
            yolo.predict(np.zeros((imgsz, imgsz, 3), dtype=np.uint8), imgsz=imgsz, device=device, verbose=False,
                         save=False)
    except TypeError as exc:
        if safe_load and fmt == PT:
            raise ModelUnavailableError(
                f"{source} could not be loaded with weights_only=True ({exc}). If the file is trusted, set "
                f"safe_load=False on the detector resource.") from exc
        raise
    except (ModuleNotFoundError, ImportError) as exc:
        raise ModelUnavailableError(f"{weights} ({fmt}) needs the Python package {exc.name or exc}: "
                                    f"pip install -e '.[vision]'") from exc
    return yolo, fmt


def load_closed_set_detector(
    weights: Path,
    class_map: ClassMap,
    vocabulary: Vocabulary,
    *,
    device: str = "auto",
    imgsz: int = 640,
    safe_load: bool = True,
) -> ClosedSetDetector:
    """Load (once per process) a closed-set detector; its classes are checked against ``class_map``
    (a :class:`ClassMapError` names the file) and labelled with ``vocabulary``."""
    resolved_device = resolve_device(device)

    def build() -> ClosedSetDetector:
        check_first_pull_lock(weights)
        yolo, fmt = load_closed_set_model(weights, resolved_device, imgsz, safe_load)
        names = yolo.predictor.model.names if yolo.predictor else yolo.names
        model_classes = [str(names[i]) for i in range(len(names))]
        class_map.check(model_classes, vocabulary, model=str(weights))
        labels = [class_map.label(c) for c in model_classes]
        products = [vocabulary.is_product(label) for label in labels]
        log.info("closed-set detector %s (%s): %d classes, %d of them products: %s", weights, fmt,
                 len(model_classes), sum(products), ", ".join(sorted({lb for lb, p in zip(labels, products,
                                                                                         strict=True) if p})))
        return ClosedSetDetector(yolo, model_classes, labels, products, resolved_device, str(weights), fmt, imgsz)

    key = (CACHE_FAMILY, str(weights.resolve()), resolved_device, imgsz, tuple(sorted(class_map.classes.items())),
           vocabulary.source, vocabulary.version, tuple(vocabulary.product_names))
    return MODEL_CACHE.get(key, build)
