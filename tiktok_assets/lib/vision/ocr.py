"""On-screen text: RapidOCR (PP-OCRv4 detection + recognition as ONNX on onnxruntime, CPU) on a video's
frames, and the same caption read on consecutive frames merged into one line with a time span.

- :func:`frames_to_read`: the kept frames and the frames filtered_frames dropped as near-duplicates of them
  (not the black or blurred ones). A caption is a small part of the picture: a frame whose caption changed
  over a still background is a "duplicate" of the one before (whole-frame SSIM 0.92 on a test clip), so
  reading the kept frames alone would miss that caption and cut the spans short.
- :func:`load_ocr` loads the engine once per process (``MODEL_CACHE``) from a folder with the three ONNX
  files that ship inside the PyPI package ``rapidocr-onnxruntime`` (:func:`install_packaged_ocr` copies
  them out of the installed package; ``tiktok-assets models pull rapidocr-ppocrv4``). Nothing is downloaded.
- :meth:`OcrEngine.read` gives one frame's lines: text, confidence and box (``box_xyxy_norm``, fractions of
  the full frame: captions often sit on the letterbox bars, so the whole frame is read).
- :func:`merge_lines` follows each line through the frames in time order: a reading continues a line when
  its text is similar (``difflib`` ratio of the case-folded text without whitespace, >= ``min_similarity``)
  and its box overlaps the line's last box (IoU >= ``min_iou``), with at most ``max_gap_frames`` frames
  between them on which it was not read. A line's span is the time of the first and the last frame it was
  read on (frames are ~1 s apart: one per second, plus I-frames, shot starts and speech highlights); its
  text is its most frequent reading.
- :class:`OnscreenText` is the per-video JSON document (``vision/onscreen_text.json``), merged lines and the
  per-frame readings; :func:`read_onscreen_text` reads it back.

PP-OCRv4's recogniser (Chinese and Latin script) reads Latin letters well but often drops the space between
two words: ``50% OFF`` may come back as ``50%OFF``.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.media.frame_filter import DUPLICATE, FilterResult, FrameVerdict
from tiktok_assets.lib.models.base import MODEL_CACHE

PACKAGE = "rapidocr-onnxruntime"
PACKAGE_HINT = "pip install 'tiktok-assets[vision]' (or rapidocr-onnxruntime==1.4.4)"
# The engine's three ONNX models, as the package names them (its config.yaml).
DET_FILE = "ch_PP-OCRv4_det_infer.onnx"
REC_FILE = "ch_PP-OCRv4_rec_infer.onnx"
CLS_FILE = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
MODEL_FILES = (DET_FILE, REC_FILE, CLS_FILE)
LINE_SEPARATOR = " | "  # between the merged lines in OnscreenText.text (the table's ocr_text)
MAX_THREADS = 4  # onnxruntime intra-op threads by default: more gain little on one frame at a time

BoxXYXY = tuple[float, float, float, float]


# --- weights and engine ------------------------------------------------------------------------------
def package_available() -> bool:
    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


def missing_package() -> str | None:
    """Why the OCR code cannot run here (one sentence naming the package and how to get it), or None."""
    return None if package_available() else f"Python package '{PACKAGE}' is not installed: {PACKAGE_HINT}."


def check_folder(folder: Path, name: str) -> Path:
    """``folder`` when it holds the three ONNX models, else :class:`ModelUnavailableError` naming the gap."""
    absent = [f for f in MODEL_FILES if not (folder / f).is_file()]
    if absent:
        raise ModelUnavailableError(f"OCR model '{name}' at {folder} lacks {', '.join(absent)} (a folder with the "
                                    f"RapidOCR ONNX files: `tiktok-assets models pull rapidocr-ppocrv4`).")
    return folder


def install_packaged_ocr(target: Path) -> Path:
    """Copy the ONNX models that ship inside the installed ``rapidocr-onnxruntime`` into ``target``."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(missing_package())
    source = check_folder(Path(next(iter(spec.submodule_search_locations))) / "models", PACKAGE)
    target.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        with atomic.atomic_path(target / name) as tmp:
            shutil.copyfile(source / name, tmp)
    return target


