"""Audio track extraction: 16 kHz mono 16-bit PCM WAV via FFmpeg."""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.errors import VideoInputError

SAMPLE_RATE = 16_000
FFMPEG_TIMEOUT_S = 600


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    samples: int
    duration_s: float
    rms_dbfs: float
    peak_dbfs: float


def extract_wav(video: str | Path, target: str | Path, sample_rate: int = SAMPLE_RATE) -> AudioInfo:
    """Decode the first audio stream to a mono PCM WAV at ``sample_rate`` (written atomically)."""
    target = Path(target)
    with atomic.atomic_path(target) as tmp:
        cmd = [
            "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(video),
            "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate), "-c:a", "pcm_s16le",
            "-f", "wav", str(tmp),
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise VideoInputError(f"audio decode timed out after {FFMPEG_TIMEOUT_S}s") from exc
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "unknown error"
            raise VideoInputError(f"audio track cannot be decoded ({detail})")
    samples = load_wav(target)
    return AudioInfo(
        path=str(target),
        sample_rate=sample_rate,
        samples=int(samples.size),
        duration_s=round(samples.size / sample_rate, 3),
        rms_dbfs=round(_dbfs(float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0), 2),
        peak_dbfs=round(_dbfs(float(np.max(np.abs(samples))) if samples.size else 0.0), 2),
    )


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
