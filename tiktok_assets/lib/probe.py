"""Container and stream metadata with ffprobe (FFmpeg)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from tiktok_assets.lib.errors import VideoInputError

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
    cmd = ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", *extra, str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFPROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VideoInputError(f"ffprobe timed out after {FFPROBE_TIMEOUT_S}s on {path.name}") from exc
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "unknown error"
        raise VideoInputError(f"not a readable media file ({detail})")
    return json.loads(proc.stdout or "{}")


def probe_video(path: str | Path) -> VideoMetadata:
    """Read metadata of a video file; raise VideoInputError with a clear reason when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise VideoInputError("empty file (0 bytes)")
    info = run_ffprobe(path)
    streams = info.get("streams", [])
    fmt = info.get("format", {})
    video = next((s for s in streams if s.get("codec_type") == "video" and not _attached_pic(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
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
    frame_count = _int(video.get("nb_frames")) or int(round(duration * avg))
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
    )


def _attached_pic(stream: dict) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
