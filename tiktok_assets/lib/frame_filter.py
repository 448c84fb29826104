"""Frame filtering on small grayscale copies: black frames, blurred frames, near-duplicates.

- black: mean luma <= ``black_mean`` and 95th percentile <= ``black_p95`` (0-255 scale);
- blurred: the no-reference blur metric of Crete-Roffet et al. (``image_metrics.blur_effect``:
  0 sharp, 1 fully blurred, largely independent of content) above ``blur_absolute`` AND more than
  ``blur_margin`` above the video's own reference (25th percentile over its non-black frames, i.e.
  its sharper frames). A soft but steady clip therefore keeps its frames: only frames clearly
  blurrier than the rest of the same video are dropped;
- near-duplicate: SSIM against the last kept frame above ``ssim_threshold``.
Frames are judged in time order; every dropped frame keeps its reason and score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tiktok_assets.lib.frames import CandidateFrame
from tiktok_assets.lib.image_metrics import blur_effect, ssim

ANALYSIS_WIDTH = 270  # sharpness and brightness are measured at this width, whatever the source
SSIM_WIDTH = 135

BLACK = "black"
BLUR = "blur"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class FilterConfig:
    black_mean: float = 18.0
    black_p95: float = 40.0
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


@dataclass
class FilterResult:
    kept: list[FrameVerdict]
    dropped: list[FrameVerdict]
    reference_blur: float
    blur_threshold: float
    config: FilterConfig
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
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
            config=FilterConfig(**data["config"]),
            counts=data["counts"],
        )


def load_analysis_gray(path: str | Path) -> np.ndarray:
    """A small grayscale copy of a JPEG: libjpeg decodes at 1/4 scale, then resize to a fixed width."""
    image = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if image is None:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"cannot read frame {path}")
    h, w = image.shape
    if w != ANALYSIS_WIDTH:
        height = max(8, int(round(h * ANALYSIS_WIDTH / w)))
        image = cv2.resize(image, (ANALYSIS_WIDTH, height), interpolation=cv2.INTER_AREA)
    return image


def sharpness(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def is_black(gray: np.ndarray, config: FilterConfig) -> tuple[bool, float]:
    mean = float(gray.mean())
    return mean <= config.black_mean and float(np.percentile(gray, 95)) <= config.black_p95, mean


def filter_frames(
    frames: list[CandidateFrame], frames_dir: str | Path, config: FilterConfig = FilterConfig()
) -> FilterResult:
    frames_dir = Path(frames_dir)
    ordered = sorted(frames, key=lambda f: f.time)
    grays = [load_analysis_gray(frames_dir / f.file) for f in ordered]
    black_flags = [is_black(g, config)[0] for g in grays]
    verdicts = [
        FrameVerdict(time=f.time, kinds=list(f.kinds), file=f.file, brightness=round(float(g.mean()), 2),
                     sharpness=round(sharpness(g), 2),
                     blur=1.0 if black else round(float(blur_effect(g)), 4))
        for f, g, black in zip(ordered, grays, black_flags, strict=True)
    ]
    visible = [v.blur for v, black in zip(verdicts, black_flags, strict=True) if not black]
    reference = float(np.percentile(visible, 25)) if visible else 0.0
    blur_threshold = max(config.blur_absolute, reference + config.blur_margin)

    kept: list[FrameVerdict] = []
    dropped: list[FrameVerdict] = []
    last_small: np.ndarray | None = None
    for verdict, gray, black in zip(verdicts, grays, black_flags, strict=True):
        if black:
            verdict.reason, verdict.score = BLACK, verdict.brightness
        elif verdict.blur > blur_threshold:
            verdict.reason, verdict.score = BLUR, verdict.blur
        else:
            small = cv2.resize(gray, (SSIM_WIDTH, max(8, gray.shape[0] * SSIM_WIDTH // gray.shape[1])),
                               interpolation=cv2.INTER_AREA)
            if last_small is not None:
                if small.shape != last_small.shape:
                    small = cv2.resize(small, (last_small.shape[1], last_small.shape[0]), interpolation=cv2.INTER_AREA)
                verdict.ssim_to_last_kept = round(ssim(small, last_small), 4)
                if verdict.ssim_to_last_kept > config.ssim_threshold:
                    verdict.reason, verdict.score = DUPLICATE, verdict.ssim_to_last_kept
            if verdict.reason is None:
                last_small = small
        (dropped if verdict.reason else kept).append(verdict)
    counts = {"candidates": len(verdicts), "kept": len(kept)}
    for reason in (BLACK, BLUR, DUPLICATE):
        counts[f"dropped_{reason}"] = sum(1 for v in dropped if v.reason == reason)
    return FilterResult(kept, dropped, round(reference, 4), round(blur_threshold, 4), config, counts)
