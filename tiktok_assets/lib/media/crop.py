"""What the models see of a saved frame: its content area inside letterbox / pillarbox bars.

Saved frames stay full-size; ``candidate_frames`` stores the video's :class:`ContentBox`. The model
wrappers accept PIL images as well as paths, so a video with bars hands them :class:`ContentFrames`
(opened and cropped lazily, one batch at a time, as the wrappers slice their input) and a video without
bars hands them the paths unchanged (no extra work). Boxes a model finds in the crop are mapped back to
the full frame with :func:`box_to_frame`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import overload

import numpy as np
from PIL import Image

from tiktok_assets.lib.media.bars import ContentBox
from tiktok_assets.lib.models.clip import load_image

BoxXYXY = tuple[float, float, float, float]


def has_bars(box: ContentBox | None) -> bool:
    return box is not None and not box.is_full


def open_image(path: str | Path | Image.Image, box: ContentBox | None = None) -> Image.Image:
    """The RGB image at ``path``, cropped to ``box`` (scaled to the image's size) when the video has bars."""
    image = load_image(path)
    if not has_bars(box):
        return image
    assert box is not None
    return Image.fromarray(np.ascontiguousarray(box.crop(np.asarray(image))))


class ContentFrames(Sequence[Image.Image]):
    """Frame files seen through ``box``: each item is opened and cropped when it is asked for."""

    def __init__(self, paths: Sequence[str | Path], box: ContentBox) -> None:
        self.paths = list(paths)
        self.box = box

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> Image.Image: ...
    @overload
    def __getitem__(self, index: slice) -> list[Image.Image]: ...
    def __getitem__(self, index: int | slice) -> Image.Image | list[Image.Image]:
        if isinstance(index, slice):
            return [open_image(p, self.box) for p in self.paths[index]]
        return open_image(self.paths[index], self.box)


def model_inputs(paths: Sequence[str | Path], box: ContentBox | None) -> Sequence[str | Path] | ContentFrames:
    """What to hand a model for ``paths``: the content areas when ``box`` has bars, else the paths."""
    return ContentFrames(paths, box) if box is not None and has_bars(box) else list(paths)


def box_to_frame(xyxy: BoxXYXY, box: ContentBox | None) -> BoxXYXY:
    """A box normalised to the content area ``box`` -> normalised to the full frame."""
    if box is None or not has_bars(box):
        return xyxy
    x1, y1, x2, y2 = xyxy
    fw, fh = box.frame_w, box.frame_h
    return ((x1 * box.w + box.x) / fw, (y1 * box.h + box.y) / fh,
            (x2 * box.w + box.x) / fw, (y2 * box.h + box.y) / fh)
