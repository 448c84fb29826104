"""Build the one-row-per-video feature table from the per-video artifacts, and write it atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiktok_assets.lib import atomic
from tiktok_assets.lib.audio.audio_analysis import feature_columns
from tiktok_assets.lib.catalogue.keys import InvalidKeyError
from tiktok_assets.lib.catalogue.registry import RegisteredVideo
from tiktok_assets.lib.layout import DataLayout, VideoLayout
from tiktok_assets.lib.status import DISABLED, FAILED, OK, SKIPPED, UNAVAILABLE, read_status, stage_done
from tiktok_assets.lib.table import table_io
from tiktok_assets.lib.table.schema import CLIP_EMBEDDING_DIM, MODEL_COLUMNS, STAGES
from tiktok_assets.lib.vision.ocr import read_onscreen_text

PIPELINE_VERSION = version("tiktok-assets")
TABLE_SET = "video_features"  # data/video_features -> the current CSV + Parquet pair
NOT_RUN = "not_run"
SOURCE_MISSING = "source_missing"
PARTIAL = "partial"
INCOMPLETE = "incomplete"
Row = dict[str, Any]


def _result(video: VideoLayout, stage: str, path: Path) -> dict:
    """The stage's JSON result when its latest run produced one for this video, else {}: a row never
    shows the leftovers of an earlier run whose stage has since failed or become unavailable."""
    return atomic.read_json(path) if stage_done(video, stage) and path.exists() else {}


def metadata_columns(video: VideoLayout) -> Row:
    meta = _result(video, "video_metadata", video.metadata_json)
    keys = ["duration_s", "width", "height", "rotation", "avg_frame_rate", "nominal_frame_rate",
            "variable_frame_rate", "frame_count", "video_codec", "pixel_format", "bit_rate", "file_size_bytes",
            "has_audio", "audio_codec", "sample_rate", "channels", "audio_track_count"]
    return {k: meta.get(k) for k in keys}


def audio_columns(video: VideoLayout) -> Row:
    audio = _result(video, "audio_wav", video.audio_json)
    if not audio.get("has_audio"):
        return {}
    return {"audio_rms_dbfs": audio.get("rms_dbfs"), "audio_track": audio.get("track", 0)}


def decode_columns(video: VideoLayout) -> Row:
    """How much of the video decoded, and the decoder errors of the video and the audio track."""
    decode = _result(video, "candidate_frames", video.frames_index_json).get("decode")
    if not decode:
        return {}
    audio_errors = _result(video, "audio_wav", video.audio_json).get("decode_errors", 0)
    return {"decoded_seconds": decode["decoded_seconds"], "decode_errors": decode["errors"] + audio_errors}


def speech_columns(video: VideoLayout) -> Row:
    document = _result(video, "speech_segments", video.speech_segments_json)
    if not document.get("has_audio"):
        return {}
    segments = document["segments"]
    return {
        "speech_segment_count": len(segments),
        "speech_seconds": round(sum(s["end"] - s["start"] for s in segments), 3),
        "speech_segments": [{"start": s["start"], "end": s["end"], "confidence": s["confidence"]} for s in segments],
    }


def frame_columns(video: VideoLayout) -> Row:
    result = _result(video, "filtered_frames", video.filtered_frames_json)
    if not result:
        return {}
    counts = result["counts"]
    return {
        "candidate_frame_count": counts["candidates"],
        "kept_frame_count": counts["kept"],
        "dropped_black_count": counts["dropped_black"],
        "dropped_blur_count": counts["dropped_blur"],
        "dropped_duplicate_count": counts["dropped_duplicate"],
        "kept_frame_timestamps": [v["time"] for v in result["kept"]],
    }


def shot_columns(video: VideoLayout) -> Row:
    """Content box and shots, written by candidate_frames (empty unless its latest run succeeded)."""
    row: Row = {}
    box = _result(video, "candidate_frames", video.frames_index_json).get("content_box")
    if box:
        row["content_box"] = {k: box[k] for k in ("x", "y", "w", "h")}
    shots = _result(video, "candidate_frames", video.shots_json)
    if shots:
        row.update({k: shots[k] for k in ("shot_count", "mean_shot_seconds", "cuts_per_minute")})
    return row


def audio_analysis_columns(video: VideoLayout) -> Row:
    """Audio features from each stage's own file, so a failed stage leaves only its columns empty."""
    if not _result(video, "audio_wav", video.audio_json).get("has_audio"):
        return {}  # no audio track: the audio feature columns stay empty, not 0.0
    transcript = _result(video, "transcript", video.transcript_json)
    events = _result(video, "audio_events", video.audio_events_json)
    music = _result(video, "music_recognition", video.music_json)
    if not (transcript or events or music):
        return {}
    parts = {"has_audio": True, "transcript": transcript or None,
             "events": events or None, "music": music.get("match"), "fingerprint": music.get("fingerprint")}
    row = feature_columns(parts)
    row["silence_ratio"] = events.get("silence_ratio")
    row["language_probability"] = transcript.get("language_probability") if row.get("language") else None
    if not transcript:
        row.update(has_speech=None, language=None, speech_text=None, word_count=None, speech_rate_wpm=None)
    if not events:
        row.update(speech_ratio=None, music_ratio=None)
    if not music:
        row.update(music_status=None, audio_fingerprint=None)
    return row


