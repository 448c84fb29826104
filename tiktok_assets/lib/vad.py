"""Voice activity detection with Silero VAD (the ONNX model that ships inside faster-whisper).

The model gives a speech probability for every 32 ms window; segments are found with hysteresis
(enter at ``threshold``, leave below ``threshold - 0.15``), short gaps are bridged, short blips
dropped, and each segment carries its mean speech probability as confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tiktok_assets.lib.offline import switch_off_network

SAMPLE_RATE = 16_000
WINDOW = 512  # samples per VAD window (32 ms at 16 kHz)


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5
    min_speech_s: float = 0.25
    min_silence_s: float = 0.5
    pad_s: float = 0.1


@dataclass(frozen=True)
class SpeechSegment:
    start: float
    end: float
    confidence: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def speech_probabilities(samples: np.ndarray) -> np.ndarray:
    """Per-window speech probability (one value per 32 ms) from the Silero model."""
    switch_off_network()  # before onnxruntime loads: its telemetry would look up a Microsoft host
    from faster_whisper.vad import get_vad_model  # onnxruntime session, cached per process

    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    padded = np.pad(samples.astype(np.float32), (0, (-samples.size) % WINDOW))
    return np.asarray(get_vad_model()(padded), dtype=np.float32).reshape(-1)


def segments_from_probabilities(
    probs: np.ndarray, duration_s: float, config: VadConfig = VadConfig()
) -> list[SpeechSegment]:
    """Hysteresis segmentation of window probabilities into speech segments."""
    step = WINDOW / SAMPLE_RATE
    low = max(config.threshold - 0.15, 0.01)
    raw: list[tuple[int, int]] = []
    start: int | None = None
    for i, p in enumerate(probs):
        if start is None and p >= config.threshold:
            start = i
        elif start is not None and p < low:
            raw.append((start, i))
            start = None
    if start is not None:
        raw.append((start, len(probs)))
    merged: list[tuple[int, int]] = []
    for s, e in raw:
        if merged and (s - merged[-1][1]) * step < config.min_silence_s:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    segments = []
    for s, e in merged:
        if (e - s) * step < config.min_speech_s:
            continue
        segments.append(
            SpeechSegment(
                start=round(max(0.0, s * step - config.pad_s), 3),
                end=round(min(duration_s, e * step + config.pad_s), 3),
                confidence=round(float(np.mean(probs[s:e])), 3),
            )
        )
    return segments


def detect_speech(samples: np.ndarray, config: VadConfig = VadConfig()) -> list[SpeechSegment]:
    """Speech segments of 16 kHz mono float audio."""
    probs = speech_probabilities(samples)
    return segments_from_probabilities(probs, samples.size / SAMPLE_RATE, config)
