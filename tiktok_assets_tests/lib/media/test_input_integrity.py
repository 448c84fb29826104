"""Input policy, decode integrity and audio-track choice on real, deliberately damaged media."""

from pathlib import Path

import pytest

from tiktok_assets.lib.audio.audio import extract_wav
from tiktok_assets.lib.errors import VideoInputError
from tiktok_assets.lib.media.decode_integrity import decode_warning
from tiktok_assets.lib.media.frames import extract_video
from tiktok_assets.lib.media.input_policy import InputLimits
from tiktok_assets.lib.media.probe import probe_video
from tiktok_assets.lib.samples import _speech_wav
from tiktok_assets_tests.conftest import ffmpeg

FPS, SECONDS = 30, 6.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """6 s, 30 fps, a key frame every second, moov at the start (as phones and web uploads write it)."""
    out = tmp_path_factory.mktemp("integrity") / "good.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r={FPS}:d={SECONDS}", "-f", "lavfi", "-i",
           f"sine=f=440:d={SECONDS}", "-c:v", "libx264", "-g", str(FPS), "-c:a", "aac", "-shortest",
           "-movflags", "+faststart", str(out))
    return out


def _damaged(clip: Path, target: Path, keep: float = 1.0, flip_at: float | None = None) -> Path:
    data = bytearray(clip.read_bytes())
    if flip_at is not None:
        start = int(len(data) * flip_at)
        for i in range(start, start + 4000, 7):
            data[i] ^= 0xFF
    target.write_bytes(bytes(data[: int(len(data) * keep)]))
    return target


def test_a_clean_decode_reports_the_whole_video(clip, tmp_path):
    report = extract_video(clip, tmp_path).decode
    assert (report.frames, report.errors) == (FPS * SECONDS, 0)
    assert report.decoded_seconds == pytest.approx(SECONDS, abs=0.01)
    assert report.declared_seconds == pytest.approx(SECONDS, abs=0.01)
    assert decode_warning("video", report.decoded_seconds, report.declared_seconds, report.errors) is None


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_a_truncated_file_says_how_much_decoded(clip, tmp_path, keep):
    truncated = _damaged(clip, tmp_path / "cut.mp4", keep=keep)
    meta = probe_video(truncated)  # the container still declares the full length
    assert meta.duration_s == pytest.approx(SECONDS, abs=0.05)
    report = extract_video(truncated, tmp_path).decode
    assert report.decoded_seconds < SECONDS * keep + 0.5
    assert report.frames < FPS * SECONDS * keep + FPS // 2
    warning = decode_warning("video", report.decoded_seconds, report.declared_seconds, report.errors)
    assert warning is not None and f"of {SECONDS:.1f} s decoded" in warning


def test_decoding_goes_on_past_corruption_in_the_middle(clip, tmp_path):
    corrupt = _damaged(clip, tmp_path / "corrupt.mp4", flip_at=0.5)
    report = extract_video(corrupt, tmp_path).decode
    assert report.errors > 0
    # Only the damaged stretch is lost: the decode reaches the end of the video.
    assert report.decoded_seconds == pytest.approx(SECONDS, abs=0.05)
    assert report.frames >= FPS * SECONDS - FPS
    assert "video decoder error" in decode_warning("video", report.decoded_seconds, SECONDS, report.errors)


def test_a_playlist_named_mp4_is_refused_and_nothing_it_names_is_read(clip, tmp_path):
    playlist = tmp_path / "playlist.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\n{clip}\n#EXT-X-ENDLIST\n")
    with pytest.raises(VideoInputError, match="refused: an HLS playlist"):
        probe_video(playlist)
    concat = tmp_path / "concat.mp4"
    concat.write_text(f"ffconcat version 1.0\nfile '{clip}'\n")
    with pytest.raises(VideoInputError, match="refused: an FFmpeg concat file"):
        probe_video(concat)
    # The decoders themselves refuse it too (demuxer whitelist), whatever comes before them.
    with pytest.raises(VideoInputError, match="cannot open video"):
        extract_video(playlist, tmp_path)
    with pytest.raises(VideoInputError, match="cannot be decoded"):
        extract_wav(playlist, tmp_path / "a.wav")


def test_an_image_renamed_mp4_is_not_an_allowed_container(tmp_path):
    png = tmp_path / "photo.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64:d=1", "-frames:v", "1", "-f", "image2", "-c:v", "png", str(png))
    with pytest.raises(VideoInputError, match="refused: not a video in an allowed container"):
        probe_video(png)


def test_limits_are_checked_before_decoding(clip):
    assert probe_video(clip, InputLimits()).width == 320
    with pytest.raises(VideoInputError, match=r"refused: frame size 320x240 is over the limit of 256 px"):
        probe_video(clip, InputLimits(max_side_px=256))
    with pytest.raises(VideoInputError, match=r"refused: declared duration 6 s is over the limit of 5 s"):
        probe_video(clip, InputLimits(max_duration_s=5))
    with pytest.raises(VideoInputError, match=r"refused: frame rate 30 fps is over the limit of 25 fps"):
        probe_video(clip, InputLimits(max_frame_rate=25))
    with pytest.raises(VideoInputError, match=r"refused: file size .* GiB is over the limit"):
        probe_video(clip, InputLimits(max_file_bytes=1000))


def test_speech_on_the_second_audio_track_is_used(tmp_path):
    speech = tmp_path / "speech.wav"
    _speech_wav("The new bottle keeps water cold for a whole day at the beach.", speech)
    video = tmp_path / "two_tracks.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64:r=10:d=5", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono",
           "-i", str(speech), "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-c:a", "aac",
           "-t", "5", str(video))
    meta = probe_video(video)
    assert meta.audio_track_count == 2 and len(meta.audio_durations_s) == 2
    info = extract_wav(video, tmp_path / "a.wav", track_count=meta.audio_track_count)
    assert (info.track, info.track_count) == (1, 2)
    silent, talking = info.tracks
    assert silent.speech_seconds == 0 and talking.speech_seconds > 2.0
    assert info.rms_dbfs == talking.rms_dbfs > -40 and silent.rms_dbfs < -90
    assert not list(tmp_path.glob(".tracks.*")), "the decoded tracks not used are removed"


def test_a_single_track_is_decoded_without_choosing(clip, tmp_path):
    info = extract_wav(clip, tmp_path / "a.wav")
    assert (info.track, info.track_count, info.tracks, info.decode_errors) == (0, 1, [], 0)
    assert info.duration_s == pytest.approx(SECONDS, abs=0.05)


def test_a_truncated_audio_track_is_reported(clip, tmp_path):
    truncated = _damaged(clip, tmp_path / "cut.mp4", keep=0.5)
    info = extract_wav(truncated, tmp_path / "a.wav")
    assert info.duration_s < SECONDS * 0.5 + 0.5
    warning = decode_warning("audio", info.duration_s, probe_video(truncated).audio_durations_s[0], info.decode_errors)
    assert warning is not None and "audio" in warning


def test_probe_rejects_what_ffprobe_cannot_parse(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("shopping list: milk, eggs\n")
    with pytest.raises(VideoInputError, match="not a readable media file"):
        probe_video(text)