def mean_embedding(path: Path) -> list[float] | None:
    """The mean CLIP embedding as float32 values, of the declared width (None when there is none)."""
    if not path.exists():
        return None
    values = np.load(path).astype(np.float32).ravel()
    if values.size != CLIP_EMBEDDING_DIM:
        raise ValueError(f"{path.name} has {values.size} values; the table declares clip_embedding with "
                         f"{CLIP_EMBEDDING_DIM} (CLIP ViT-B-32): use a CLIP model of that width")
    return values.tolist()


def vision_columns(video: VideoLayout) -> Row:
    """Feature-table columns of the visual stages, from their files (absent stage = empty columns)."""
    row: Row = {}
    objects = _result(video, "frame_objects", video.frame_objects_json)
    if objects.get("detector_ran"):
        counts = objects["objects"]["counts"]
        row["objects_top"] = [{"label": k, "frames": v} for k, v in list(counts.items())[:5]]
        frames = objects["frames"]
        row["product_frame_ratio"] = round(sum(f["product_frame"] for f in frames) / len(frames), 4) if frames else 0.0
    reps = _result(video, "representative_frames", video.representative_dir / "representative_timestamps.json")
    if reps:
        row["representative_frame_count"] = len(reps["frames"])
        row["representative_timestamps"] = [r["time"] for r in reps["frames"]]
        row["clip_embedding"] = mean_embedding(video.vision_dir / "mean_embedding.npy")
    features = _result(video, "frame_features", video.frame_features_json)
    if features:
        row["captions"] = [f["caption"] for f in features["frames"]]
    if stage_done(video, "onscreen_text") and video.onscreen_text_json.exists():
        onscreen = read_onscreen_text(video.onscreen_text_json)
        row["ocr_text"] = onscreen.text  # "" (no text read) is null in the table
        row["ocr_line_count"] = len(onscreen.lines)
    u = _result(video, "video_understanding", video.understanding_json)
    if u:
        row["video_description"] = u.get("description")
        category = u.get("category") or [None, None, None]
        row["category_l1"], row["category_l2"], row["category_l3"] = category
        row["category_source"] = u.get("category_source") if u.get("status") == "ok" else None
        row["category_similarity"] = u.get("category_similarity")
        row["content_type"], row["target_audience"] = u.get("content_type"), u.get("target_audience")
    return row


def similarity_columns(video: VideoLayout) -> Row:
    """The video's duplicate group (its own key when it has none; empty when video_similarity has not run)."""
    return {"duplicate_group": _result(video, "video_similarity", video.similarity_json).get("duplicate_group")}


