"""Candidate keyframes in ONE decode pass: I-frames, one frame per second, speech highlights.

PyAV decodes with FFmpeg's frame threads. Only frames that are kept are converted to BGR, rotated
for display and JPEG-encoded, on a small thread pool (OpenCV releases the GIL), so the cost over a
plain decode is the colour conversion and encoding of the frames kept.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from tiktok_assets.lib.errors import VideoInputError

IFRAME = "iframe"
SECOND = "second"
HIGHLIGHT = "highlight"


@dataclass(frozen=True)
class ExtractConfig:
    per_second: bool = True
    iframes: bool = True
    jpeg_quality: int = 90
    max_side: int = 1920  # saved JPEGs are downscaled so their longer side is at most this
    min_iframe_gap_s: float = 0.5  # drop I-frames closer than this to the previous saved frame
    encode_threads: int = 2


@dataclass
class CandidateFrame:
    time: float
    kinds: list[str]
    file: str  # file name inside the frames folder
    width: int = 0
    height: int = 0
    extra: dict = field(default_factory=dict)


def frame_file_name(time_s: float, kinds: list[str]) -> str:
    return f"{'-'.join(kinds)}_{time_s:08.3f}s.jpg"


def _rotate(image: np.ndarray, clockwise_degrees: int) -> np.ndarray:
    if clockwise_degrees == 90:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if clockwise_degrees == 180:
        return cv2.rotate(image, cv2.ROTATE_180)
    if clockwise_degrees == 270:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def _clockwise(frame: av.VideoFrame) -> int:
    # PyAV reports the display matrix rotation counter-clockwise, like FFmpeg.
    return int(round(-float(frame.rotation or 0) / 90.0) * 90) % 360


def _save(frame: av.VideoFrame, target: Path, config: ExtractConfig) -> tuple[int, int]:
    w, h = frame.width, frame.height
    scale = min(1.0, config.max_side / max(w, h))
    if scale < 1.0:
        w, h = int(round(w * scale / 2) * 2), int(round(h * scale / 2) * 2)
        image = frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
    else:
        image = frame.to_ndarray(format="bgr24")
    image = _rotate(image, _clockwise(frame))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {target.name}")
    target.write_bytes(buf.tobytes())
    return image.shape[1], image.shape[0]


def extract_candidates(
    video: str | Path,
    out_dir: str | Path,
    highlight_times: list[float] | None = None,
    config: ExtractConfig = ExtractConfig(),
) -> list[CandidateFrame]:
    """Decode ``video`` once and save candidate frames as JPEGs into ``out_dir``."""
    out_dir = Path(out_dir)
    highlights = sorted(t for t in (highlight_times or []) if t >= 0)
    candidates: list[CandidateFrame] = []
    pending: list[tuple[CandidateFrame, Future[tuple[int, int]]]] = []
    try:
        container = av.open(str(video))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoInputError(f"cannot open video for decoding ({exc})") from exc
    with container, ThreadPoolExecutor(max_workers=config.encode_threads) as pool:
        if not container.streams.video:
            raise VideoInputError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_second = 0.0
        next_highlight = 0
        last_saved = -math.inf
        decoded = 0
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                decoded += 1
                t = float(frame.time)
                kinds: list[str] = []
                if config.per_second and t >= next_second - 1e-6:
                    kinds.append(SECOND)
                    next_second = math.floor(t + 1e-6) + 1.0
                if config.iframes and frame.key_frame and (kinds or t - last_saved >= config.min_iframe_gap_s):
                    kinds.insert(0, IFRAME)
                while next_highlight < len(highlights) and t >= highlights[next_highlight] - 1e-6:
                    if HIGHLIGHT not in kinds:
                        kinds.append(HIGHLIGHT)
                    next_highlight += 1
                if not kinds:
                    continue
                last_saved = t
                cand = CandidateFrame(time=round(t, 3), kinds=kinds, file=frame_file_name(t, kinds))
                pending.append((cand, pool.submit(_save, frame, out_dir / cand.file, config)))
                # Bound the frames held in memory while the encoders catch up.
                while len(pending) - len(candidates) > 2 * config.encode_threads:
                    done, fut = pending[len(candidates)]
                    done.width, done.height = fut.result()
                    candidates.append(done)
        except av.error.FFmpegError as exc:
            if decoded == 0:
                raise VideoInputError(f"no frame could be decoded ({exc})") from exc
            # A truncated tail: keep what decoded, the caller sees fewer frames than the duration.
        for cand, fut in pending[len(candidates):]:
            cand.width, cand.height = fut.result()
            candidates.append(cand)
    if not candidates:
        raise VideoInputError("the video stream has no decodable frames")
    return candidates
