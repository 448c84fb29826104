"""What the pipeline agrees to read, decided before any expensive decoding.

Only local files in an allowed container: FFmpeg and PyAV get a demuxer whitelist and the ``file``
protocol only, so a playlist (HLS), concat file or DASH manifest named ``.mp4`` can never make them
open other files or URLs. Playlists are named as such from their first bytes; files over the
configured size, duration, resolution or frame-rate limits are refused with the limit in the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tiktok_assets.lib.errors import VideoInputError

# FFmpeg demuxer names: MP4 / MOV / M4V / 3GP, Matroska / WebM, AVI, MPEG-TS, MPEG-PS, FLV, ASF / WMV, Ogg.
ALLOWED_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg"
ALLOWED_CONTAINERS = "mp4 / mov / m4v / 3gp, mkv / webm, avi, mpeg-ts / mpeg-ps, flv, asf / wmv, ogg"
# Options for opening an input with FFmpeg (command line) or PyAV (``av.open(options=...)``).
DEMUXER_OPTIONS = {"format_whitelist": ALLOWED_DEMUXERS, "protocol_whitelist": "file"}
FFMPEG_INPUT_ARGS = [arg for name, value in DEMUXER_OPTIONS.items() for arg in (f"-{name}", value)]

# First bytes of text formats that reference other files or URLs.
_REFERENCING_FORMATS = {
    b"#EXTM3U": "an HLS playlist",
    b"ffconcat": "an FFmpeg concat file",
    b"<?xml": "an XML manifest (DASH / SMIL)",
    b"<MPD": "a DASH manifest",
    b"[playlist]": "a PLS playlist",
}


@dataclass(frozen=True)
class InputLimits:
    max_file_bytes: int = 4 * 1024**3
    max_duration_s: float = 3600.0
    max_side_px: int = 8192
    max_frame_rate: float = 240.0


def refuse_referencing_file(path: Path) -> None:
    """Refuse playlists, concat files and manifests, whatever their extension."""
    with path.open("rb") as handle:
        head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, kind in _REFERENCING_FORMATS.items():
        if head.startswith(magic):
            raise VideoInputError(f"refused: {kind}, not a video (a playlist or concat file may point at "
                                  f"other files or URLs, which are never read)")


def refuse_over_size(size_bytes: int, limits: InputLimits) -> None:
    if size_bytes > limits.max_file_bytes:
        raise VideoInputError(f"refused: file size {size_bytes / 1024**3:.2f} GiB is over the limit of "
                              f"{limits.max_file_bytes / 1024**3:.2f} GiB")


def refuse_over_limits(duration_s: float, width: int, height: int, frame_rate: float, limits: InputLimits) -> None:
    """Refuse a declared duration, frame size or frame rate over the limits (checked before decoding)."""
    if duration_s > limits.max_duration_s:
        raise VideoInputError(f"refused: declared duration {duration_s:.0f} s is over the limit of "
                              f"{limits.max_duration_s:.0f} s")
    if max(width, height) > limits.max_side_px:
        raise VideoInputError(f"refused: frame size {width}x{height} is over the limit of "
                              f"{limits.max_side_px} px on the longer side")
    if frame_rate > limits.max_frame_rate:
        raise VideoInputError(f"refused: frame rate {frame_rate:g} fps is over the limit of "
                              f"{limits.max_frame_rate:g} fps")


def not_allowed_container(ffmpeg_error: str) -> bool:
    """FFmpeg's message when the file's format is not on the demuxer whitelist."""
    return "not on whitelist" in ffmpeg_error
