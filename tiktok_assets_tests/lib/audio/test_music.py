"""Local soundtrack fingerprints and opt-in Shazam recognition (never reached in tests)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tiktok_assets.lib.audio import music
from tiktok_assets.lib.audio.music import (
    SAME_SOUNDTRACK,
    Fingerprint,
    MusicMatch,
    fingerprint,
    fingerprint_similarity,
    match_from_response,
    recognize_music,
)
from tiktok_assets_tests.lib.audio_fixtures import *


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True)


def test_fingerprint_of_music(music_clip) -> None:
    fp = fingerprint(music_clip.wav)
    assert fp.duration_s == pytest.approx(8.0, abs=0.1)
    assert len(fp.chromaprint) > 40 and all(0 <= x < 2**32 for x in fp.chromaprint)
    assert fp.shazam_signature and fp.shazam_signature.startswith("data:audio/vnd.shazam.sig;base64,")
    assert fp.shazam_samples > 0
    assert len(fp.id) == 16 and fingerprint(music_clip.wav).id == fp.id  # stable
    json.dumps(fp.to_json())


def test_shazam_signature_of_a_long_track_reads_only_an_excerpt(tmp_path: Path) -> None:
    """Memory flat in duration: shazamio_core reads the whole file it is given, so a long WAV is handed to it
    as its middle 20 s, and the signature is the same as from the whole file (for odd and even lengths)."""
    import asyncio

    from shazamio_core import Recognizer

    for samples in (720_000, 720_001):
        track = tmp_path / f"long_{samples}.wav"
        _ffmpeg("-f", "lavfi", "-i", "aevalsrc='0.3*sin(2*PI*t*(220+55*floor(mod(t*2,4))))':s=16000:d=46",
                "-af", f"atrim=end_sample={samples}", "-ac", "1", "-c:a", "pcm_s16le", str(track))
        excerpt = music.centred_excerpt(track, music.SHAZAM_EXCERPT_S)
        assert excerpt is not None and len(excerpt) < 20 * 16000 * 2 + 100

        async def whole_file(path: Path = track):
            return await Recognizer(segment_duration_seconds=music.SHAZAM_SEGMENT_S).recognize_path(str(path))

        expected = asyncio.run(whole_file()).signature.uri
        assert fingerprint(track).shazam_signature == expected
    assert music.centred_excerpt(tmp_path / "missing.wav", 20) is None


def test_same_soundtrack_is_similar_other_audio_is_not(music_clip, speech_clip, tmp_path: Path) -> None:
    original = fingerprint(music_clip.wav)
    # The same soundtrack, re-encoded to MP3 and starting 1.5 s later, as in a re-upload.
    reupload = tmp_path / "reupload.mp3"
    _ffmpeg("-ss", "1.5", "-i", str(music_clip.wav), "-c:a", "libmp3lame", "-b:a", "96k", str(reupload))
    other_music = tmp_path / "other_music.wav"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "aevalsrc='0.3*sin(2*PI*t*(330+110*floor(mod(t*3,3))))*exp(-3*mod(t,0.333))':s=16000:d=8",
        "-ac",
        "1",
        str(other_music),
    )
    assert fingerprint_similarity(original, original) == 1.0
    assert fingerprint_similarity(original, fingerprint(reupload)) >= 0.9
    assert fingerprint_similarity(original, fingerprint(speech_clip.wav)) <= 0.2
    # Another synthetic arpeggio (same kind of timbre and rhythm) is related but clearly not the same.
    assert fingerprint_similarity(original, fingerprint(other_music)) < 0.5 < SAME_SOUNDTRACK


def test_no_audio_fingerprint_is_empty(no_audio_clip, tmp_path: Path) -> None:
    for audio in (None, tmp_path / "missing.wav", no_audio_clip.video):
        fp = fingerprint(audio)
        assert fp.chromaprint == [] and fp.id == "" and fp.shazam_signature is None
    assert fingerprint_similarity(Fingerprint(0.0), Fingerprint(0.0)) == 0.0


def test_disabled_recognition_never_touches_network(music_clip, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = block_network(monkeypatch)
    monkeypatch.setattr(music, "_shazam", _forbidden)
    match = recognize_music(music_clip.wav, enabled=False, timeout_s=5)
    assert match == MusicMatch("disabled")
    assert attempts == []
    json.dumps(match.to_json())


async def _forbidden(path: Path) -> dict:
    raise AssertionError("Shazam must not be called when recognition is disabled")


def test_enabled_recognition_without_network_is_unreachable(
    music_clip, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = block_network(monkeypatch)
    match = recognize_music(music_clip.wav, enabled=True, timeout_s=10)
    assert match.status in ("unreachable", "error")
    assert match.title is None and match.artist is None and match.shazam_id is None  # nothing invented
    assert match.status == "unreachable", match.error
    assert attempts  # it did try, and the socket layer refused


def test_enabled_recognition_timeout_is_unreachable(music_clip, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    async def slow(path: Path) -> dict:
        await asyncio.sleep(5)
        return {}

    monkeypatch.setattr(music, "_shazam", slow)
    match = recognize_music(music_clip.wav, enabled=True, timeout_s=0.2)
    assert match.status == "unreachable" and match.title is None


def test_shazam_answer_parsing() -> None:
    assert match_from_response({"matches": [], "tagid": "x"}) == MusicMatch("no_match")
    answer = {
        "matches": [{"id": "1", "offset": 12.34567}],
        "track": {"key": 123, "title": "Song", "subtitle": "Band", "url": "https://www.shazam.com/track/123"},
    }
    assert match_from_response(answer) == MusicMatch(
        "matched", "Song", "Band", "123", "https://www.shazam.com/track/123", 12.346
    )
