"""Black / bars / shots on generated real-like clips: photographs shipped with scikit-image, moved,
cut, faded and dissolved frame by frame in NumPy and encoded with FFmpeg (libx264, yuv420p)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from tiktok_assets.lib.media import frame_filter
from tiktok_assets.lib.media.bars import ContentBox
from tiktok_assets.lib.media.frame_filter import BLACK, DUPLICATE, FilterConfig, filter_frames
from tiktok_assets.lib.media.frames import SHOT, Extraction, extract_video
from tiktok_assets.lib.media.shots import CUT, DISSOLVE, FADE, THUMB, ShotTracker, detect_shots

FPS = 30
W, H = 360, 640


def write_clip(path: Path, frames: Iterator[np.ndarray], width: int = W, height: int = H) -> Path:
    proc = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
         "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p",
         str(path)], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return path


def view(photo: np.ndarray, cx: float, cy: float, zoom: float, width: int = W, height: int = H) -> np.ndarray:
    """A width x height camera view of ``photo`` centred on (cx, cy) (fractions), ``zoom`` >= 1."""
    ph, pw = photo.shape[:2]
    scale = max(width / pw, height / ph) * zoom
    big_w, big_h = pw * scale, ph * scale
    x0 = min(max(cx * big_w - width / 2, 0), big_w - width)
    y0 = min(max(cy * big_h - height / 2, 0), big_h - height)
    m = np.float32([[scale, 0, -x0], [0, scale, -y0]])
    return cv2.warpAffine(photo, m, (width, height), flags=cv2.INTER_LINEAR)


def shot(photo: np.ndarray, frames: int, start: tuple[float, float, float], speed: float = 0.001) -> list[np.ndarray]:
    """A slowly drifting hand-held shot (never perfectly still, like real footage)."""
    cx, cy, zoom = start
    return [view(photo, cx + speed * i, cy + 0.5 * speed * i, zoom) for i in range(frames)]


def extract(tmp_path: Path, name: str, make: Callable[[], Iterator[np.ndarray]], **size: int) -> tuple[Extraction, Path]:
    clip = write_clip(tmp_path / f"{name}.mp4", make(), **size)
    out = tmp_path / name
    out.mkdir()
    return extract_video(clip, out), out


def full_dark_ratio(path: Path) -> float:
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return float((gray <= 32).mean())


# --- black means empty --------------------------------------------------------------------------
def test_product_on_black_backdrop_is_kept(tmp_path):
    cup = cv2.resize(data.coffee(), (W, int(W * 400 / 600)))

    def make() -> Iterator[np.ndarray]:
        radius = int(np.sqrt(0.2 * W * H / np.pi))  # a round product photo, 20 % of the frame
        mask = np.zeros((H, W), np.uint8)
        cv2.circle(mask, (W // 2, H // 2), radius, 255, -1)
        for i in range(2 * FPS):
            frame = np.zeros((H, W, 3), np.uint8)
            placed = np.zeros_like(frame)
            y0 = H // 2 - cup.shape[0] // 2 + (i % 4)
            placed[y0:y0 + cup.shape[0]] = cup
            frame[mask > 0] = placed[mask > 0]
            yield frame

    ex, folder = extract(tmp_path, "product", make)
    result = filter_frames(ex.frames, folder, content_box=ex.content_box, shots=ex.shots.shots)
    assert ex.content_box.is_full  # a black backdrop is not a letterbox
    assert result.counts["dropped_black"] == 0 and result.kept
    for v in result.kept:
        assert 0.7 < v.dark_ratio < 0.85  # ~80 % of the frame is the black backdrop
    assert len(ex.shots.shots) == 1


def test_night_lights_on_black_are_kept(tmp_path):
    rng = np.random.default_rng(3)
    xs, ys = rng.integers(10, W - 10, 120), rng.integers(10, H - 10, 120)

    def make() -> Iterator[np.ndarray]:
        for i in range(2 * FPS):
            frame = np.zeros((H, W, 3), np.uint8)
            for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
                glow = 200 + int(55 * np.sin(i / 5 + k))  # twinkling street lights
                cv2.circle(frame, (int(x), int(y)), 5, (glow, glow, int(glow * 0.7)), -1, cv2.LINE_AA)
            yield frame

    ex, folder = extract(tmp_path, "night", make)
    result = filter_frames(ex.frames, folder, content_box=ex.content_box, shots=ex.shots.shots)
    assert result.counts["dropped_black"] == 0 and result.kept
    for v in result.kept:
        assert 0.9 < v.dark_ratio < 0.98
        assert full_dark_ratio(folder / v.file) > 0.9  # a dark picture, yet not an empty one


def test_fade_to_black_and_back_drops_only_empty_frames(tmp_path):
    cat, cup = data.chelsea(), data.coffee()
    # 0-2 s cat, 2-3 s fade out, 3-4 s black, 4-5 s fade in to the cup, 5-7 s cup
    def make() -> Iterator[np.ndarray]:
        a, b = shot(cat, 3 * FPS, (0.5, 0.5, 1.2)), shot(cup, 3 * FPS, (0.5, 0.5, 1.2))
        for i in range(7 * FPS):
            t = i / FPS
            if t < 3:
                gain, frame = min(1.0, 3 - t), a[i]
            elif t < 4:
                gain, frame = 0.0, a[-1]
            else:
                gain, frame = min(1.0, t - 4), b[i - 4 * FPS]
            yield (frame.astype(np.float32) * gain).round().astype(np.uint8)

    ex, folder = extract(tmp_path, "fade", make)
    result = filter_frames(ex.frames, folder, content_box=ex.content_box, shots=ex.shots.shots)
    black = {v.time for v in result.dropped if v.reason == BLACK}
    for v in result.kept + result.dropped:
        truly_empty = full_dark_ratio(folder / v.file) >= 0.98
        assert (v.time in black) == truly_empty, (v.time, full_dark_ratio(folder / v.file))
    assert {3.0, 4.0} <= black  # the black second itself
    assert all(2.5 < t < 4.5 for t in black)
    assert [v for v in result.kept if 2.0 <= v.time < 3.0]  # the fading cat is still a picture
    fades = [t for t in ex.shots.transitions if t.kind == FADE]
    assert len(ex.shots.transitions) == 1 and len(fades) == 1
    assert 1.9 <= fades[0].start <= 2.2 and 4.8 <= fades[0].end <= 5.1
    assert [s.transition for s in ex.shots.shots] == ["start", FADE]
    assert 3.0 <= ex.shots.shots[1].start < 4.0  # the boundary lies in the black second


def test_black_thresholds_are_config(tmp_path):
    rng = np.random.default_rng(5)

    def make() -> Iterator[np.ndarray]:
        for _ in range(FPS):
            frame = np.zeros((H, W, 3), np.uint8)
            frame[:, : W // 10] = rng.integers(60, 200, (H, W // 10, 1))  # 10 % textured strip
            yield frame

    ex, folder = extract(tmp_path, "strip", make)
    assert filter_frames(ex.frames, folder).counts["dropped_black"] == 0
    loose = filter_frames(ex.frames, folder, FilterConfig(black_ratio=0.85))
    assert loose.counts["dropped_black"] == len(ex.frames)


# --- bars ---------------------------------------------------------------------------------------
def test_letterboxed_landscape_footage_has_its_content_box(tmp_path):
    cup = data.coffee()

    def make() -> Iterator[np.ndarray]:
        for i in range(3 * FPS):
            frame = np.zeros((1280, 720, 3), np.uint8)
            frame[400:880] = view(cup, 0.4 + 0.004 * i, 0.5, 1.3, 720, 480)
            yield frame

    ex, folder = extract(tmp_path, "letterbox", make, width=720, height=1280)
    box = ex.content_box
    assert (box.frame_w, box.frame_h) == (720, 1280)
    for got, want in zip((box.x, box.y, box.w, box.h), (0, 400, 720, 480), strict=True):
        assert abs(got - want) <= 4, box
    result = filter_frames(ex.frames, folder, content_box=box, shots=ex.shots.shots)
    assert result.counts["dropped_black"] == 0
    for v in result.kept:  # measured on the picture only: the bars are not counted as dark pixels
        assert v.dark_ratio < 0.2
    assert cv2.imread(str(folder / ex.frames[0].file)).shape[:2] == (1280, 720)  # saved full size


def test_pillarbox_and_rotation_of_the_box():
    box = ContentBox(10, 0, 100, 200, 120, 200)
    assert box.rotated(90) == ContentBox(0, 10, 200, 100, 200, 120)
    assert box.rotated(180) == ContentBox(10, 0, 100, 200, 120, 200)
    assert box.rotated(270) == ContentBox(0, 10, 200, 100, 200, 120)
    assert box.as_string() == "10,0,100,200"


# --- shots --------------------------------------------------------------------------------------
def test_hard_cuts_between_similar_shots(tmp_path):
    cup = data.coffee()
    cuts = [45, 100]  # frames

    def make() -> Iterator[np.ndarray]:
        yield from shot(cup, 45, (0.45, 0.5, 1.3))
        yield from shot(cup, 55, (0.55, 0.45, 1.45))  # same cup, camera a little to the right and closer
        yield from shot(cup, 50, (0.5, 0.55, 1.2))

    ex, folder = extract(tmp_path, "cuts", make)
    found = [t for t in ex.shots.transitions if t.kind == CUT]
    assert len(ex.shots.transitions) == 2 and len(found) == 2
    for t, frame in zip(found, cuts, strict=True):
        assert abs(t.start - frame / FPS) <= 1 / FPS + 1e-6
    assert [s.transition for s in ex.shots.shots] == ["start", CUT, CUT]
    starts = [f.time for f in ex.frames if SHOT in f.kinds]
    for frame in cuts:  # a candidate at the start of each new shot
        assert any(abs(t - frame / FPS) <= 1 / FPS + 1e-6 for t in starts), starts
    result = filter_frames(ex.frames, folder, content_box=ex.content_box, shots=ex.shots.shots)
    assert {v.shot for v in result.kept} == {0, 1, 2}
    # without shots, dedup may remove a similar shot's only frame; with them it never does
    for v in result.dropped:
        assert v.reason != DUPLICATE or any(k.shot == v.shot and k.time < v.time for k in result.kept)


def test_a_one_frame_white_flash_is_not_a_new_shot(tmp_path):
    """A camera flash inside one continuous shot: no cut, no fade; the flash frame itself is empty."""
    cat = data.chelsea()

    def make() -> Iterator[np.ndarray]:
        frames = shot(cat, 91, (0.5, 0.5, 1.2))
        frames[60] = np.full_like(frames[60], 255)  # t = 2.0 s: the one-per-second sample lands on it
        yield from frames

    ex, folder = extract(tmp_path, "flash", make)
    assert ex.shots.transitions == [] and len(ex.shots.shots) == 1
    result = filter_frames(ex.frames, folder, content_box=ex.content_box, shots=ex.shots.shots)
    flash = [v for v in result.dropped if abs(v.time - 2.0) < 1e-3]
    assert len(flash) == 1 and flash[0].reason == BLACK  # no structure: empty, and never kept
    assert len(result.kept) >= 1


def test_cross_dissolve_is_a_transition(tmp_path):
    cat, cup = data.chelsea(), data.coffee()
    start, length = 45, 20

    def make() -> Iterator[np.ndarray]:
        a, b = shot(cat, start + length, (0.5, 0.5, 1.2)), shot(cup, 60, (0.5, 0.5, 1.2))
        yield from a[:start]
        for k in range(length):
            w = (k + 1) / (length + 1)
            yield (a[start + k].astype(np.float32) * (1 - w) + b[k].astype(np.float32) * w).round().astype(np.uint8)
        yield from b[length:]

    ex, _ = extract(tmp_path, "dissolve", make)
    assert len(ex.shots.transitions) == 1, ex.shots.transitions
    t = ex.shots.transitions[0]
    assert t.kind == DISSOLVE
    assert abs(t.start - (start - 1) / FPS) <= 3 / FPS and abs(t.end - (start + length) / FPS) <= 3 / FPS
    assert [s.transition for s in ex.shots.shots] == ["start", DISSOLVE]


def test_no_cut_inside_continuous_fast_motion(tmp_path):
    astronaut = data.astronaut()

    def make() -> Iterator[np.ndarray]:
        for i in range(4 * FPS):  # a fast whip pan back and forth with a zoom
            yield view(astronaut, 0.5 + 0.45 * np.sin(i / 6), 0.5 + 0.3 * np.cos(i / 9), 2.0 + 0.5 * np.sin(i / 11))

    ex, _ = extract(tmp_path, "motion", make)
    assert ex.shots.transitions == []
    assert len(ex.shots.shots) == 1


def test_tracker_keeps_few_thumbnails_and_finds_what_all_of_them_find():
    """Memory flat in duration: the tracker drops the thumbnails no transition test will read, and its
    result is exactly detect_shots over every frame's thumbnail (cuts, a flash, dissolves, fades, motion)."""
    cat, cup, astronaut = data.chelsea(), data.coffee(), data.astronaut()

    def scene(k: int) -> list[np.ndarray]:
        a, b = shot(cat, 80, (0.5, 0.5, 1.2)), shot(cup, 80, (0.5 + 0.01 * k, 0.5, 1.2))
        a[40] = np.full_like(a[40], 255)  # a flash
        blend = [(a[60 + i].astype(np.float32) * (1 - (i + 1) / 21) + b[i].astype(np.float32) * (i + 1) / 21)
                 .round().astype(np.uint8) for i in range(20)]  # a dissolve cat -> cup
        fade = [(b[-1].astype(np.float32) * g).round().astype(np.uint8) for g in np.linspace(1, 0, 20)]
        black = [np.zeros_like(a[0])] * 15
        motion = [view(astronaut, 0.5 + 0.45 * np.sin(i / 6), 0.5 + 0.3 * np.cos(i / 9), 2.0) for i in range(90)]
        return a[:60] + blend + b[20:] + fade + black + motion  # ...and a hard cut to the next scene

    tracker, thumbs, most_kept = ShotTracker(FPS), [], 0
    for k in range(5):
        for frame in scene(k):
            luma = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            tracker.add(len(thumbs) / FPS, luma)
            thumbs.append(cv2.resize(luma, (THUMB, THUMB), interpolation=cv2.INTER_AREA))
            most_kept = max(most_kept, tracker.thumbs.kept)
    end = len(thumbs) / FPS
    result = tracker.result(end)
    expected = detect_shots(tracker.times, thumbs, tracker.diffs, tracker.means, tracker.empty, FPS, end)
    assert result.to_json() == expected.to_json()
    kinds = [t.kind for t in result.transitions]
    assert kinds.count(DISSOLVE) == 5 and kinds.count(FADE) == 5 and kinds.count(CUT) == 4, kinds
    assert len(thumbs) == 5 * 265 and most_kept <= 190, most_kept  # the last ~6 s (see ShotTracker._horizon)


