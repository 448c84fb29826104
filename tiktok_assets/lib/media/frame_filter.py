"""Frame filtering on small grayscale copies of the content area: black frames, blurred frames,
near-duplicates.

All measures use the content box (the picture inside letterbox / pillarbox bars, ``lib/media/bars.py``)
when one is given; the saved frames stay full size.
- black means empty (FFmpeg blackdetect semantics): at least ``black_ratio`` of the pixels have luma
  <= ``black_luma`` (0-255, full range: JPEG luma), or the picture has no structure at all (standard
  deviation <= ``black_flat_std``). A low mean never makes a frame black: a subject on a black
  backdrop, or a few bright lights at night, is kept;
- blurred: the no-reference blur metric of Crete-Roffet et al. (``image_metrics.blur_effect``:
  0 sharp, 1 fully blurred, largely independent of content) above ``blur_absolute`` AND more than
  ``blur_margin`` above the video's own reference (25th percentile over its non-black frames, i.e.
  its sharper frames). A soft but steady clip therefore keeps its frames: only frames clearly
  blurrier than the rest of the same video are dropped;
- near-duplicate: SSIM against the last kept frame above ``ssim_threshold``, except for the first
  frame of a shot (``lib/media/shots.py``) that is neither black nor blurred: every such shot keeps a frame.
Frames are judged in time order; every dropped frame keeps its reason and score.
Memory does not grow with the number of frames: a first pass keeps each frame's measures (the blur
threshold needs all of them) and the SSIM-size copies of the first frames, up to ``SSIM_CACHE_BYTES``;
the duplicate pass reads the frames beyond those again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.media.bars import ContentBox
from tiktok_assets.lib.media.frames import CandidateFrame
from tiktok_assets.lib.media.image_metrics import blur_effect, ssim
from tiktok_assets.lib.media.shots import Shot, shot_index

ANALYSIS_WIDTH = 270  # sharpness and brightness are measured at this width, whatever the source
SSIM_WIDTH = 135
SSIM_CACHE_BYTES = 8 * 2**20  # SSIM-size copies kept between the passes (about 250 vertical frames)

BLACK = "black"
BLUR = "blur"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class FilterConfig:
    black_luma: int = 32  # a pixel is dark at or below this luma (0-255)
    black_ratio: float = 0.98  # a frame is black when at least this share of its pixels is dark
    black_flat_std: float = 3.0  # ...or when its luma spread is at most this (no structure at all)
    blur_absolute: float = 0.65
    blur_margin: float = 0.25
    ssim_threshold: float = 0.8


@dataclass
class FrameVerdict:
    time: float
    kinds: list[str]
    file: str
    brightness: float
    sharpness: float  # variance of the Laplacian, for information
    blur: float  # blur_effect, 0 (sharp) .. 1 (blurred)
    ssim_to_last_kept: float | None = None
    reason: str | None = None  # None when kept
    score: float | None = None  # the value that decided the drop
    dark_ratio: float = 0.0  # share of dark pixels in the content area
    shot: int | None = None  # index into shots.json when shots were given


@dataclass
class FilterResult:
    kept: list[FrameVerdict]
    dropped: list[FrameVerdict]
    reference_blur: float
    blur_threshold: float
    config: FilterConfig
    counts: dict[str, int] = field(default_factory=dict)
    content_box: dict[str, int] | None = None

    def to_json(self) -> dict:
        return {
            "content_box": self.content_box,
            "kept": [asdict(v) for v in self.kept],
            "dropped": [asdict(v) for v in self.dropped],
            "reference_blur": self.reference_blur,
            "blur_threshold": self.blur_threshold,
            "config": asdict(self.config),
            "counts": self.counts,
        }

    @classmethod
    def from_json(cls, data: dict) -> FilterResult:
        """The reader of ``filtered_frames.json`` (what :meth:`to_json` wrote)."""
        return cls(
            kept=[FrameVerdict(**v) for v in data["kept"]],
            dropped=[FrameVerdict(**v) for v in data["dropped"]],
            reference_blur=data["reference_blur"],
            blur_threshold=data["blur_threshold"],
            config=FilterConfig(**{f.name: data["config"][f.name] for f in fields(FilterConfig)
                                   if f.name in data["config"]}),
            counts=data["counts"],
            content_box=data.get("content_box"),
        )


def load_analysis_gray(path: str | Path, box: ContentBox | None = None) -> np.ndarray:
    """A small grayscale copy of a JPEG's content area: libjpeg decodes at 1/4 scale, then the content
    box is cut out and resized to a fixed width."""
    image = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if image is None:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"cannot read frame {path}")
    if box is not None:
        image = box.crop(image)
    h, w = image.shape
    if w != ANALYSIS_WIDTH:
        height = max(8, round(h * ANALYSIS_WIDTH / w))
        image = cv2.resize(image, (ANALYSIS_WIDTH, height), interpolation=cv2.INTER_AREA)
    return image


def sharpness(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def dark_ratio(gray: np.ndarray, luma: int) -> float:
    return 1.0 - cv2.countNonZero(cv2.threshold(gray, luma, 255, cv2.THRESH_BINARY)[1]) / gray.size


def is_black(gray: np.ndarray, config: FilterConfig) -> tuple[bool, float]:
    """(black?, share of dark pixels): almost all pixels dark, or no structure at all."""
    ratio = dark_ratio(gray, config.black_luma)
    flat = float(cv2.meanStdDev(gray)[1][0, 0]) <= config.black_flat_std
    return ratio >= config.black_ratio or flat, ratio


def _first_of_shot(verdicts: list[FrameVerdict], eligible: list[bool]) -> set[int]:
    """Positions of the first eligible (neither black nor blurred) frame of every shot."""
    seen: set[int | None] = set()
    firsts = set()
    for pos, (verdict, ok) in enumerate(zip(verdicts, eligible, strict=True)):
        if ok and verdict.shot is not None and verdict.shot not in seen:
            seen.add(verdict.shot)
            firsts.add(pos)
    return firsts


def _ssim_size(gray: np.ndarray) -> np.ndarray:
    return cv2.resize(gray, (SSIM_WIDTH, max(8, gray.shape[0] * SSIM_WIDTH // gray.shape[1])),
                      interpolation=cv2.INTER_AREA)


def _shaped_like(small: np.ndarray, like: np.ndarray | None) -> np.ndarray:
    if like is not None and small.shape != like.shape:
        small = cv2.resize(small, (like.shape[1], like.shape[0]), interpolation=cv2.INTER_AREA)
    return small


def filter_frames(
    frames: list[CandidateFrame],
    frames_dir: str | Path,
    config: FilterConfig = FilterConfig(),
    content_box: ContentBox | None = None,
    shots: list[Shot] | None = None,
) -> FilterResult:
    frames_dir = Path(frames_dir)
    ordered = sorted(frames, key=lambda f: f.time)
    verdicts: list[FrameVerdict] = []
    blacks: list[tuple[bool, float]] = []
    ssim_copies: dict[int, np.ndarray] = {}  # position -> SSIM-size copy, within SSIM_CACHE_BYTES
    cached = 0
    for pos, f in enumerate(ordered):  # one analysis copy at a time: its measures are kept, not the copy
        gray = load_analysis_gray(frames_dir / f.file, content_box)
        black, ratio = is_black(gray, config)
        blacks.append((black, ratio))
        if not black and cached < SSIM_CACHE_BYTES:
            ssim_copies[pos] = _ssim_size(gray)
            cached += ssim_copies[pos].nbytes
        verdicts.append(FrameVerdict(
            time=f.time, kinds=list(f.kinds), file=f.file, brightness=round(float(gray.mean()), 2),
            sharpness=round(sharpness(gray), 2), blur=1.0 if black else round(float(blur_effect(gray)), 4),
            dark_ratio=round(ratio, 4), shot=shot_index(shots, f.time) if shots else None))
    visible = [v.blur for v, (black, _) in zip(verdicts, blacks, strict=True) if not black]
    reference = float(np.percentile(visible, 25)) if visible else 0.0
    blur_threshold = max(config.blur_absolute, reference + config.blur_margin)
    eligible = [not black and v.blur <= blur_threshold for v, (black, _) in zip(verdicts, blacks, strict=True)]
    protected = _first_of_shot(verdicts, eligible)

    kept: list[FrameVerdict] = []
    dropped: list[FrameVerdict] = []
    last_small: np.ndarray | None = None
    for pos, (verdict, (black, ratio)) in enumerate(zip(verdicts, blacks, strict=True)):
        if black:
            verdict.reason, verdict.score = BLACK, round(ratio, 4)
        elif verdict.blur > blur_threshold:
            verdict.reason, verdict.score = BLUR, verdict.blur
        else:
            small = ssim_copies.pop(pos, None)
            if small is None:  # beyond the cache: read again
                small = _ssim_size(load_analysis_gray(frames_dir / verdict.file, content_box))
            small = _shaped_like(small, last_small)
            if last_small is not None:
                verdict.ssim_to_last_kept = round(ssim(small, last_small), 4)
                if verdict.ssim_to_last_kept > config.ssim_threshold and pos not in protected:
                    verdict.reason, verdict.score = DUPLICATE, verdict.ssim_to_last_kept
            if verdict.reason is None:
                last_small = small
        (dropped if verdict.reason else kept).append(verdict)
    counts = {"candidates": len(verdicts), "kept": len(kept)}
    for reason in (BLACK, BLUR, DUPLICATE):
        counts[f"dropped_{reason}"] = sum(1 for v in dropped if v.reason == reason)
    box = content_box.to_json() if content_box is not None else None
    return FilterResult(kept, dropped, round(reference, 4), round(blur_threshold, 4), config, counts, box)


def read_filter_result(path: Path) -> FilterResult:
    """``filtered_frames.json`` as written by the filtered_frames stage: the one reader the stages share."""
    return FilterResult.from_json(atomic.read_json(path))
