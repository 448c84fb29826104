"""A small contact sheet (grid of thumbnails) for showing frames in the Dagster UI.

Bounded: at most ``max_frames`` thumbnails (evenly spread over the frames given), so one partition's
metadata stays a few tens of kB however long the video (the UI reads the event log on every page)."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np


def contact_sheet_jpeg(paths: list[Path], thumb_width: int = 80, columns: int = 6, quality: int = 60,
                       max_frames: int = 18) -> bytes:
    if len(paths) > max_frames:
        paths = [paths[round(i * (len(paths) - 1) / (max_frames - 1))] for i in range(max_frames)]
    thumbs = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)
        if image is None:
            continue
        h = max(1, round(image.shape[0] * thumb_width / image.shape[1]))  # a 4097x3 sliver is 1 px high
        thumbs.append(cv2.resize(image, (thumb_width, h), interpolation=cv2.INTER_AREA))
    if not thumbs:
        return b""
    cell_h = max(t.shape[0] for t in thumbs)
    rows = (len(thumbs) + columns - 1) // columns
    sheet = np.full((rows * cell_h, min(columns, len(thumbs)) * thumb_width, 3), 32, dtype=np.uint8)
    for i, thumb in enumerate(thumbs):
        r, c = divmod(i, columns)
        sheet[r * cell_h : r * cell_h + thumb.shape[0], c * thumb_width : (c + 1) * thumb_width] = thumb
    ok, buf = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else b""


def contact_sheet_markdown(paths: list[Path], title: str = "frames") -> str:
    data = contact_sheet_jpeg(paths)
    if not data:
        return f"_no {title}_"
    return f"![{title}](data:image/jpeg;base64,{base64.b64encode(data).decode('ascii')})"