@pytest.mark.parametrize("name", ["product_talk", "blur_and_cuts"])
def test_every_visible_sample_shot_keeps_a_frame(filtered_with_shots, name):
    ex, result = filtered_with_shots[name]
    kept_shots = {v.shot for v in result.kept}
    verdicts = result.kept + result.dropped
    for index, _ in enumerate(ex.shots.shots):
        mine = [v for v in verdicts if v.shot == index]
        if mine and any(v.reason not in ("black", "blur") for v in mine):
            assert index in kept_shots, (index, mine)


def test_filter_reads_frames_again_beyond_its_cache_with_the_same_result(sample_dir, tmp_path, monkeypatch):
    """Memory flat in the number of frames: past SSIM_CACHE_BYTES (here none, or about one frame) the
    duplicate pass reads each frame again, and every verdict is the same."""
    ex = extract_video(sample_dir / "product_talk.mp4", tmp_path)
    expected = filter_frames(ex.frames, tmp_path, content_box=ex.content_box, shots=ex.shots.shots).to_json()
    assert expected["counts"]["dropped_duplicate"] >= 1
    for cache_bytes in (0, 40_000):
        monkeypatch.setattr(frame_filter, "SSIM_CACHE_BYTES", cache_bytes)
        again = filter_frames(ex.frames, tmp_path, content_box=ex.content_box, shots=ex.shots.shots)
        assert again.to_json() == expected


@pytest.fixture(scope="module")
def filtered_with_shots(sample_dir, samples, tmp_path_factory):
    out = {}
    for name in ("product_talk", "blur_and_cuts"):
        folder = tmp_path_factory.mktemp(name)
        ex = extract_video(sample_dir / f"{name}.mp4", folder)
        out[name] = (ex, filter_frames(ex.frames, folder, content_box=ex.content_box, shots=ex.shots.shots))
    return out
