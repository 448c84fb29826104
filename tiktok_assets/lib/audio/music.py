"""Soundtrack fingerprints (always local) and optional Shazam recognition (network, opt-in).

- :func:`fingerprint`: Chromaprint via ``fpcalc -json -raw`` (integers, one per ~0.124 s) and the
  Shazam signature computed offline by ``shazamio_core``. Both stay on this machine, and neither reads
  more than a bounded part of the audio (fpcalc the first ``length_s``; shazamio_core, which reads the
  whole file it is given, a 20 s excerpt around the middle, whose signature is the whole file's).
- :func:`fingerprint_similarity`: 1 - 2 x the best bit error rate of two Chromaprint fingerprints
  over a range of alignments: about 1 for the same soundtrack (>= ``SAME_SOUNDTRACK``), below
  0.5 for other audio (similar-sounding synthetic sources reach 0.3-0.45, unrelated audio ~0).
- :func:`recognize_music`: asks Shazam's servers only when ``enabled``; reports ``disabled`` without
  touching the network otherwise, ``unreachable`` on network errors and timeouts, ``no_match`` when
  Shazam knows no song, and never makes an answer up.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import subprocess
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

log = logging.getLogger("tiktok_assets.music")

FPCALC_TIMEOUT_S = 120
ITEM_S = 0.1238  # seconds of audio per Chromaprint item
SAME_SOUNDTRACK = 0.8  # similarity from which two fingerprints are taken for the same soundtrack
SHAZAM_SEGMENT_S = 10  # the offline Shazam signature is computed from the middle 10 s
SHAZAM_EXCERPT_S = 20  # ...of the excerpt around the middle that shazamio_core is given
MusicStatus = Literal["disabled", "no_match", "matched", "unreachable", "error"]


@dataclass(frozen=True)
class Fingerprint:
    duration_s: float
    chromaprint: list[int] = field(default_factory=list)  # raw fpcalc items (unsigned 32-bit)
    shazam_signature: str | None = None  # data: URI of the offline Shazam signature
    shazam_samples: int = 0

    @property
    def id(self) -> str:
        """A short stable id of the Chromaprint (identical decoded audio -> identical id); '' if none."""
        if not self.chromaprint:
            return ""
        return hashlib.sha1(np.asarray(self.chromaprint, dtype="<u4").tobytes()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "id": self.id}


@dataclass(frozen=True)
class MusicMatch:
    status: MusicStatus
    title: str | None = None
    artist: str | None = None
    shazam_id: str | None = None
    url: str | None = None
    offset_s: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fingerprint(wav_path: str | Path | None, length_s: int = 120, shazam: bool = True) -> Fingerprint:
    """Local fingerprints of the first ``length_s`` seconds; an empty one without audio."""
    if wav_path is None or not Path(wav_path).is_file():
        return Fingerprint(0.0)
    cmd = ["fpcalc", "-json", "-raw", "-length", str(length_s), str(wav_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FPCALC_TIMEOUT_S, check=False)
    try:  # fpcalc exits non-zero on a benign "end of file" decode message, yet prints the result
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        log.info("no Chromaprint for %s: %s", wav_path, proc.stderr.strip()[-200:])
        data = {}
    prints = [int(x) & 0xFFFFFFFF for x in data.get("fingerprint", [])]
    signature, samples = _shazam_signature(wav_path) if shazam and prints else (None, 0)
    return Fingerprint(round(float(data.get("duration", 0.0)), 3), prints, signature, samples)


def _shazam_signature(wav_path: str | Path) -> tuple[str | None, int]:
    try:
        from shazamio_core import Recognizer
    except ImportError:
        return None, 0

    excerpt = centred_excerpt(wav_path, SHAZAM_EXCERPT_S)

    async def _sign() -> Any:
        recognizer = Recognizer(segment_duration_seconds=SHAZAM_SEGMENT_S)
        if excerpt is not None:
            return await recognizer.recognize_bytes(excerpt)
        return await recognizer.recognize_path(str(wav_path))

    try:
        sig = asyncio.run(_sign())
    except Exception as exc:  # noqa: BLE001 - a signature is a nice-to-have
        log.info("no Shazam signature for %s: %s", wav_path, exc)
        return None, 0
    return sig.signature.uri, int(sig.signature.samples)


def centred_excerpt(path: str | Path, seconds: int) -> bytes | None:
    """The middle ``seconds`` of a 16 kHz 16-bit mono WAV, as WAV bytes: shazamio_core picks its centred
    segment out of this excerpt exactly as out of the whole file (same signature), without reading the
    whole file into memory. None when the file is no such WAV or not longer than ``seconds``."""
    try:
        with wave.open(str(path), "rb") as wf:
            rate, width, channels, total = wf.getframerate(), wf.getsampwidth(), wf.getnchannels(), wf.getnframes()
            length = seconds * rate
            if rate != 16_000 or width != 2 or channels != 1 or total <= length:
                return None
            wf.setpos((total - length) // 2)
            raw = wf.readframes(length)
    except (wave.Error, EOFError, OSError):
        return None
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(raw)
    return buffer.getvalue()


def fingerprint_similarity(
    a: Fingerprint | list[int],
    b: Fingerprint | list[int],
    max_offset_s: float = 10.0,
    min_overlap: float = 0.5,
) -> float:
    """Similarity in [0, 1] of two Chromaprint fingerprints, best over alignments up to
    ``max_offset_s`` apart that overlap by at least ``min_overlap`` of the shorter one:
    1 - 2 x bit error rate, floored at 0 (unrelated audio has a bit error rate near 0.5)."""
    x = np.asarray(a.chromaprint if isinstance(a, Fingerprint) else a, dtype=np.uint32)
    y = np.asarray(b.chromaprint if isinstance(b, Fingerprint) else b, dtype=np.uint32)
    if x.size == 0 or y.size == 0:
        return 0.0
    need = max(1, int(min_overlap * min(x.size, y.size)))
    best = 0.5
    max_shift = int(max_offset_s / ITEM_S)
    for shift in range(-min(max_shift, y.size - need), min(max_shift, x.size - need) + 1):
        xs, ys = (x[shift:], y) if shift >= 0 else (x, y[-shift:])
        n = min(xs.size, ys.size)
        if n < need:
            continue
        diff = np.bitwise_xor(xs[:n], ys[:n])
        ber = float(np.unpackbits(diff.view(np.uint8)).sum()) / (32.0 * n)
        best = min(best, ber)
    return round(max(0.0, 1.0 - 2.0 * best), 4)


# --- Shazam (network) -------------------------------------------------------------------------------


def recognize_music(wav_path: str | Path | None, enabled: bool, timeout_s: float = 20.0) -> MusicMatch:
    """Identify the song with Shazam when ``enabled``; ``disabled`` (no network) otherwise."""
    if not enabled:
        return MusicMatch("disabled")
    if wav_path is None or not Path(wav_path).is_file():
        return MusicMatch("no_match")
    try:
        answer = asyncio.run(asyncio.wait_for(_shazam(Path(wav_path)), timeout=timeout_s))
    except ImportError as exc:
        return MusicMatch("error", error=f"shazamio is not installed ({exc})")
    except (TimeoutError, OSError) as exc:  # aiohttp's connection errors are OSErrors
        return MusicMatch("unreachable", error=f"{type(exc).__name__}: {exc}"[:300])
    except Exception as exc:  # noqa: BLE001 - bad answers, rate limits: recorded, never fatal
        if _is_network_error(exc):
            return MusicMatch("unreachable", error=f"{type(exc).__name__}: {exc}"[:300])
        return MusicMatch("error", error=f"{type(exc).__name__}: {exc}"[:300])
    return match_from_response(answer)


async def _shazam(path: Path) -> dict[str, Any]:
    from aiohttp_retry import ExponentialRetry
    from shazamio import Shazam
    from shazamio.client import HTTPClient

    client = HTTPClient(retry_options=ExponentialRetry(attempts=2, statuses={500, 502, 503, 504}))
    async with Shazam(http_client=client) as shazam:
        try:
            return await shazam.recognize(path)
        finally:
            await client.close()


def _is_network_error(exc: BaseException) -> bool:
    try:
        import aiohttp
    except ImportError:
        return False
    return isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ServerTimeoutError))


def match_from_response(answer: dict[str, Any]) -> MusicMatch:
    """Shazam's answer -> :class:`MusicMatch`; ``no_match`` when it names no track."""
    track = answer.get("track") if isinstance(answer, dict) else None
    if not track:
        return MusicMatch("no_match")
    matches = answer.get("matches") or [{}]
    offset = matches[0].get("offset")
    return MusicMatch(
        "matched",
        title=track.get("title"),
        artist=track.get("subtitle"),
        shazam_id=str(track["key"]) if track.get("key") is not None else None,
        url=track.get("url"),
        offset_s=round(float(offset), 3) if offset is not None else None,
    )
