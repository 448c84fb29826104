"""Scanning the watched folder (used by the Dagster sensor): new, complete video files, known ones,
and what was skipped and why. Sub-folders are walked; keys come from paths relative to the folder."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tiktok_assets.lib.keys import is_video_file, partition_key_for


@dataclass(frozen=True)
class FoundVideo:
    key: str
    path: str  # absolute
    size: int
    mtime: float


@dataclass
class Scan:
    new: list[FoundVideo] = field(default_factory=list)  # complete files without a partition yet
    known: list[FoundVideo] = field(default_factory=list)  # files whose key is a partition already
    growing: int = 0  # written less than the settle time ago: left for a later tick
    skipped: list[str] = field(default_factory=list)  # "path: why" (loops, FIFOs, folders named .mp4)


def classify_path(path: str | Path) -> tuple[os.stat_result | None, str | None]:
    """The file's stat (following a link), or why it is not a video file to read."""
    try:
        info = os.stat(path)
    except OSError as exc:  # a link loop, a dangling link
        return None, f"unreadable link ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode):
        return None, "a folder with a video extension"
    if not stat.S_ISREG(info.st_mode):
        return None, "not a regular file (FIFO, socket or device)"
    return info, None


def _video_entries(root: str) -> Iterator[str]:
    """Paths of the visible entries named like videos under ``root``, sub-folders walked (hidden ones
    and links to folders are not), in name order per folder. A folder named like a video is yielded
    (reported, not walked)."""
    folders = [root]
    while folders:
        with os.scandir(folders.pop()) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        below = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if is_video_file(entry.name):
                yield entry.path
            elif entry.is_dir(follow_symlinks=False):
                below.append(entry.path)
        folders += reversed(below)  # depth first, in name order


def scan_folder(folder: Path, known: Mapping[str, str], settle_seconds: float, now: float | None = None) -> Scan:
    """Visible video files under ``folder`` (sub-folders included, links not followed into folders).
    ``known`` maps the absolute path of each file that is a partition already to its key (from the
    registry), so only new files have their key computed. A file is complete when its last write is
    at least ``settle_seconds`` old."""
    scan = Scan()
    if not folder.is_dir():
        return scan
    now = time.time() if now is None else now
    root = os.path.abspath(folder)
    for path in _video_entries(root):
        info, why = classify_path(path)
        if info is None:
            scan.skipped.append(f"{os.path.relpath(path, root)}: {why}")
            continue
        key = known.get(path)
        if key is not None:
            scan.known.append(FoundVideo(key, path, info.st_size, info.st_mtime))
        elif now - info.st_mtime < settle_seconds:
            scan.growing += 1
        else:  # empty files too: they get a row with their error
            scan.new.append(FoundVideo(partition_key_for(path, root), path, info.st_size, info.st_mtime))
    scan.new.sort(key=lambda v: v.path)
    return scan
