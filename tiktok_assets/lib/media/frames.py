"""Candidate keyframes in ONE decode pass: I-frames, one frame per second, speech highlights, shot starts.

PyAV decodes with FFmpeg's frame threads. Only frames that are kept are converted to BGR, rotated
for display and JPEG-encoded, on a small thread pool (OpenCV releases the GIL), so the cost over a
plain decode is the colour conversion and encoding of the frames kept. The same pass reads every
frame's luma plane without conversion (a strided view, 1/8 scale) for shot detection
(``lib/media/shots.py``), and the luma of a few frames at full resolution for bar detection (``lib/media/bars.py``).

Decoding goes packet by packet: a packet the decoder rejects is skipped and counted, and so is every
error FFmpeg reports, so a corrupt stretch in the middle costs only its own frames and the result
says how much was decoded (``DecodeReport``) against what the container declares.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.logging
import cv2
import numpy as np

from tiktok_assets.lib.errors import VideoInputError
from tiktok_assets.lib.media.bars import BarConfig, BarDetector, ContentBox
from tiktok_assets.lib.media.input_policy import DEMUXER_OPTIONS
from tiktok_assets.lib.media.shots import ShotConfig, ShotResult, ShotTracker

IFRAME = "iframe"
SECOND = "second"
HIGHLIGHT = "highlight"
SHOT = "shot"  # the frame starts a new shot (seen causally while decoding)

# 8-bit YUV formats whose first plane is the luma, read without any conversion.
_LUMA_FORMATS = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"}
_LIMITED_TO_FULL = np.clip((np.arange(256) - 16) * 255.0 / 219.0, 0, 255).round().astype(np.uint8)


@dataclass(frozen=True)
class ExtractConfig:
    per_second: bool = True
    iframes: bool = True
    jpeg_quality: int = 90
    max_side: int = 1920  # saved JPEGs are downscaled so their longer side is at most this
    min_iframe_gap_s: float = 0.5  # drop I-frames closer than this to the previous saved frame
    encode_threads: int = 2
    shot_starts: bool = True  # also save the first frame of each new shot
    bar_samples: int = 24  # frames (spread over the video) sampled for letterbox / pillarbox bars
    shots: ShotConfig = field(default_factory=ShotConfig)
    bars: BarConfig = field(default_factory=BarConfig)


@dataclass
class CandidateFrame:
    time: float
    kinds: list[str]
    file: str  # file name inside the frames folder
    width: int = 0
    height: int = 0
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DecodeReport:
    frames: int  # frames decoded
    decoded_seconds: float  # end of the last decoded frame
    declared_seconds: float  # the video stream's duration as the container declares it (0 if unknown)
    errors: int  # packets the decoder rejected + errors FFmpeg reported (corrupt data skipped)

    def to_json(self) -> dict:
        return {"frames": self.frames, "decoded_seconds": self.decoded_seconds,
                "declared_seconds": self.declared_seconds, "errors": self.errors}


@dataclass
class Extraction:
    frames: list[CandidateFrame]
    content_box: ContentBox  # display pixels, rotation applied
    shots: ShotResult
    decode: DecodeReport


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
    if scale < 1.0 and min(w, h) * scale >= 16:
        w, h = round(w * scale / 2) * 2, round(h * scale / 2) * 2
        image = frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
    elif scale < 1.0:  # a sliver (e.g. 4097x3): FFmpeg's scaler refuses outputs a few pixels high
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_AREA)
    else:
        image = frame.to_ndarray(format="bgr24")
    image = _rotate(image, _clockwise(frame))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {target.name}")
    target.write_bytes(buf.tobytes())
    return image.shape[1], image.shape[0]


def _luma(frame: av.VideoFrame) -> tuple[np.ndarray, bool]:
    """Full-resolution luma (coded orientation) and whether it is limited range (16-235).

    For 8-bit YUV this is a view of the decoded plane: no conversion, no copy."""
    if frame.format.name in _LUMA_FORMATS:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8)[: plane.line_size * frame.height]
        luma = rows.reshape(frame.height, plane.line_size)[:, : frame.width]
    else:
        luma = frame.to_ndarray(format="gray")
    limited = frame.format.name in _LUMA_FORMATS and not frame.format.name.startswith("yuvj") and frame.color_range != 2
    return luma, limited


def _small_luma(luma: np.ndarray, limited: bool) -> np.ndarray:
    step = max(1, min(luma.shape) // 128)
    small = np.ascontiguousarray(luma[::step, ::step])
    return cv2.LUT(small, _LIMITED_TO_FULL) if limited else small


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return float(container.duration or 0) / av.time_base


@contextlib.contextmanager
def _ffmpeg_errors() -> Iterator[list[tuple[int, str, str]]]:
    """FFmpeg's error messages (all threads) while the block runs: (level, component, message)."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=False) as logs:
            yield logs
    finally:
        av.logging.set_level(previous)


