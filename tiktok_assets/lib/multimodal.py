"""Per-video vision results: analyse kept frames, save the artifacts, build the feature-table columns.

The model stages are separate calls so each Dagster asset stays a thin wrapper:

1. :func:`analyse_frames` — CLIP image embeddings and YOLO-World detections of the kept frames,
   representative frames (``selection.select_representative``), object summary, mean embedding.
2. :func:`save_frame_analysis` — into a per-video folder (``out_dir``):
   ``frame_embeddings/<frame stem>.npy`` (one float32 vector per kept frame) + ``index.json``,
   ``detections.json``, ``selection.json``, ``representative_<time>s.jpg`` and
   ``representative_timestamps.json`` (in the folder given). Files are written atomically, so a re-run
   never leaves stale frames behind.
3. captions (``BlipCaptioner.caption``) and video understanding (``VlmDescriber.describe``) on
   the representative frames.
4. :func:`feature_columns` — the table's vision columns from whatever stages produced a result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.models.vlm import VideoUnderstanding
from tiktok_assets.lib.selection import (
    NO_FRAMES,
    ObjectSummary,
    Selection,
    SelectionConfig,
    aggregate_objects,
    mean_embedding,
    select_representative,
)
from tiktok_assets.lib.vocabulary import Vocabulary

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
    vocabulary: Vocabulary,
    detector: Detector | None = None,
    *,
    conf: float = 0.25,
    clip_batch_size: int = 32,
    detect_batch_size: int = 8,
    selection_config: SelectionConfig = DEFAULT_SELECTION,
    prompt_embeddings: np.ndarray | None = None,
) -> FrameAnalysis:
    """Embeddings, detections and representative frames for one video's kept frames (time order).

    ``prompt_embeddings``: the vocabulary's product prompts already encoded with ``clip``
    (:func:`encode_product_prompts`), to encode them once per run instead of once per video.
    """
    frames_dir = Path(frames_dir)
    ordered = sorted(frames, key=lambda f: f.time)
    times = [float(f.time) for f in ordered]
    files = [f.file for f in ordered]
    paths = [frames_dir / f for f in files]
    embeddings = clip.encode_images(paths, batch_size=clip_batch_size)
    prompts = prompt_embeddings if prompt_embeddings is not None else encode_product_prompts(clip, vocabulary)
    detections = (detector.detect(paths, conf=conf, batch_size=detect_batch_size) if detector and paths
                  else [[] for _ in paths])
    selection = select_representative(times, files, embeddings, prompts, detections, selection_config)
    return FrameAnalysis(times, files, embeddings, detections, selection, aggregate_objects(detections),
                         mean_embedding(embeddings), detector_ran=detector is not None)


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
VISION_COLUMNS: list[tuple[str, str, str]] = [
    ("objects_top", "string", "Most frequent detected objects as `label:frames;...` (frames a label appears in)."),
    ("product_frame_ratio", "Float64", "Share of kept frames with at least one product detection."),
    ("representative_frame_count", "Int64", "Representative frames picked (2-5; fewer when the video has fewer)."),
    ("representative_timestamps", "string", "Timestamps of the representative frames as a JSON list, seconds."),
    ("captions", "string", "BLIP captions of the representative frames as a JSON list."),
    ("clip_embedding", "object", "Mean CLIP image embedding of the kept frames (L2-normalised list; Parquet only)."),
    ("video_description", "string", "Vision-language model description of the product video."),
    ("category_l1", "string", "Taxonomy level 1."),
    ("category_l2", "string", "Taxonomy level 2."),
    ("category_l3", "string", "Taxonomy level 3."),
    ("category_source", "string", "model (valid path as answered), mapped (nearest valid path) or unmapped."),
    ("vision_status", "string", "Frame analysis: ok, few_frames, no_frames, failed or not_run."),
    ("captions_status", "string", "Captioning: ok, no_frames, failed or not_run."),
    ("understanding_status", "string", "Video understanding: ok, unparsable, no_input, failed or not_run."),
]

NOT_RUN = "not_run"


def feature_columns(
    analysis: FrameAnalysis | None = None,
    captions: list[str] | None = None,
    understanding: VideoUnderstanding | None = None,
    statuses: dict[str, str] | None = None,
    top_objects: int = 5,
) -> dict[str, Any]:
    """The vision columns of one row; a stage that gave nothing leaves its columns empty (None).

    ``statuses`` overrides the stage statuses (e.g. ``{"captions_status": "failed"}``).
    """
    row: dict[str, Any] = {name: None for name, _, _ in VISION_COLUMNS}
    if analysis is not None:
        row["objects_top"] = analysis.objects.top_string(top_objects) if analysis.detector_ran else None
        row["product_frame_ratio"] = round(analysis.objects.product_frame_ratio, 4) if analysis.detector_ran else None
        row["representative_frame_count"] = len(analysis.selection.frames)
        row["representative_timestamps"] = json.dumps(analysis.selection.timestamps)
        row["clip_embedding"] = (analysis.mean_embedding.astype(float).round(6).tolist()
                                 if analysis.mean_embedding is not None else None)
        row["vision_status"] = analysis.selection.status
    if captions is not None:
        row["captions"] = json.dumps(captions, ensure_ascii=False)
        row["captions_status"] = "ok" if captions else NO_FRAMES
    if understanding is not None:
        row["video_description"] = understanding.description
        if understanding.category:
            row["category_l1"], row["category_l2"], row["category_l3"] = understanding.category
        row["category_source"] = understanding.category_source if understanding.status == "ok" else None
        row["understanding_status"] = understanding.status
    for key in ("vision_status", "captions_status", "understanding_status"):
        row[key] = row[key] or NOT_RUN
    row.update(statuses or {})
    return row


def load_detections(frame_objects_json: Path, frames: list[dict]) -> tuple[list[list[Any]], bool]:
    """Detections per kept frame from frame_objects (empty lists when the detector did not run)."""
    from tiktok_assets.lib.models.yolo_world import Detection

    data = atomic.read_json(frame_objects_json) if frame_objects_json.exists() else {}
    if not data.get("detector_ran"):
        return [[] for _ in frames], False
    by_file = {row["file"]: row["detections"] for row in data["frames"]}
    return [[Detection(d["label"], d["confidence"], tuple(d["box_xyxy_norm"]), d["is_product"])
             for d in by_file.get(f["file"], [])] for f in frames], True
