"""Per-video vision results: analyse kept frames and save the artifacts.

The model stages are separate calls so each Dagster asset stays a thin wrapper:

1. :func:`analyse_frames` — CLIP image embeddings of the kept frames with the detector's boxes,
   representative frames (``selection.select_representative``), object summary, mean embedding.
2. :func:`save_frame_analysis` — into a per-video folder (``out_dir``):
   ``frame_embeddings/<frame stem>.npy`` (one float32 vector per kept frame) + ``index.json``,
   ``detections.json``, ``selection.json``, ``representative_<time>s.jpg`` and
   ``representative_timestamps.json`` (in the folder given). Files are written atomically, so a re-run
   never leaves stale frames behind.
3. captions (``BlipCaptioner.caption``) and video understanding (``VlmDescriber.describe``) on
   the representative frames. The table's columns are built from the saved files (``lib/table/table.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.media.bars import ContentBox
from tiktok_assets.lib.media.crop import model_inputs
from tiktok_assets.lib.vision.selection import (
    ObjectSummary,
    Selection,
    SelectionConfig,
    aggregate_objects,
    mean_embedding,
    select_representative,
)
from tiktok_assets.lib.vision.vocabulary import Vocabulary

EMBEDDINGS_DIR = "frame_embeddings"
REPRESENTATIVE_DIR = "representative"
TIMESTAMPS_JSON = "representative_timestamps.json"
DEFAULT_SELECTION = SelectionConfig()


class FrameLike(Protocol):
    time: float
    file: str


class ImageEncoder(Protocol):
    def encode_images(self, images: Sequence[Any], batch_size: int = 32) -> np.ndarray: ...
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray: ...


class Detector(Protocol):
    def detect(self, frames: Sequence[Any], conf: float = 0.25, batch_size: int = 8) -> list[list[Any]]: ...


def representative_file_name(time_s: float) -> str:
    return f"representative_{time_s:08.3f}s.jpg"


@dataclass
class FrameAnalysis:
    times: list[float]
    files: list[str]
    embeddings: np.ndarray  # (n, d) float32, L2-normalised, one row per kept frame
    detections: list[list[Any]]  # Detection lists, one per kept frame ([] each when no detector ran)
    selection: Selection
    objects: ObjectSummary
    mean_embedding: np.ndarray | None
    detector_ran: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": [{"time": t, "file": f, "detections": [d.to_json() for d in dets]}
                       for t, f, dets in zip(self.times, self.files, self.detections, strict=True)],
            "selection": self.selection.to_json(),
            "objects": self.objects.to_json(),
            "detector_ran": self.detector_ran,
            "embedding_dim": int(self.embeddings.shape[1]) if self.embeddings.ndim == 2 else 0,
        }


def encode_product_prompts(clip: ImageEncoder, vocabulary: Vocabulary) -> np.ndarray:
    """(n_prompts, d) text embeddings of every product class's CLIP prompts."""
    return clip.encode_texts([p for _, p in vocabulary.product_prompts()])


def analyse_frames(
    frames: Sequence[FrameLike],
    frames_dir: str | Path,
    clip: ImageEncoder,
    prompt_embeddings: np.ndarray,
    detections: list[list[Any]] | None = None,
    *,
    clip_batch_size: int = 32,
    selection_config: SelectionConfig = DEFAULT_SELECTION,
    content_box: ContentBox | None = None,
    shots: Sequence[int | None] | None = None,
) -> FrameAnalysis:
    """Embeddings and representative frames for one video's kept frames (in time order).

    ``prompt_embeddings``: the vocabulary's product prompts encoded with ``clip``
    (:func:`encode_product_prompts`, once per run). ``detections``: the detector's boxes per frame (same
    order as ``frames``), or None when the detector did not run (selection by CLIP relevance alone).
    ``content_box``: the video's picture inside letterbox / pillarbox bars; CLIP then sees that area only.
    ``shots``: each frame's shot (same order as ``frames``): the selection prefers covering different shots.
    """
    frames_dir = Path(frames_dir)
    order = sorted(range(len(frames)), key=lambda i: frames[i].time)
    times = [float(frames[i].time) for i in order]
    files = [frames[i].file for i in order]
    paths = [frames_dir / f for f in files]
    embeddings = (clip.encode_images(model_inputs(paths, content_box), batch_size=clip_batch_size) if paths
                  else np.zeros((0, prompt_embeddings.shape[1]), dtype=np.float32))
    boxes = [detections[i] for i in order] if detections is not None else [[] for _ in order]
    shot_of = [shots[i] for i in order] if shots is not None else None
    selection = select_representative(times, files, embeddings, prompt_embeddings, boxes, selection_config, shot_of)
    return FrameAnalysis(times, files, embeddings, boxes, selection, aggregate_objects(boxes),
                         mean_embedding(embeddings) if len(embeddings) else None,
                         detector_ran=detections is not None)