def default_threads() -> int:
    """Half the cores, 1 to 4: the run's other steps get the rest. On 2 shared cores one thread read a
    720x1280 frame in 0.70 s, two threads in 1.00 s (onnxruntime's threads wait on each other there)."""
    return min(MAX_THREADS, max(1, (os.cpu_count() or 1) // 2))


@dataclass(frozen=True)
class FrameLine:
    """One line of text read on one frame."""

    text: str
    confidence: float
    box_xyxy_norm: BoxXYXY  # x1, y1, x2, y2 as fractions of the frame's width / height

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": round(self.confidence, 4),
                "box_xyxy_norm": [round(v, 4) for v in self.box_xyxy_norm]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FrameLine:
        return cls(data["text"], data["confidence"], tuple(data["box_xyxy_norm"]))


@dataclass
class OcrEngine:
    """A loaded RapidOCR engine (detection, direction classifier, recognition; onnxruntime on CPU)."""

    engine: Any
    weights: str
    threads: int

    def read(self, image: str | Path | np.ndarray) -> list[FrameLine]:
        """The lines of text in one image (a file or a BGR array), top to bottom."""
        pixels = cv2.imread(str(image), cv2.IMREAD_COLOR) if isinstance(image, (str, Path)) else image
        if pixels is None:
            raise ValueError(f"cannot read image {image}")
        height, width = pixels.shape[:2]
        result, _ = self.engine(pixels)
        lines = []
        for polygon, text, confidence in result or []:
            if not text.strip():
                continue
            xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
            box = (min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height)
            lines.append(FrameLine(text.strip(), float(confidence), tuple(min(max(v, 0.0), 1.0) for v in box)))
        return lines


def load_ocr(weights: Path, threads: int = 0, min_confidence: float = 0.5) -> OcrEngine:
    """The RapidOCR engine on the ONNX models in ``weights``, loaded once per process. ``threads``:
    onnxruntime intra-op threads per model (0 = :func:`default_threads`); ``min_confidence``: readings
    below it are dropped (RapidOCR's ``text_score``)."""
    weights = check_folder(Path(weights).expanduser().resolve(), Path(weights).name)
    if not package_available():
        raise ModelUnavailableError(missing_package())
    threads = threads or default_threads()

    def _load() -> OcrEngine:
        from rapidocr_onnxruntime import RapidOCR

        engine = RapidOCR(det_model_path=str(weights / DET_FILE), rec_model_path=str(weights / REC_FILE),
                          cls_model_path=str(weights / CLS_FILE), intra_op_num_threads=threads,
                          inter_op_num_threads=1, text_score=min_confidence)
        return OcrEngine(engine, str(weights), threads)

    return MODEL_CACHE.get(("ocr", str(weights), threads, min_confidence), _load)


# --- merging -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MergeConfig:
    min_similarity: float = 0.8  # difflib ratio of the normalised texts
    min_iou: float = 0.3  # boxes of the same line on two frames overlap at least this much
    max_gap_frames: int = 1  # frames a line may go unread on and still continue


@dataclass
class FrameText:
    """The lines read on one frame."""

    time: float
    file: str
    lines: list[FrameLine]

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "file": self.file, "lines": [line.to_json() for line in self.lines]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FrameText:
        return cls(data["time"], data["file"], [FrameLine.from_json(x) for x in data["lines"]])


@dataclass(frozen=True)
class TextLine:
    """One caption: its text, where it was and the span of frames it was read on."""

    text: str
    start: float  # time of the first frame it was read on, seconds
    end: float  # time of the last frame it was read on, seconds
    confidence: float  # mean over its readings
    box_xyxy_norm: BoxXYXY  # median of its readings' boxes
    frames: int  # frames it was read on

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "confidence": round(self.confidence, 4),
                "box_xyxy_norm": [round(v, 4) for v in self.box_xyxy_norm], "frames": self.frames}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TextLine:
        return cls(data["text"], data["start"], data["end"], data["confidence"], tuple(data["box_xyxy_norm"]),
                   data["frames"])


def normalise(text: str) -> str:
    """Case-folded, without whitespace (the recogniser drops or adds spaces between words)."""
    return "".join(text.casefold().split())


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, normalise(a), normalise(b)).ratio()


