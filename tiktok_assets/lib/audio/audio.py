"""Audio track extraction: 16 kHz mono 16-bit PCM WAV via FFmpeg.

A file with several audio tracks has every track decoded in the same FFmpeg call; the one kept is the
track with the most speech (Silero voice activity), or the loudest when none has speech, so speech on
a second track is never lost to a silent first one. Which track was used, and how many there are, is
recorded with each track's speech seconds and level.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.audio.vad import detect_speech, wav_blocks
from tiktok_assets.lib.errors import VideoInputError
from tiktok_assets.lib.media.input_policy import FFMPEG_INPUT_ARGS

SAMPLE_RATE = 16_000
FFMPEG_TIMEOUT_S = 600


@dataclass(frozen=True)
class TrackLevel:
    """One audio track of a file with several: how much speech it has and how loud it is."""

    index: int  # among the file's audio streams, 0-based
    speech_seconds: float
    rms_dbfs: float


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    samples: int
    duration_s: float
    rms_dbfs: float
    peak_dbfs: float
    track: int = 0  # the audio stream used, 0-based
    track_count: int = 1
    decode_errors: int = 0  # error messages FFmpeg printed while decoding (it skips what it cannot read)
    tracks: list[TrackLevel] = field(default_factory=list)  # every track's levels when there are several


def extract_wav(
    video: str | Path, target: str | Path, sample_rate: int = SAMPLE_RATE, track_count: int = 1
) -> AudioInfo:
    """Decode the audio to a mono PCM WAV at ``sample_rate`` (written atomically): the only track, or
    of ``track_count`` tracks the one with the most speech (the loudest when none has speech)."""
    target = Path(target)
    levels: list[TrackLevel] = []
    chosen = 0
    if track_count <= 1:
        with atomic.atomic_path(target) as tmp:
            errors = _decode_tracks(video, [tmp], sample_rate)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tracks.") as folder:
            outputs = [Path(folder) / f"track{i}.wav" for i in range(track_count)]
            errors = _decode_tracks(video, outputs, sample_rate)
            levels = [track_level(i, p) for i, p in enumerate(outputs)]
            chosen = pick_track(levels)
            os.replace(outputs[chosen], target)
    count, rms, peak = wav_levels(target)
    return AudioInfo(
        path=str(target),
        sample_rate=sample_rate,
        samples=count,
        duration_s=round(count / sample_rate, 3),
        rms_dbfs=round(_dbfs(rms), 2),
        peak_dbfs=round(_dbfs(peak), 2),
        track=chosen,
        track_count=max(1, track_count),
        decode_errors=errors,
        tracks=levels,
    )


def track_level(index: int, wav: Path) -> TrackLevel:
    count, rms, _ = wav_levels(wav)
    speech = sum(s.duration for s in detect_speech(wav)) if count else 0.0
    return TrackLevel(index, round(speech, 3), round(_dbfs(rms), 2))


def wav_levels(path: Path, block_samples: int = 1 << 20) -> tuple[int, float, float]:
    """Samples, RMS and peak amplitude of a 16-bit mono WAV, read a block at a time (memory flat in
    the duration)."""
    count, squares, peak = 0, 0.0, 0.0
    for block in wav_blocks(path, block_samples):
        count += block.size
        squares += float(np.square(block, dtype=np.float64).sum())
        peak = max(peak, float(np.abs(block).max()))
    return count, (squares / count) ** 0.5 if count else 0.0, peak


def pick_track(levels: list[TrackLevel]) -> int:
    """The track with the most speech; when no track has speech (< 0.5 s), the loudest."""
    talking = max(levels, key=lambda t: t.speech_seconds)
    if talking.speech_seconds >= 0.5:
        return talking.index
    return max(levels, key=lambda t: t.rms_dbfs).index


def _decode_tracks(video: str | Path, outputs: list[Path], sample_rate: int) -> int:
    """Decode audio stream i into ``outputs[i]`` in one FFmpeg call; return the decoder errors printed."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", *FFMPEG_INPUT_ARGS, "-i", str(video)]
    for i, out in enumerate(outputs):
        cmd += ["-map", f"0:a:{i}", "-vn", "-ac", "1", "-ar", str(sample_rate), "-c:a", "pcm_s16le",
                "-f", "wav", str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VideoInputError(f"audio decode timed out after {FFMPEG_TIMEOUT_S}s") from exc
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != 0:
        raise VideoInputError(f"audio track cannot be decoded ({lines[-1] if lines else 'unknown error'})")
    return len(lines)


def load_wav(path: str | Path) -> np.ndarray:
    """Read a 16-bit PCM mono WAV as float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as wf:
        if wf.getsampwidth() != 2 or wf.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono PCM")
        raw = wf.readframes(wf.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float samples in [-1, 1] (mono) as 16-bit PCM, atomically."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with atomic.atomic_path(path) as tmp, wave.open(str(tmp), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(sample_rate)
        wf.writeframes(pcm.tobytes())


def _dbfs(amplitude: float) -> float:
    return 20.0 * float(np.log10(max(amplitude, 1e-10)))
