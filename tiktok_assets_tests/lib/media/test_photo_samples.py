"""The photo sample clips: real photographs (scikit-image, ultralytics' bus.jpg) slowly zoomed in a
vertical frame, with an espeak-ng narration that real Whisper tiny.en hears naming what is shown."""

from pathlib import Path

import cv2
import jiwer
import numpy as np
import pytest

from tiktok_assets.lib.audio.audio import extract_wav
from tiktok_assets.lib.media.probe import probe_video
from tiktok_assets.lib.models.whisper import load_whisper, transcribe
from tiktok_assets.lib.samples import missing_photos, pattern_specs, photo_file, photo_specs
from tiktok_assets_tests.lib.audio_fixtures import build_packaged_whisper

# The words of each narration that name what the clip shows.
NAMED = {"coffee_review": ["coffee", "cup"], "cat_vlog": ["cat"], "bus_tour": ["bus"],
         "space_launch": ["astronaut", "rocket"], "motorcycle_ride": ["motorcycle"]}


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


def _frames(video: Path, indexes: set[int]) -> dict[int, np.ndarray]:
    """The frames at these indexes, in one decoding pass."""
    capture = cv2.VideoCapture(str(video))
    out, i = {}, 0
    while len(out) < len(indexes):
        ok, frame = capture.read()
        assert ok, (video, sorted(indexes - set(out)))
        if i in indexes:
            out[i] = frame
        i += 1
    capture.release()
    return out


def test_the_photo_set_covers_six_photographs_with_new_names():
    photos = [c for c, _, _ in photo_specs()]
    assert [c.name for c in photos] == list(NAMED)
    assert not {c.name for c in photos} & {c.name for c, _, _ in pattern_specs()}
    sources = [s.source for c in photos for s in c.segments]
    assert len(set(sources)) == 6 and all(photo_file(s).is_file() for s in sources)
    assert all(not missing_photos(c) for c in photos)
    with pytest.raises(FileNotFoundError, match="not installed"):
        photo_file("no_such_package_xyz/photo.png")


@pytest.mark.slow  # generating the five photo clips takes ~40 s on 2 cores
def test_files_have_the_declared_size_duration_and_audio(photo_sample_dir, photo_samples):
    assert list(photo_samples) == list(NAMED)
    for name, clip in photo_samples.items():
        meta = probe_video(photo_sample_dir / f"{name}.mp4")
        assert (meta.width, meta.height) == (clip.width, clip.height) == (720, 1280), name
        assert meta.duration_s == pytest.approx(clip.duration, abs=0.05), name
        assert 6 <= clip.duration <= 10
        assert meta.frame_count == round(clip.duration * clip.fps), name
        assert meta.video_codec == "h264" and meta.pixel_format == "yuv420p"
        assert meta.has_audio and meta.audio_codec == "aac" and meta.sample_rate == 44100
        assert [s.kind for s in clip.segments] == ["photo"] * len(clip.segments)
        assert clip.segments[0].start == 0 and clip.segments[-1].end == clip.duration
        assert clip.cuts == [s.start for s in clip.segments[1:]]
        assert clip.speech_text and clip.speech[0][0] >= 0.5 and clip.speech[-1][1] < clip.duration


@pytest.mark.slow  # generating the five photo clips takes ~40 s on 2 cores
def test_each_shot_shows_its_photo_and_zooms_in(photo_sample_dir, photo_samples):
    for name, clip in photo_samples.items():
        bounds = [(round(s.start * clip.fps), round(s.end * clip.fps) - 1) for s in clip.segments]
        frames = _frames(photo_sample_dir / f"{name}.mp4", {i for pair in bounds for i in pair})
        for seg, (start, end) in zip(clip.segments, bounds, strict=True):
            # The shot's first frame is the whole photo fitted into the frame, centred (zoom 1.0).
            first = frames[start]
            photo = cv2.imread(str(photo_file(seg.source)))
            scale = min(clip.width / photo.shape[1], clip.height / photo.shape[0])
            w, h = round(photo.shape[1] * scale), round(photo.shape[0] * scale)
            x, y = (clip.width - w) // 2, (clip.height - h) // 2
            fitted = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA).astype(float)
            shown = first[y + 4:y + h - 4, x + 4:x + w - 4].astype(float)
            assert np.abs(shown - fitted[4:-4, 4:-4]).mean() < 12, (name, seg.source)
            assert first[: max(y - 4, 1)].mean() < 20  # black bar above (or nothing for a full-height photo)
            # ...and by its last frame the picture has zoomed in: not a still.
            last = frames[end]
            assert np.abs(last.astype(float) - first.astype(float)).mean() > 5, (name, seg.source)


@pytest.fixture(scope="module")
def transcripts(photo_sample_dir, photo_samples, tmp_path_factory):
    model = load_whisper(build_packaged_whisper(tmp_path_factory.getbasetemp(), "tiny.en"), "cpu")
    out = {}
    for name in photo_samples:
        wav = tmp_path_factory.mktemp("photo_audio") / f"{name}.wav"
        extract_wav(photo_sample_dir / f"{name}.mp4", wav)
        out[name] = transcribe(model, wav)
    return out


@pytest.mark.slow  # generating the five photo clips takes ~40 s on 2 cores
def test_whisper_tiny_en_hears_the_narration_name_what_is_shown(transcripts, photo_samples):
    for name, clip in photo_samples.items():
        transcript = transcripts[name]
        heard = _words(transcript.text)
        assert transcript.language == "en"
        assert all(word in heard for word in NAMED[name]), (name, transcript.text)
        assert all(word in _words(clip.speech_text) for word in NAMED[name])
        assert jiwer.wer(" ".join(_words(clip.speech_text)), " ".join(heard)) <= 0.3, (name, transcript.text)
        words = [w for s in transcript.segments for w in s.words]
        assert words[0].start >= clip.speech[0][0] - 0.5 and words[-1].end <= clip.speech[-1][1] + 0.5, name
