import pytest

from tiktok_assets.lib.errors import VideoInputError
from tiktok_assets.lib.media.probe import probe_video
from tiktok_assets_tests.conftest import ffmpeg


def test_sample_metadata_matches_how_they_were_made(sample_dir, samples):
    for name, clip in samples.items():
        meta = probe_video(sample_dir / f"{name}.mp4")
        assert meta.duration_s == pytest.approx(clip.duration, abs=0.05), name
        assert (meta.width, meta.height) == (clip.width, clip.height), name
        assert meta.avg_frame_rate == pytest.approx(clip.fps, abs=0.01), name
        assert meta.nominal_frame_rate == pytest.approx(clip.fps, abs=0.01), name
        assert meta.frame_count == round(clip.duration * clip.fps), name
        assert meta.video_codec == "h264" and meta.pixel_format == "yuv420p"
        assert meta.file_size_bytes == (sample_dir / f"{name}.mp4").stat().st_size
        assert meta.has_audio == clip.has_audio, name
        assert meta.rotation == 0 and not meta.variable_frame_rate
        if clip.has_audio:
            assert meta.audio_codec == "aac" and meta.sample_rate == 44100 and meta.channels == 1
        else:
            assert meta.audio_codec is None and meta.sample_rate is None
        assert meta.bit_rate and meta.bit_rate > 0


def test_rotated_phone_video_reports_display_size(sample_dir, tmp_path):
    rotated = tmp_path / "rotated.mp4"
    # A landscape-coded stream with a 90 degree display matrix, as phones write them.
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=30:d=2", "-c:v", "libx264", "-preset", "ultrafast",
           str(tmp_path / "landscape.mp4"))
    ffmpeg("-i", str(tmp_path / "landscape.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    meta = probe_video(rotated)
    assert (meta.coded_width, meta.coded_height) == (640, 360)
    assert (meta.width, meta.height) == (360, 640)
    assert meta.rotation in (90, 270)


def test_variable_frame_rate_is_flagged(tmp_path):
    vfr = tmp_path / "vfr.mp4"
    # 30 fps for 2 s then 10 fps for 2 s, muxed without a constant rate.
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x568:r=30:d=2", "-f", "lavfi", "-i", "testsrc2=s=320x568:r=10:d=2",
           "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-fps_mode", "vfr",
           "-c:v", "libx264", "-preset", "ultrafast", str(vfr))
    meta = probe_video(vfr)
    assert meta.variable_frame_rate
    assert meta.frame_count == 80
    assert meta.duration_s == pytest.approx(4.0, abs=0.15)


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"\x00\x01garbage" * 1000, "not a readable media file"),
])
def test_unusable_files_raise_clear_errors(tmp_path, content, message):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(VideoInputError, match=message):
        probe_video(bad)


def test_audio_only_file_is_rejected(tmp_path):
    audio_only = tmp_path / "song.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=2", "-c:a", "aac", str(audio_only))
    with pytest.raises(VideoInputError, match="audio-only"):
        probe_video(audio_only)
