"""Container and stream metadata with ffprobe (FFmpeg)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from tiktok_assets.lib.errors import VideoInputError
from tiktok_assets.lib.media.input_policy import (
    ALLOWED_CONTAINERS,
    FFMPEG_INPUT_ARGS,
    InputLimits,
    not_allowed_container,
    refuse_over_limits,
    refuse_over_size,
    refuse_referencing_file,
)

FFPROBE_TIMEOUT_S = 60


@dataclass(frozen=True)
class VideoMetadata:
    file_name: str
    file_size_bytes: int
    container: str
    duration_s: float
    width: int  # display width: rotation applied
    height: int  # display height: rotation applied
    coded_width: int
    coded_height: int
    rotation: int  # clockwise degrees to apply for display: 0, 90, 180 or 270
    avg_frame_rate: float
    nominal_frame_rate: float
    variable_frame_rate: bool
    frame_count: int
    video_codec: str
    pixel_format: str
    bit_rate: int | None
    video_bit_rate: int | None
    has_audio: bool
    audio_codec: str | None
    sample_rate: int | None
    channels: int | None
    audio_track_count: int
    audio_durations_s: list[float | None]  # declared duration of each audio track, in stream order


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    return float(Fraction(text))


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _rotation(stream: dict) -> int:
    """Clockwise display rotation. FFmpeg's display matrix 'rotation' is counter-clockwise."""
    degrees: float | None = None
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            degrees = float(side["rotation"])
    if degrees is None and "rotate" in (stream.get("tags") or {}):
        return int(float(stream["tags"]["rotate"])) % 360
    if degrees is None:
        return 0
    return int(round(-degrees / 90.0) * 90) % 360


def run_ffprobe(path: Path, *extra: str) -> dict:
    cmd = ["ffprobe", "-v", "error", *FFMPEG_INPUT_ARGS, "-of", "json", "-show_format", "-show_streams", *extra,
           str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFPROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VideoInputError(f"ffprobe timed out after {FFPROBE_TIMEOUT_S}s on {path.name}") from exc
    if proc.returncode != 0:
        if not_allowed_container(proc.stderr):
            raise VideoInputError(f"refused: not a video in an allowed container ({ALLOWED_CONTAINERS})")
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "unknown error"
        raise VideoInputError(f"not a readable media file ({detail})")
    return json.loads(proc.stdout or "{}")


DEFAULT_LIMITS = InputLimits()


def probe_video(path: str | Path, limits: InputLimits = DEFAULT_LIMITS) -> VideoMetadata:
    """Read metadata of a video file; raise VideoInputError with a clear reason when it is unusable
    or refused by the input policy (``lib/media/input_policy.py``)."""
    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise VideoInputError("empty file (0 bytes)")
    refuse_over_size(size, limits)
    refuse_referencing_file(path)
    info = run_ffprobe(path)
    streams = info.get("streams", [])
    fmt = info.get("format", {})
    video = next((s for s in streams if s.get("codec_type") == "video" and not _attached_pic(s)), None)
    audio_tracks = [s for s in streams if s.get("codec_type") == "audio"]
    audio = audio_tracks[0] if audio_tracks else None
    if video is None:
        kind = "audio-only file" if audio is not None else "no video stream"
        raise VideoInputError(f"{kind}: nothing to analyse visually")
    duration = _float(fmt.get("duration")) or _float(video.get("duration"))
    if not duration or duration <= 0:
        raise VideoInputError("cannot determine the duration (truncated or corrupt file)")
    coded_w, coded_h = int(video.get("width") or 0), int(video.get("height") or 0)
    if coded_w <= 0 or coded_h <= 0:
        raise VideoInputError("video stream has no frame size (corrupt file)")
    rotation = _rotation(video)
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    avg = _rate(video.get("avg_frame_rate"))
    nominal = _rate(video.get("r_frame_rate"))
    frame_count = _int(video.get("nb_frames")) or round(duration * avg)
    refuse_over_limits(duration, width, height, avg or nominal, limits)
    return VideoMetadata(
        file_name=path.name,
        file_size_bytes=size,
        container=str(fmt.get("format_name", "")),
        duration_s=round(duration, 3),
        width=width,
        height=height,
        coded_width=coded_w,
        coded_height=coded_h,
        rotation=rotation,
        avg_frame_rate=round(avg, 3),
        nominal_frame_rate=round(nominal, 3),
        variable_frame_rate=bool(avg and nominal and abs(avg - nominal) / nominal > 0.01),
        frame_count=frame_count,
        video_codec=str(video.get("codec_name", "")),
        pixel_format=str(video.get("pix_fmt", "")),
        bit_rate=_int(fmt.get("bit_rate")),
        video_bit_rate=_int(video.get("bit_rate")),
        has_audio=audio is not None,
        audio_codec=audio.get("codec_name") if audio else None,
        sample_rate=_int(audio.get("sample_rate")) if audio else None,
        channels=_int(audio.get("channels")) if audio else None,
        audio_track_count=len(audio_tracks),
        audio_durations_s=[_float(a.get("duration")) or _float(fmt.get("duration")) for a in audio_tracks],
    )


def _attached_pic(stream: dict) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
