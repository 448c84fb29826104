"""Shot boundaries from tiny luma thumbnails of EVERY decoded frame (fed during the single decode pass).

- hard cut: the frame-to-frame difference (mean absolute, 0-255) is at least ``cut_min_diff`` and
  ``cut_ratio`` times the mean difference of the surrounding ``window_s`` (adaptive: continuous fast
  motion has large differences everywhere, so it never makes a cut);
- fade: a run of empty frames (black, or flat) with pictures on both sides; the transition spans the
  fade-out (luma falling) to the fade-in (luma rising), the boundary is the middle of the empty run;
- dissolve: a run of moderately raised differences whose frames are, all of them, a linear blend of
  the frames before and after it (least-squares weight per frame, falling from 1 to 0). Motion is not
  a blend of its end frames, so it is not a dissolve.
While decoding, :meth:`ShotTracker.add` also says causally whether a frame likely starts a new shot
(a spike, or the first steady frame after a gradual change), so the extractor can save it.

Memory does not grow with the duration beyond a few numbers per frame: the tracker keeps the thumbnails
of the last few seconds only. The two tests that read older thumbnails (is a cut a flash, is a run of
raised differences a blend) are run as soon as the frames they depend on have been seen, with the same
arithmetic :func:`detect_shots` uses at the end, and their verdicts are handed to it: the result is
that of keeping every thumbnail.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

THUMB = 32  # thumbnails are THUMB x THUMB luma, full range
RAISED_BATCH = 32  # frames whose dissolve-window percentile the tracker computes at once

START, CUT, FADE, DISSOLVE = "start", "cut", "fade", "dissolve"


@dataclass(frozen=True)
class ShotConfig:
    cut_min_diff: float = 6.0
    cut_ratio: float = 3.0
    window_s: float = 1.0
    min_shot_s: float = 0.3
    black_luma: int = 32
    black_ratio: float = 0.98
    flat_std: float = 3.0
    fade_step: float = 0.2  # luma change per frame that continues a fade
    min_fade_frames: int = 3  # empty frames without a ramp around them shorter than this are a flash
    gradual_min_step: float = 0.8  # a dissolve changes every frame at least this much
    gradual_ratio: float = 1.25  # ...and this much above the quiet (25th percentile) differences around
    gradual_min_diff: float = 10.0  # start and end of a dissolve differ at least this much
    blend_tolerance: float = 0.3  # residual of the blend fit, relative to that difference
    max_gradual_s: float = 3.0
    min_gradual_frames: int = 6


@dataclass
class Transition:
    start: float
    end: float
    kind: str


@dataclass
class Shot:
    start: float
    end: float
    transition: str  # how the shot begins: start, cut, fade, dissolve


@dataclass
class ShotResult:
    shots: list[Shot]
    transitions: list[Transition]
    duration: float

    def to_json(self) -> dict:
        return {
            "duration_s": round(self.duration, 3),
            "shot_count": len(self.shots),
            "mean_shot_seconds": round(self.duration / len(self.shots), 3) if self.shots else None,
            "cuts_per_minute": round(60.0 * len(self.transitions) / self.duration, 3) if self.duration > 0 else None,
            "shots": [asdict(s) for s in self.shots],
            "transitions": [asdict(t) for t in self.transitions],
        }

    @classmethod
    def from_json(cls, data: dict) -> ShotResult:
        return cls([Shot(**s) for s in data["shots"]], [Transition(**t) for t in data["transitions"]],
                   data["duration_s"])


def shot_index(shots: list[Shot], time_s: float) -> int:
    """Index of the shot containing ``time_s`` (the last one for times past the end)."""
    for i, shot in enumerate(shots):
        if time_s < shot.end - 1e-6:
            return i
    return max(0, len(shots) - 1)


class ThumbStore(Sequence[np.ndarray]):
    """Thumbnails by frame index, of which only the recent ones are kept: a dropped one raises KeyError."""

    def __init__(self) -> None:
        self._kept: dict[int, np.ndarray] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]  # no slices
        return self._kept[index + self._count if index < 0 else index]

    def append(self, thumb: np.ndarray) -> None:
        self._kept[self._count] = thumb
        self._count += 1

    def drop(self, index: int) -> None:
        self._kept.pop(index, None)

    @property
    def kept(self) -> int:
        return len(self._kept)


class ShotTracker:
    """Collects per-frame signals; cheap enough for every frame of a 1080p decode. Keeps a few numbers per
    frame and the thumbnails of the last few seconds (see the module doc)."""

    def __init__(self, fps: float, config: ShotConfig = ShotConfig()) -> None:
        self.config = config
        self.fps = fps if fps > 0 else 30.0
        self.times = array("d")
        self.thumbs = ThumbStore()
        self.diffs = array("d")
        self.means = array("d")
        self.empty = array("b")
        self.flashes: dict[int, bool] = {}  # is_flash verdict of each frame that passes the cut test
        self.blends: dict[tuple[int, int], bool] = {}  # _is_blend verdict of each short raised run
        self._prefix = array("d", [0.0])  # running sums of the differences, as np.cumsum makes them
        self._window = max(2, round(config.window_s * self.fps))  # find_cuts' window
        self._gradual_window = max(4, round(2.0 * self.fps))  # find_dissolves' window
        self._max_gradual = round(config.max_gradual_s * self.fps)
        self._horizon = max(self._window, self._gradual_window + RAISED_BATCH) + self._max_gradual + 8
        self._raised_next = 1  # the next frame whose raised test (find_dissolves) is due
        self._raised_start: int | None = None
        self._last_boundary = -1e9
        self._run_start: int | None = None
        self._run_thumb: np.ndarray | None = None

    def add(self, time_s: float, luma: np.ndarray) -> bool:
        """Record one frame (full-range luma, any size); True when it likely starts a new shot."""
        thumb = cv2.resize(luma, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
        diff = float(cv2.absdiff(thumb, self.thumbs[-1]).mean()) if self.thumbs else 0.0
        mean, std = cv2.meanStdDev(luma)
        dark = 1.0 - cv2.countNonZero(cv2.threshold(luma, self.config.black_luma, 255, cv2.THRESH_BINARY)[1]) / luma.size
        self.times.append(time_s)
        self.thumbs.append(thumb)
        self.diffs.append(diff)
        self._prefix.append(self._prefix[-1] + diff)
        self.means.append(float(mean[0, 0]))
        self.empty.append(dark >= self.config.black_ratio or float(std[0, 0]) <= self.config.flat_std)
        new_shot = self._causal_start()
        self._judge_transitions()
        return new_shot

    def _causal_start(self) -> bool:
        i, c = len(self.diffs) - 1, self.config
        if i == 0:
            return False
        before = self.diffs[max(1, i - self._window):i]
        base = float(np.mean(before)) if before else 0.0
        spike = self.diffs[i] >= c.cut_min_diff and self.diffs[i] >= c.cut_ratio * (base + 1.0)
        moving = self.diffs[i] >= c.gradual_min_step
        settled = False
        if moving and not spike:
            if self._run_start is None:
                self._run_start, self._run_thumb = i - 1, self.thumbs[i - 1]
        elif self._run_start is not None and self._run_thumb is not None:
            start, start_thumb = self._run_start, self._run_thumb
            self._run_start, self._run_thumb = None, None
            change = float(cv2.absdiff(self.thumbs[i], start_thumb).mean())
            settled = i - start >= 3 and change >= c.gradual_min_diff
        if (spike or settled) and self.times[i] - self._last_boundary >= c.min_shot_s:
            self._last_boundary = self.times[i]
            return True
        return False

    def _judge_transitions(self) -> None:
        """Run the flash and blend tests :func:`detect_shots` will need while their thumbnails are here
        (once the frames the cut and raised tests depend on have been seen), then drop the thumbnail
        that leaves the horizon."""
        newest, c = len(self.diffs) - 1, self.config
        i = newest - self._window  # its cut test (find_cuts) depends on frames up to `newest` only
        if i >= 1:
            lo, hi = max(1, i - self._window), i + self._window + 1
            base = (self._prefix[hi] - self._prefix[lo] - self.diffs[i]) / max(1, hi - lo - 1)  # _local_mean
            if self.diffs[i] >= c.cut_min_diff and self.diffs[i] >= c.cut_ratio * (base + 1.0) - 1e-9:
                self.flashes[i] = is_flash(self.thumbs, i, c)
        due = newest - self._gradual_window + 1  # the raised tests of frames before `due` depend on seen frames
        if due - self._raised_next >= RAISED_BATCH:
            self._raised_tests(self._raised_next, due)
            self._raised_next = due
        if newest >= self._horizon:
            self.thumbs.drop(newest - self._horizon)

    def _raised_tests(self, first: int, end: int) -> None:
        """find_dissolves' raised test for frames ``first`` to ``end - 1`` (same percentile over the same
        edge-padded window), and the blend test of each raised run that ends there."""
        c, w = self.config, self._gradual_window
        lo = first - w
        values = np.asarray(self.diffs[max(0, lo) : end + w])
        if lo < 0:  # the edge padding of find_dissolves
            values = np.concatenate([np.full(-lo, values[0]), values])
        bases = np.percentile(np.lib.stride_tricks.sliding_window_view(values, 2 * w + 1), 25, axis=1)
        for i, base in zip(range(first, end), bases, strict=True):
            d = self.diffs[i]
            if d >= c.gradual_min_step and d >= c.gradual_ratio * base:
                self._raised_start = i if self._raised_start is None else self._raised_start
            elif self._raised_start is not None:
                a, b, self._raised_start = self._raised_start - 1, i - 1, None
                if c.min_gradual_frames <= b - a <= self._max_gradual:
                    self.blends[(a, b)] = _is_blend(self.thumbs, a, b, c)

    def result(self, duration: float | None = None) -> ShotResult:
        end = duration if duration else (self.times[-1] + 1.0 / self.fps if self.times else 0.0)
        return detect_shots(self.times, self.thumbs, self.diffs, self.means, self.empty, self.fps,
                            end, self.config, flashes=self.flashes, blends=self.blends)


def _local_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the ``window`` values on each side of every index, the index itself excluded."""
    padded = np.concatenate([[0.0], np.cumsum(values)])
    n = len(values)
    idx = np.arange(n)
    lo, hi = np.maximum(1, idx - window), np.minimum(n, idx + window + 1)
    total = padded[hi] - padded[lo] - values
    count = np.maximum(1, hi - lo - 1)
    return total / count