# Each stage group contributes its columns.
ROW_BUILDERS: list[Callable[[VideoLayout], Row]] = [
    metadata_columns, audio_columns, decode_columns, speech_columns, frame_columns, shot_columns, audio_analysis_columns,
    vision_columns, similarity_columns,
]


SEPARATION = {OK: "on", DISABLED: "off", UNAVAILABLE: "unavailable"}  # the model: separator_model


def status_columns(video: VideoLayout, stages: list[str]) -> Row:
    """Per stage its outcome, error and time; for the video: ``status`` failed (a data error: ``error``
    is the first one), incomplete (stages not run yet), partial (stages disabled or unavailable here,
    or done only in part, e.g. a decode that fell short: ``partial_reason`` says which) or ok."""
    row: Row = {}
    errors, not_run, degraded = [], [], []
    statuses = {stage: read_status(video, stage) for stage in stages}  # each record read once
    for stage, status in statuses.items():
        state = status.status if status else NOT_RUN
        row[f"{stage}_status"] = state
        row[f"{stage}_error"] = status.error if status else None
        row[f"{stage}_seconds"] = status.seconds if status else None
        if state == FAILED:
            errors.append(f"{stage}: {status.error}")
        elif state in (NOT_RUN, SKIPPED):  # skipped after an upstream failure: that failure is the error
            not_run.append(stage)
        elif state in (DISABLED, UNAVAILABLE):
            degraded.append(f"{stage}: {state}" + (f" ({status.error})" if status.error else ""))
        elif status is not None and status.warning:  # done, but not in full (e.g. a truncated file)
            degraded.append(f"{stage}: {status.warning}")
    for column, stage in MODEL_COLUMNS.items():
        status = statuses.get(stage)
        row[column] = (status.model or None) if status is not None and status.status == OK else None
    finished = [s.finished_at for s in statuses.values() if s is not None and s.finished_at]
    row["processed_at"] = max(finished) if finished else None
    row["pipeline_version"] = PIPELINE_VERSION
    row["status"] = "failed" if errors else INCOMPLETE if not_run else PARTIAL if degraded else OK
    row["error"] = errors[0] if errors else None
    row["partial_reason"] = "; ".join(degraded) or None
    has_track = row.get("audio_wav_status") == OK
    row["separation"] = SEPARATION.get(row.get("audio_stems_status") or "") if has_track else None
    return row


def build_row(layout: DataLayout, entry: RegisteredVideo, stages: list[str] = STAGES) -> Row:
    row: Row = {"video_key": entry.key, "file_name": entry.file_name, "source_path": entry.source_path}
    try:
        video = layout.video(entry.key)
    except InvalidKeyError as exc:  # a partition added by hand with a key this project never makes
        return {**row, "status": "failed", "error": str(exc)}
    row.update(status_columns(video, stages))
    if entry.source_path and not Path(entry.source_path).exists():
        row["status"] = SOURCE_MISSING  # the results are kept; the file they came from is gone
    for builder in ROW_BUILDERS:
        try:
            row.update(builder(video))
        except (KeyError, ValueError, json.JSONDecodeError) as exc:  # a damaged artifact is an error, not a crash
            row["error"] = row.get("error") or f"{builder.__name__}: unreadable artifact ({exc})"
            row["status"] = "failed"
    return row


def write_table(frame: pd.DataFrame, csv_path: Path, parquet_path: Path) -> None:
    """Parquet (declared schema) and CSV (no Parquet-only columns, lists as JSON), replaced together."""
    assert csv_path.parent == parquet_path.parent, "the table's CSV and Parquet live side by side"
    with atomic.atomic_file_set(csv_path.parent, TABLE_SET, [parquet_path.name, csv_path.name]) as folder:
        table_io.write_parquet(frame, folder / parquet_path.name)
        table_io.csv_frame(frame).to_csv(folder / csv_path.name, index=False)
