"""Silero VAD on the sample clips' audio against the measured espeak-ng speech intervals."""

import pytest

from tiktok_assets.lib.audio import extract_wav, load_wav
from tiktok_assets.lib.vad import detect_speech


def interval_iou(a: list[tuple[float, float]], b: list[tuple[float, float]], step: float = 0.01) -> float:
    """IoU of two unions of intervals, on a 10 ms grid."""
    end = max([e for _, e in a + b] + [0.0])
    n = int(end / step) + 2

    def mask(intervals):
        m = [False] * n
        for s, e in intervals:
            for i in range(int(s / step), min(n, int(e / step))):
                m[i] = True
        return m

    ma, mb = mask(a), mask(b)
    inter = sum(x and y for x, y in zip(ma, mb))
    union = sum(x or y for x, y in zip(ma, mb))
    return inter / union if union else 1.0


@pytest.mark.parametrize("name", ["product_talk", "soft_focus_speech", "speech_over_music"])
def test_speech_segments_overlap_the_spoken_parts(sample_dir, samples, tmp_path, name):
    clip = samples[name]
    info = extract_wav(sample_dir / f"{name}.mp4", tmp_path / "a.wav")
    assert info.sample_rate == 16000 and info.duration_s == pytest.approx(clip.duration, abs=0.05)
    segments = detect_speech(load_wav(info.path))
    assert segments, name
    iou = interval_iou([(s.start, s.end) for s in segments], clip.speech)
    assert iou >= 0.7, (name, iou, segments, clip.speech)
    assert all(0.0 <= s.confidence <= 1.0 and s.start < s.end for s in segments)


def test_music_only_clip_has_no_speech(sample_dir, tmp_path):
    info = extract_wav(sample_dir / "blur_and_cuts.mp4", tmp_path / "a.wav")
    speech = sum(s.duration for s in detect_speech(load_wav(info.path)))
    assert speech < 0.5
