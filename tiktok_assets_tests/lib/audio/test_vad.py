"""Silero VAD on the sample clips' audio against the measured espeak-ng speech intervals."""

import numpy as np
import pytest

from tiktok_assets.lib.audio import vad
from tiktok_assets.lib.audio.audio import extract_wav, load_wav, write_wav
from tiktok_assets.lib.audio.vad import detect_speech


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


@pytest.mark.parametrize("length", [None, 3 * 512 * 7, 3 * 512 * 7 + 10, 3 * 512 * 7 + 500])
def test_blocks_give_the_probabilities_of_one_call(sample_dir, tmp_path, monkeypatch, length):
    """Memory flat in duration: the WAV is read and the model run block by block (here 7 windows a block),
    with exactly the probabilities of faster-whisper's one call over the whole track (last block full,
    ending 10 samples into a window, or 500)."""
    from faster_whisper.vad import get_vad_model

    samples = load_wav(extract_wav(sample_dir / "product_talk.mp4", tmp_path / "a.wav").path)[:length]
    write_wav(tmp_path / "b.wav", samples)
    samples = load_wav(tmp_path / "b.wav")
    expected = get_vad_model()(np.pad(samples, (0, (-samples.size) % 512))).reshape(-1)
    monkeypatch.setattr(vad, "BLOCK_WINDOWS", 7)
    assert np.array_equal(vad.speech_probabilities(tmp_path / "b.wav"), expected)
    assert np.array_equal(vad.speech_probabilities(samples), expected)
    assert detect_speech(tmp_path / "b.wav") == detect_speech(samples)