def iou(a: BoxXYXY, b: BoxXYXY) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    readings: list[tuple[int, float, FrameLine]] = field(default_factory=list)  # frame index, time, line

    @property
    def last(self) -> tuple[int, float, FrameLine]:
        return self.readings[-1]

    def line(self) -> TextLine:
        lines = [line for _, _, line in self.readings]
        texts: dict[str, list[float]] = {}
        for line in lines:
            texts.setdefault(line.text, []).append(line.confidence)
        text = max(texts, key=lambda t: (len(texts[t]), sum(texts[t])))  # most frequent, then most confident
        box = tuple(statistics.median(line.box_xyxy_norm[i] for line in lines) for i in range(4))
        return TextLine(text, self.readings[0][1], self.last[1], statistics.fmean(x.confidence for x in lines),
                        box, len(lines))


def merge_lines(frames: Sequence[FrameText], config: MergeConfig = MergeConfig()) -> list[TextLine]:
    """The captions of a video: readings on frames (in time order) merged into lines, ordered by start
    time, then top to bottom."""
    tracks: list[_Track] = []
    for index, frame in enumerate(sorted(frames, key=lambda f: f.time)):
        open_tracks = [t for t in tracks if index - t.last[0] - 1 <= config.max_gap_frames]
        for line in frame.lines:
            scored = [(similarity(t.last[2].text, line.text), iou(t.last[2].box_xyxy_norm, line.box_xyxy_norm), t)
                      for t in open_tracks]
            matches = [s for s in scored if s[0] >= config.min_similarity and s[1] >= config.min_iou]
            if matches:
                track = max(matches, key=lambda s: (s[0], s[1]))[2]
                open_tracks.remove(track)  # one reading per frame continues a line
            else:
                track = _Track()
                tracks.append(track)
            track.readings.append((index, frame.time, line))
    lines = [t.line() for t in tracks]
    return sorted(lines, key=lambda x: (x.start, x.box_xyxy_norm[1], x.box_xyxy_norm[0]))


# --- the per-video document ------------------------------------------------------------------------
@dataclass
class OnscreenText:
    lines: list[TextLine]
    frames: list[FrameText]
    merge: MergeConfig

    @property
    def text(self) -> str:
        """The merged lines in time order, joined by :data:`LINE_SEPARATOR` ("" when there is none)."""
        return LINE_SEPARATOR.join(line.text for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "lines": [x.to_json() for x in self.lines],
                "frames": [f.to_json() for f in self.frames], "merge": asdict(self.merge)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OnscreenText:
        return cls([TextLine.from_json(x) for x in data["lines"]], [FrameText.from_json(f) for f in data["frames"]],
                   MergeConfig(**data["merge"]))


def frames_to_read(result: FilterResult) -> list[FrameVerdict]:
    """The frames worth reading, in time order: kept, or dropped only as a near-duplicate."""
    return sorted([*result.kept, *(f for f in result.dropped if f.reason == DUPLICATE)], key=lambda f: f.time)


def read_frames(engine: OcrEngine, frames: Sequence[tuple[float, Path]]) -> list[FrameText]:
    """Each (time, image file) read by ``engine``."""
    return [FrameText(time, path.name, engine.read(path)) for time, path in frames]


def ocr_frames(engine: OcrEngine, frames: Sequence[tuple[float, Path]],
               config: MergeConfig = MergeConfig()) -> OnscreenText:
    """Read the frames (time, image file) and merge their lines."""
    read = read_frames(engine, frames)
    return OnscreenText(merge_lines(read, config), read, config)


def write_onscreen_text(path: Path, document: OnscreenText) -> None:
    atomic.write_json(path, document.to_json())


def read_onscreen_text(path: Path) -> OnscreenText:
    """The reader of the document :func:`write_onscreen_text` wrote."""
    return OnscreenText.from_json(atomic.read_json(path))