def save_frame_analysis(analysis: FrameAnalysis, frames_dir: str | Path, out_dir: str | Path,
                        representative_dir: str | Path | None = None) -> dict[str, Path]:
    """Write embeddings, detections and selection under ``out_dir``, and the representative frames in
    ``representative_dir`` (default ``out_dir/representative``)."""
    frames_dir, out_dir = Path(frames_dir), Path(out_dir)
    with atomic.atomic_dir(out_dir / EMBEDDINGS_DIR) as tmp:
        index = []
        for time_s, file, vector in zip(analysis.times, analysis.files, analysis.embeddings, strict=True):
            name = f"{Path(file).stem}.npy"
            np.save(tmp / name, np.asarray(vector, dtype=np.float32))
            index.append({"time": time_s, "frame": file, "embedding": name})
        atomic.write_json(tmp / "index.json", index)
    atomic.write_json(out_dir / "detections.json", analysis.to_json())
    atomic.write_json(out_dir / "selection.json", analysis.selection.to_json())
    representative = save_representative_frames(analysis.selection, frames_dir,
                                                representative_dir or out_dir / REPRESENTATIVE_DIR)
    return {"embeddings": out_dir / EMBEDDINGS_DIR, "detections": out_dir / "detections.json",
            "selection": out_dir / "selection.json", "representative": representative}


def save_representative_frames(selection: Selection, frames_dir: str | Path, target_dir: str | Path) -> Path:
    """Copy the picked frames as ``representative_<time>s.jpg`` + ``representative_timestamps.json``
    into ``target_dir`` (which may be the video's frame folder itself): each file is written
    atomically, the JSON index last, then representative frames of an earlier selection are removed."""
    frames_dir, target_dir = Path(frames_dir), Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for frame in selection.frames:
        name = representative_file_name(frame.time)
        atomic.write_bytes(target_dir / name, (frames_dir / frame.file).read_bytes())
        entries.append({"time": frame.time, "file": name, "source_frame": frame.file,
                        "score": round(frame.score, 4)})
    atomic.write_json(target_dir / TIMESTAMPS_JSON, {"status": selection.status, "frames": entries})
    current = {e["file"] for e in entries}
    for stale in target_dir.glob("representative_*.jpg"):
        if stale.name not in current:
            stale.unlink()
    return target_dir


def representative_paths(target_dir: str | Path) -> list[Path]:
    """The saved representative frames, in time order (as written by save_representative_frames)."""
    target_dir = Path(target_dir)
    data = atomic.read_json(target_dir / TIMESTAMPS_JSON)
    return [target_dir / e["file"] for e in data["frames"]]


def load_frame_embeddings(out_dir: str | Path) -> tuple[list[float], np.ndarray]:
    """(times, (n, d) matrix) from ``frame_embeddings/`` in frame time order."""
    folder = Path(out_dir) / EMBEDDINGS_DIR
    index = atomic.read_json(folder / "index.json")
    if not index:
        return [], np.zeros((0, 0), dtype=np.float32)
    return [e["time"] for e in index], np.stack([np.load(folder / e["embedding"]) for e in index])


# --- feature-table columns -----------------------------------------------------------------------
def load_detections(frame_objects_json: Path, files: list[str]) -> tuple[list[list[Any]], bool]:
    """Detections per kept frame from frame_objects (empty lists when the detector did not run)."""
    from tiktok_assets.lib.models.detection import Detection

    data = atomic.read_json(frame_objects_json) if frame_objects_json.exists() else {}
    if not data.get("detector_ran"):
        return [[] for _ in files], False
    by_file = {row["file"]: row["detections"] for row in data["frames"]}
    return [[Detection.from_json(d) for d in by_file.get(f, [])] for f in files], True