def find_cuts(diffs: np.ndarray, fps: float, config: ShotConfig) -> list[int]:
    window = max(2, round(config.window_s * fps))
    base = _local_mean(diffs, window)
    candidates = np.flatnonzero((diffs >= config.cut_min_diff) & (diffs >= config.cut_ratio * (base + 1.0)))
    cuts: list[int] = []
    min_gap = max(1, round(config.min_shot_s * fps))
    for i in candidates:
        if i == 0:
            continue
        if cuts and i - cuts[-1] < min_gap:
            if diffs[i] > diffs[cuts[-1]]:
                cuts[-1] = int(i)
            continue
        cuts.append(int(i))
    return cuts


def is_flash(thumbs: Sequence[np.ndarray], cut: int, config: ShotConfig, reach: int = 2) -> bool:
    """The jump at ``cut`` is a flash (a frame or two of light, then the same picture again), not a new
    shot: a frame just before it matches a frame just after it."""
    before = range(max(0, cut - reach - 1), cut)
    after = range(cut, min(len(thumbs), cut + reach + 1))
    return any(q - p >= 2 and float(np.abs(thumbs[p].astype(np.float32) - thumbs[q]).mean()) < config.cut_min_diff
               for p in before for q in after)


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of consecutive True values."""
    padded = np.concatenate(([False], np.asarray(mask, bool), [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def find_fades(means: np.ndarray, empty: np.ndarray, config: ShotConfig) -> list[tuple[int, int, int]]:
    """(first frame of the fade-out, boundary frame, last frame of the fade-in) per fade through empty."""
    fades = []
    n = len(empty)
    for i, j in true_runs(empty):
        if i > 0 and j < n - 1:
            a = i
            while a > 0 and means[a - 1] > means[a] + config.fade_step:
                a -= 1
            b = j
            while b < n - 1 and means[b + 1] > means[b] + config.fade_step:
                b += 1
            if j - i + 1 >= config.min_fade_frames or a < i or b > j:  # not a one-frame flash
                fades.append((a, (i + j + 1) // 2, b))
    return fades


def _is_blend(thumbs: Sequence[np.ndarray], a: int, b: int, config: ShotConfig) -> bool:
    first, last = thumbs[a].astype(np.float32), thumbs[b].astype(np.float32)
    span = first - last
    change = float(np.abs(span).mean())
    if change < config.gradual_min_diff:
        return False
    norm = float((span * span).sum())
    alphas = []
    for k in range(a + 1, b):
        rel = thumbs[k].astype(np.float32) - last
        alpha = float((rel * span).sum()) / norm
        if float(np.abs(rel - alpha * span).mean()) > config.blend_tolerance * change:
            return False
        alphas.append(alpha)
    inner = sum(1 for x in alphas if 0.1 < x < 0.9)
    falling = all(y <= x + 0.15 for x, y in zip([1.0, *alphas], [*alphas, 0.0], strict=True))
    return inner >= 2 and falling


def find_dissolves(thumbs: Sequence[np.ndarray], diffs: np.ndarray, empty: np.ndarray, cuts: list[int],
                   fps: float, config: ShotConfig,
                   blends: Mapping[tuple[int, int], bool] | None = None) -> list[tuple[int, int]]:
    """(frame before, last frame) of every dissolve; ``blends`` holds _is_blend verdicts already made."""
    window = max(4, round(2.0 * fps))
    n = len(diffs)
    padded = np.pad(diffs, window, mode="edge")
    views = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1)
    base = np.empty(n)
    for first in range(0, n, 4096):  # blocks of rows: np.percentile copies the rows it is given
        base[first : first + 4096] = np.percentile(views[first : min(n, first + 4096)], 25, axis=1)
    raised = (diffs >= config.gradual_min_step) & (diffs >= config.gradual_ratio * base)
    raised[0] = False
    found = []
    max_len = round(config.max_gradual_s * fps)
    cut_set = set(cuts)
    for i, j in true_runs(raised):
        a, b = i - 1, j
        if (config.min_gradual_frames <= b - a <= max_len and not cut_set.intersection(range(i, j + 1))
                and not empty[a:b + 1].any()
                and (blends[(a, b)] if blends and (a, b) in blends else _is_blend(thumbs, a, b, config))):
            found.append((a, b))
    return found


def detect_shots(times: Sequence[float], thumbs: Sequence[np.ndarray], diffs: Sequence[float],
                 means: Sequence[float], empty: Sequence[bool] | Sequence[int], fps: float, duration: float,
                 config: ShotConfig = ShotConfig(), flashes: Mapping[int, bool] | None = None,
                 blends: Mapping[tuple[int, int], bool] | None = None) -> ShotResult:
    """Shots and transitions from the per-frame signals. ``flashes`` and ``blends`` are verdicts of
    :func:`is_flash` and :func:`_is_blend` already made (by :class:`ShotTracker`, which no longer holds
    the thumbnails they read); any other test reads ``thumbs``."""
    if not times:
        return ShotResult([], [], duration)
    d, m, e = np.asarray(diffs, np.float64), np.asarray(means, np.float64), np.asarray(empty, bool)
    transitions: list[tuple[int, int, int, str]] = []  # first frame, boundary frame, last frame, kind
    for a, mid, b in find_fades(m, e, config):
        transitions.append((a, mid, b, FADE))
    cuts = [c for c in find_cuts(d, fps, config)
            if not (flashes[c] if flashes and c in flashes else is_flash(thumbs, c, config))]
    for a, b in find_dissolves(thumbs, d, e, cuts, fps, config, blends):
        if not any(t[0] - 1 <= b and a <= t[2] + 1 for t in transitions):
            transitions.append((a, (a + b + 1) // 2, b, DISSOLVE))
    for c in cuts:
        if not any(t[0] - 1 <= c <= t[2] + 1 for t in transitions):
            transitions.append((c - 1, c, c, CUT))
    transitions.sort(key=lambda t: t[1])
    shots: list[Shot] = []
    start, kind = times[0], START
    for _, boundary, _, t_kind in transitions:
        shots.append(Shot(round(start, 3), round(times[boundary], 3), kind))
        start, kind = times[boundary], t_kind
    shots.append(Shot(round(start, 3), round(max(duration, start), 3), kind))
    found = [Transition(round(times[a] if k != CUT else times[mid], 3), round(times[b], 3), k)
             for a, mid, b, k in transitions]
    return ShotResult(shots, found, max(duration, times[-1]))
