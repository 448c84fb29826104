"""Letterbox / pillarbox bars, found once per video from a few decoded frames (like FFmpeg cropdetect).

A row (column) is part of a bar when, in EVERY sampled frame, it is dark (mean luma <= ``luma``) and
uniform (standard deviation <= ``std``). Bars grow inwards from the picture's edges only. A bar is
accepted only where the picture starts with a straight edge: in at least one sample, at least
``edge_fill`` of the pixels just inside the edge are not dark. A subject on a black backdrop therefore
does not turn its backdrop into "bars": its outline is not a straight, full-width edge.
Luma is full range (0-255) here; rows are measured at full vertical resolution (columns subsampled)
and columns at full horizontal resolution, so the box is exact to the pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EDGE_ROWS = 3  # rows/columns just inside a bar that must show the straight edge
SUBSAMPLE = 8  # the other axis is subsampled by this much (statistics only)


@dataclass(frozen=True)
class BarConfig:
    luma: float = 24.0  # full-range luma a bar's rows never exceed on average
    std: float = 8.0  # ...nor in spread (bars are flat)
    edge_fill: float = 0.5
    min_bar: int = 4  # thinner bars (pixels) are ignored


@dataclass(frozen=True)
class ContentBox:
    """The picture inside the bars, in display pixels of a ``frame_w`` x ``frame_h`` frame."""

    x: int
    y: int
    w: int
    h: int
    frame_w: int
    frame_h: int

    def as_string(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"

    def to_json(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h, "frame_w": self.frame_w, "frame_h": self.frame_h}

    @property
    def is_full(self) -> bool:
        return (self.x, self.y, self.w, self.h) == (0, 0, self.frame_w, self.frame_h)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The content area of ``image`` (any size: the box is scaled to it)."""
        if self.is_full:
            return image
        sy, sx = image.shape[0] / self.frame_h, image.shape[1] / self.frame_w
        y0, y1 = round(self.y * sy), round((self.y + self.h) * sy)
        x0, x1 = round(self.x * sx), round((self.x + self.w) * sx)
        return image[y0:max(y1, y0 + 8), x0:max(x1, x0 + 8)]

    def rotated(self, clockwise_degrees: int) -> ContentBox:
        """The same box once the frame is rotated clockwise for display."""
        x, y, w, h, fw, fh = self.x, self.y, self.w, self.h, self.frame_w, self.frame_h
        if clockwise_degrees == 90:
            return ContentBox(fh - y - h, x, h, w, fh, fw)
        if clockwise_degrees == 180:
            return ContentBox(fw - x - w, fh - y - h, w, h, fw, fh)
        if clockwise_degrees == 270:
            return ContentBox(y, fw - x - w, h, w, fh, fw)
        return self

    @classmethod
    def from_json(cls, data: dict[str, int]) -> ContentBox:
        return cls(**data)


def _profile(lines: np.ndarray, luma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line (row of ``lines``): mean, standard deviation and share of pixels above ``luma``."""
    values = lines.astype(np.float32)
    return values.mean(axis=1), values.std(axis=1), (values > luma).mean(axis=1)


class BarDetector:
    """Accumulates row and column statistics over sampled frames (full-range luma, coded orientation)."""

    def __init__(self, config: BarConfig = BarConfig()) -> None:
        self.config = config
        self.samples = 0
        self._rows: list[np.ndarray] | None = None  # max mean, max std, max fill
        self._cols: list[np.ndarray] | None = None

    def add(self, luma: np.ndarray) -> None:
        rows = _profile(luma[:, ::SUBSAMPLE], self.config.luma)
        cols = _profile(luma[::SUBSAMPLE, :].T, self.config.luma)
        if self._rows is None or self._cols is None or self._rows[0].shape != rows[0].shape:
            self._rows, self._cols = list(rows), list(cols)
        else:
            self._rows = [np.maximum(a, b) for a, b in zip(self._rows, rows, strict=True)]
            self._cols = [np.maximum(a, b) for a, b in zip(self._cols, cols, strict=True)]
        self.samples += 1

    def _span(self, stats: list[np.ndarray]) -> tuple[int, int]:
        """First and one-past-last content line along one axis."""
        mean, std, fill = stats
        bar = (mean <= self.config.luma) & (std <= self.config.std)
        n = len(bar)

        def inset(flags: np.ndarray, fills: np.ndarray) -> int:
            k = int(np.argmin(flags)) if not flags.all() else len(flags)
            if k < self.config.min_bar or k >= len(flags):
                return 0
            return k if float(fills[k:k + EDGE_ROWS].max()) >= self.config.edge_fill else 0

        start = inset(bar, fill)
        end = n - inset(bar[::-1], fill[::-1])
        return (start, end) if end - start >= n // 8 else (0, n)

    def content_box(self, width: int, height: int) -> ContentBox:
        """The content rectangle in coded pixels (the whole frame when nothing was sampled)."""
        if self._rows is None or self._cols is None:
            return ContentBox(0, 0, width, height, width, height)
        y0, y1 = self._span(self._rows)
        x0, x1 = self._span(self._cols)
        return ContentBox(x0, y0, x1 - x0, y1 - y0, width, height)