def _decoded_frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, rejected: list[int]
) -> Iterator[av.VideoFrame]:
    """Every frame that decodes, packet by packet; each packet the decoder rejects is counted in
    ``rejected`` and skipped. A demuxer error (a truncated file) ends the stream."""
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                rejected[0] += 1
                continue
            yield from frames
    except av.error.FFmpegError:
        rejected[0] += 1


def extract_candidates(
    video: str | Path,
    out_dir: str | Path,
    highlight_times: list[float] | None = None,
    config: ExtractConfig = ExtractConfig(),
) -> list[CandidateFrame]:
    """Decode ``video`` once and save candidate frames as JPEGs into ``out_dir``."""
    return extract_video(video, out_dir, highlight_times, config).frames


def extract_video(
    video: str | Path,
    out_dir: str | Path,
    highlight_times: list[float] | None = None,
    config: ExtractConfig = ExtractConfig(),
) -> Extraction:
    """Decode ``video`` once: candidate JPEGs into ``out_dir``, its content box and its shots."""
    out_dir = Path(out_dir)
    highlights = sorted(t for t in (highlight_times or []) if t >= 0)
    candidates: list[CandidateFrame] = []
    pending: list[tuple[CandidateFrame, Future[tuple[int, int]]]] = []
    try:
        container = av.open(str(video), options=DEMUXER_OPTIONS)
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoInputError(f"cannot open video for decoding ({exc})") from exc
    rejected = [0]
    with container, ThreadPoolExecutor(max_workers=config.encode_threads) as pool, _ffmpeg_errors() as logs:
        if not container.streams.video:
            raise VideoInputError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        tracker = ShotTracker(float(rate) if rate else 30.0, config.shots)
        bars = BarDetector(config.bars)
        duration = _duration(container, stream)
        sample_every = max(1.0, duration / max(1, config.bar_samples))
        next_sample = 0.0
        coded = (0, 0, 0)  # width, height, clockwise rotation of the last frame
        next_second = 0.0
        next_highlight = 0
        last_saved = -math.inf
        decoded = 0
        decoded_until = 0.0
        frame_step = 1.0 / float(rate) if rate else 0.0
        for frame in _decoded_frames(container, stream, rejected):
            if frame.time is None:
                continue
            decoded += 1
            t = float(frame.time)
            step = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else frame_step
            decoded_until = max(decoded_until, t + step)
            luma, limited = _luma(frame)
            new_shot = tracker.add(t, _small_luma(luma, limited))
            if t >= next_sample - 1e-6 and bars.samples < config.bar_samples:
                bars.add(cv2.LUT(luma, _LIMITED_TO_FULL) if limited else luma)
                next_sample = t + sample_every
            coded = (frame.width, frame.height, _clockwise(frame))
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
            if config.shot_starts and new_shot:
                kinds.append(SHOT)
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
        for cand, fut in pending[len(candidates):]:
            cand.width, cand.height = fut.result()
            candidates.append(cand)
    if not candidates:
        raise VideoInputError("the video stream has no decodable frames")
    report = DecodeReport(decoded, round(decoded_until, 3), round(duration, 3), rejected[0] + len(logs))
    box = bars.content_box(coded[0], coded[1]).rotated(coded[2])
    shots = tracker.result(max(duration, tracker.times[-1]) if duration else None)
    return Extraction(candidates, box, shots, report)
