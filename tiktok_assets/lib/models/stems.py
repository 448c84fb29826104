"""What every separation backend (Demucs, Spleeter) shares: the two stems it writes and the streaming
loop that gets them there in bounded memory.

``separate_in_blocks`` decodes the input with FFmpeg at the backend's rate and channel count in blocks
of ``block_s`` seconds that overlap by ``overlap_s``, hands each block to the backend, and cross-fades
the block borders of what comes back. The stems are written as **16 kHz mono** 16-bit WAVs
(``vocals.wav``, ``no_vocals.wav``: the rate the rest of the pipeline reads), atomically.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import wave
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.errors import VideoInputError

OUT_RATE = 16_000
STEM_NAMES = ("vocals", "no_vocals")

# (channels, n) float32 samples at the backend's rate -> (vocals, no_vocals), each mono float32 at
# OUT_RATE, about n * OUT_RATE / rate samples long (fitted to that length by the caller).
SeparateBlock = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Stems:
    vocals_path: str
    no_vocals_path: str
    sample_rate: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def separate_in_blocks(
    path: str | Path,
    out_dir: str | Path,
    rate: int,
    channels: int,
    separate_block: SeparateBlock,
    block_s: float = 60.0,
    overlap_s: float = 1.0,
) -> Stems:
    """Split ``path`` (any file FFmpeg decodes) into ``out_dir``/vocals.wav and no_vocals.wav with
    ``separate_block``, holding at most ``block_s`` seconds of audio at once."""
    out_dir = Path(out_dir)
    unit_in, unit_out = rate // math.gcd(rate, OUT_RATE), OUT_RATE // math.gcd(rate, OUT_RATE)
    overlap = max(1, round(overlap_s * rate / unit_in)) * unit_in
    block = max(overlap * 2, round(block_s * rate / unit_in) * unit_in)
    overlap_out = overlap // unit_in * unit_out
    fade = np.linspace(0.0, 1.0, overlap_out, dtype=np.float32)

    written = 0
    with ExitStack() as stack:
        writers = {}
        for stem in STEM_NAMES:
            tmp = stack.enter_context(atomic.atomic_path(out_dir / f"{stem}.wav"))
            wf = stack.enter_context(wave.open(str(tmp), "wb"))
            wf.setnchannels(1)
            wf.setsampwidth(2)
            wf.setframerate(OUT_RATE)
            writers[stem] = wf
        tails: dict[str, np.ndarray] | None = None
        carry = np.zeros((channels, 0), dtype=np.float32)
        for new, last in read_blocks(path, rate, channels, block - overlap):
            chunk = np.concatenate([carry, new], axis=1)
            if chunk.shape[1] == 0:
                break
            expected = round(chunk.shape[1] * OUT_RATE / rate)
            stems = {k: _fit(v, expected) for k, v in zip(STEM_NAMES, separate_block(chunk), strict=True)}
            head = overlap_out if tails is not None else 0
            for k, v in stems.items():
                if tails is not None:
                    n = min(head, v.size)
                    v[:n] = tails[k][:n] * (1 - fade[:n]) + v[:n] * fade[:n]
            keep = expected if last else max(expected - overlap_out, 0)
            for k, v in stems.items():
                _write(writers[k], v[:keep])
            written += keep
            tails = {k: v[keep:].copy() for k, v in stems.items()}
            carry = chunk[:, -overlap:] if not last else carry
            if last:
                break
    return Stems(
        str(out_dir / "vocals.wav"), str(out_dir / "no_vocals.wav"), OUT_RATE, round(written / OUT_RATE, 3)
    )


def to_out_rate(mono: Any, rate: int) -> np.ndarray:
    """A mono torch tensor at ``rate`` -> float32 numpy at 16 kHz."""
    import julius

    if rate != OUT_RATE:
        mono = julius.resample_frac(mono, rate, OUT_RATE)
    return mono.cpu().numpy().astype(np.float32)


def _fit(samples: np.ndarray, length: int) -> np.ndarray:
    if samples.size >= length:
        return samples[:length].copy()
    return np.pad(samples, (0, length - samples.size))


def _write(wf: wave.Wave_write, samples: np.ndarray) -> None:
    wf.writeframes((np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())


def _channel_args(path: str | Path, channels: int) -> list[str]:
    """FFmpeg's ``-ac 2`` spreads a mono track over both channels at -3 dB; copy it at full level
    instead, so the stems keep the level of the mix (the pipeline's audio_wav is mono)."""
    if channels != 2 or not shutil.which("ffprobe"):
        return ["-ac", str(channels)]
    probe_cmd = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=channels"]
    probe = subprocess.run(
        [*probe_cmd, "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=False
    )
    if probe.stdout.strip() == "1":
        return ["-af", "pan=stereo|c0=c0|c1=c0"]
    return ["-ac", str(channels)]


def read_blocks(path: str | Path, rate: int, channels: int, block: int) -> Iterator[tuple[np.ndarray, bool]]:
    """Yield ``(samples (channels, n), is_last)`` blocks of at most ``block`` frames from FFmpeg."""
    if not Path(path).is_file():
        raise VideoInputError(f"audio file {path} does not exist")
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-map",
        "0:a:0",
        *_channel_args(path, channels),
        "-ar",
        str(rate),
        "-f",
        "f32le",
        "-",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    frame_bytes = 4 * channels
    try:
        assert proc.stdout is not None
        pending = proc.stdout.read(block * frame_bytes)
        while True:
            following = proc.stdout.read(block * frame_bytes) if pending else b""
            data = np.frombuffer(pending[: len(pending) // frame_bytes * frame_bytes], dtype="<f4")
            yield data.reshape(-1, channels).T.copy(), not following
            if not following:
                break
            pending = following
    finally:
        if proc.stdout:
            proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if (
            proc.wait() != 0
            and "does not contain any stream" not in stderr
            and "matches no streams" not in stderr
        ):
            raise VideoInputError(f"audio cannot be decoded: {stderr.strip().splitlines()[-1:] or '?'}")
