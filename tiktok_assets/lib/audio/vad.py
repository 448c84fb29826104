"""Voice activity detection with Silero VAD (the ONNX model that ships inside faster-whisper).

The model gives a speech probability for every 32 ms window; segments are found with hysteresis
(enter at ``threshold``, leave below ``threshold - 0.15``), short gaps are bridged, short blips
dropped, and each segment carries its mean speech probability as confidence.

Memory does not grow with the duration: a WAV file is read in blocks of ``BLOCK_WINDOWS`` windows and
the model runs block by block, carrying its LSTM state and the 64-sample context across blocks. That
gives exactly the probabilities of one call over the whole track (faster-whisper's
``SileroVADModel.__call__``), without the copies of the whole track that call makes.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiktok_assets.lib.offline import switch_off_network

SAMPLE_RATE = 16_000
WINDOW = 512  # samples per VAD window (32 ms at 16 kHz)
CONTEXT = 64  # samples of the previous window the model sees before each window
BLOCK_WINDOWS = 256  # windows per model call (about 8 s of audio)


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


def wav_blocks(path: str | Path, block_samples: int) -> Iterator[np.ndarray]:
    """A 16-bit PCM mono WAV as consecutive float32 blocks of ``block_samples`` samples (the last one
    shorter): the values of ``audio.load_wav``, never more than one block in memory."""
    with wave.open(str(path), "rb") as wf:
        if wf.getsampwidth() != 2 or wf.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono PCM")
        while raw := wf.readframes(block_samples):
            yield np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def wav_samples(path: str | Path) -> int:
    """Number of samples of a WAV file (from its header)."""
    with wave.open(str(path), "rb") as wf:
        return wf.getnframes()


def _array_blocks(samples: np.ndarray, block_samples: int) -> Iterator[np.ndarray]:
    for start in range(0, samples.size, block_samples):
        yield samples[start : start + block_samples].astype(np.float32, copy=False)


def speech_probabilities(audio: str | Path | np.ndarray) -> np.ndarray:
    """Per-window speech probability (one value per 32 ms) from the Silero model, for 16 kHz mono float
    samples or a 16-bit mono WAV file (read block by block)."""
    switch_off_network()  # before onnxruntime loads: its telemetry would look up a Microsoft host
    from faster_whisper.vad import get_vad_model  # onnxruntime session, cached per process

    if isinstance(audio, np.ndarray):
        total, blocks = audio.size, _array_blocks(audio.reshape(-1), BLOCK_WINDOWS * WINDOW)
    else:
        total, blocks = wav_samples(audio), wav_blocks(audio, BLOCK_WINDOWS * WINDOW)
    if total == 0:
        return np.zeros(0, dtype=np.float32)
    session = get_vad_model().session
    h = np.zeros((1, 1, 128), dtype=np.float32)
    c = np.zeros((1, 1, 128), dtype=np.float32)
    previous = np.zeros(CONTEXT, dtype=np.float32)  # the first window's context is silence
    outputs: list[np.ndarray] = []
    done = 0
    for block in blocks:
        done += block.size
        windows = np.pad(block, (0, (-block.size) % WINDOW)).reshape(-1, WINDOW)  # the last one zero-padded
        if done >= total:
            # faster-whisper zeroes the last window's final 64 samples (its context slice is a view of the
            # input); so does this, to give exactly the probabilities of one call over the whole track.
            windows[-1, -CONTEXT:] = 0.0
        context = np.concatenate([previous[None], windows[:-1, -CONTEXT:]])
        previous = windows[-1, -CONTEXT:].copy()
        out, h, c = session.run(None, {"input": np.concatenate([context, windows], axis=1), "h": h, "c": c})
        outputs.append(np.asarray(out, dtype=np.float32).reshape(-1))
    return np.concatenate(outputs)


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


def detect_speech(audio: str | Path | np.ndarray, config: VadConfig = VadConfig()) -> list[SpeechSegment]:
    """Speech segments of 16 kHz mono float audio, or of a 16-bit mono WAV file (read in blocks: pass the
    path rather than ``load_wav(path)`` to keep memory independent of the duration)."""
    probs = speech_probabilities(audio)
    total = audio.size if isinstance(audio, np.ndarray) else wav_samples(audio)
    return segments_from_probabilities(probs, total / SAMPLE_RATE, config)
