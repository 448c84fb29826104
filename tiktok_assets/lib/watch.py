"""Finding new, complete video files in a watched folder (used by the Dagster sensor)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from tiktok_assets.lib.keys import is_video_file, partition_key_for


@dataclass(frozen=True)
class NewVideo:
    key: str
    path: Path


def find_new_videos(folder: Path, known_keys: set[str], settle_seconds: float, now: float | None = None
                    ) -> tuple[list[NewVideo], int]:
    """Visible video files not yet known, whose size is non-zero and whose last write is at least
    ``settle_seconds`` old (so files still being copied are left for a later tick).

    Returns the new videos (sorted by name) and how many were held back as still growing.
    """
    if not folder.is_dir():
        return [], 0
    now = time.time() if now is None else now
    new: list[NewVideo] = []
    growing = 0
    seen: set[str] = set()
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.is_file() or not is_video_file(entry.name):
                continue
            key = partition_key_for(entry.name)
            if key in known_keys or key in seen:
                continue
            stat = entry.stat()
            if stat.st_size == 0 or now - stat.st_mtime < settle_seconds:
                growing += 1
                continue
            seen.add(key)
            new.append(NewVideo(key, Path(entry.path)))
    return sorted(new, key=lambda v: v.path.name), growing
