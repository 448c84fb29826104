"""Single-pass keyframe extraction and black / blur / duplicate filtering on the sample clips."""

import shutil

import av
import cv2
import numpy as np
import pytest

from tiktok_assets.lib.media import frames as frames_module
from tiktok_assets.lib.media.frame_filter import BLACK, BLUR, DUPLICATE, FilterConfig, filter_frames
from tiktok_assets.lib.media.frames import HIGHLIGHT, IFRAME, SECOND, extract_candidates
from tiktok_assets_tests.conftest import ffmpeg


@pytest.fixture(scope="module")
def filtered(sample_dir, samples, tmp_path_factory):
    """Candidates and filter verdicts for every sample clip (highlight at 3.3 s)."""
    out = {}
    for name in samples:
        folder = tmp_path_factory.mktemp(name)
        cands = extract_candidates(sample_dir / f"{name}.mp4", folder, highlight_times=[3.3])
        out[name] = (cands, filter_frames(cands, folder), folder)
    return out


def _segment_at(clip, t):
    return next(s for s in clip.segments if s.start <= t < s.end)


def test_one_frame_per_second_iframes_and_highlights(filtered, samples):
    for name, clip in samples.items():
        cands, _, folder = filtered[name]
        seconds = [c.time for c in cands if SECOND in c.kinds]
        assert seconds == pytest.approx([float(s) for s in range(int(clip.duration))], abs=1 / clip.fps)
        assert cands[0].time == 0.0 and IFRAME in cands[0].kinds
        # libx264 puts an I-frame on every hard cut: each cut has an I-frame candidate at it.
        iframes = [c.time for c in cands if IFRAME in c.kinds]
        for cut in clip.cuts:
            if _segment_at(clip, cut - 0.01).kind == "black" or _segment_at(clip, cut).kind == "blurred":
                continue
            assert any(abs(t - cut) <= 1 / clip.fps for t in iframes), (name, cut, iframes)
        highlight = [c for c in cands if HIGHLIGHT in c.kinds]
        assert len(highlight) == 1 and highlight[0].time == pytest.approx(3.3, abs=1 / clip.fps)
        for c in cands:
            image = cv2.imread(str(folder / c.file))
            assert image.shape[:2] == (clip.height, clip.width)
            assert c.file.startswith("-".join(c.kinds)) and f"{c.time:08.3f}s" in c.file


def test_black_lead_in_is_dropped(filtered, samples):
    _, result, _ = filtered["product_talk"]
    black = [v.time for v in result.dropped if v.reason == BLACK]
    assert black and all(t < 2.0 for t in black)
    assert not [v for v in result.kept if v.time < 2.0]
    assert len(black) == len([t for t in (0.0, 1.0)])


def test_blurred_segment_is_dropped_and_sharp_content_kept(filtered, samples):
    clip = samples["blur_and_cuts"]
    _, result, _ = filtered["blur_and_cuts"]
    for v in result.dropped + result.kept:
        seg = _segment_at(clip, v.time)
        if seg.kind == "blurred":
            assert v.reason == BLUR, v
        else:
            assert v.reason != BLUR, v


def test_soft_but_steady_clip_keeps_its_frames(filtered):
    _, result, _ = filtered["soft_focus_speech"]
    assert result.kept
    assert not [v for v in result.dropped if v.reason == BLUR]


def test_still_segment_duplicates_are_dropped(filtered, samples):
    clip = samples["product_talk"]
    _, result, _ = filtered["product_talk"]
    still = [v for v in result.kept + result.dropped if _segment_at(clip, v.time).kind == "still"]
    kept_still = [v for v in still if v.reason is None]
    assert len(kept_still) == 1
    assert all(v.reason == DUPLICATE and v.score > 0.8 for v in still if v.reason)


def test_a_frame_is_kept_on_each_side_of_every_hard_cut(filtered, samples):
    for name, clip in samples.items():
        _, result, _ = filtered[name]
        kept = [v.time for v in result.kept]
        for seg in clip.segments:
            if seg.kind in ("black", "blurred"):
                continue
            assert any(seg.start <= t < seg.end for t in kept), (name, seg, kept)


def test_every_drop_has_reason_and_score(filtered):
    for _, result, _ in filtered.values():
        for v in result.dropped:
            assert v.reason in (BLACK, BLUR, DUPLICATE) and v.score is not None
        assert result.counts["candidates"] == len(result.kept) + len(result.dropped)


def test_thresholds_are_configurable(filtered):
    cands, _, folder = filtered["product_talk"]
    strict = filter_frames(cands, folder, FilterConfig(ssim_threshold=0.999))
    default = filtered["product_talk"][1]
    assert len(strict.kept) > len(default.kept)


def test_video_is_decoded_exactly_once(sample_dir, tmp_path, monkeypatch):
    opened = []
    real_open = av.open

    def counting_open(*args, **kwargs):
        opened.append(args[0])
        return real_open(*args, **kwargs)

    monkeypatch.setattr(frames_module.av, "open", counting_open)
    extract_candidates(sample_dir / "silent_cuts.mp4", tmp_path, highlight_times=[1.5, 4.5])
    assert len(opened) == 1


def test_rotation_is_applied_to_saved_frames(tmp_path):
    src = tmp_path / "landscape.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=10:d=1", "-c:v", "libx264", "-preset", "ultrafast", str(src))
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    reference = tmp_path / "ffmpeg_display.png"  # ffmpeg's own autorotate is the ground truth
    ffmpeg("-i", str(rotated), "-frames:v", "1", str(reference))
    out = tmp_path / "frames"
    out.mkdir()
    cands = extract_candidates(rotated, out, config=frames_module.ExtractConfig(jpeg_quality=100))
    ours = cv2.imread(str(out / cands[0].file)).astype(np.float32)
    truth = cv2.imread(str(reference)).astype(np.float32)
    assert ours.shape == truth.shape == (640, 360, 3)
    assert float(np.abs(ours - truth).mean()) < 6.0


def test_huge_frames_are_saved_downscaled(tmp_path):
    src = tmp_path / "uhd.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=2160x3840:r=5:d=1", "-c:v", "libx264", "-preset", "ultrafast", str(src))
    out = tmp_path / "frames"
    out.mkdir()
    cands = extract_candidates(src, out)
    assert (cands[0].width, cands[0].height) == (1080, 1920)


def test_truncated_file_keeps_what_decodes(sample_dir, tmp_path):
    data = (sample_dir / "product_talk.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # faststart: the index is intact, the tail is missing
    out = tmp_path / "frames"
    out.mkdir()
    cands = extract_candidates(cut, out)
    assert 0 < len(cands) < 13
    shutil.rmtree(out)
