"""Scanning the watched folder (used by the Dagster sensor and the CLI): new, complete video files, and
what was skipped and why. Sub-folders are walked; keys come from paths relative to the folder.

A catalogue of a million files cannot be listed at every tick, so a scan can be incremental: a folder
whose modification time has not moved since a scan found it *clean* (every video in it already a
partition, nothing still being written) is not listed again; its sub-folders are taken from the same
record. Adding, removing or renaming an entry moves a folder's modification time; a file rewritten in
place does not (the sensor's replaced check stats registered files for that). Because some filesystems
(FUSE mounts of object stores) do not keep folder times, a clean record is trusted for at most
``relist_seconds``, after which the folder is listed again."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tiktok_assets.lib.catalogue.keys import is_video_file, partition_key_for

# A folder changed this recently may still change within the same tick of its clock (a file created
# just after it was listed would leave its time as it was): it is not recorded as clean.
RACY_SECONDS = 2.0


@dataclass(frozen=True)
class FoundVideo:
    key: str
    path: str  # absolute
    size: int
    mtime: float


@dataclass(frozen=True)
class FolderRecord:
    """A folder the last scan visited. Clean (``mtime_ns`` >= 0) when every video in it was a partition
    at ``listed_at``: valid while its modification time is still ``mtime_ns``. A record with
    ``mtime_ns`` -1 is listed again at the next scan (a file was new, still being written, or the folder
    changed too recently to trust its time)."""

    mtime_ns: int
    listed_at: float


UNSETTLED = -1


@dataclass
class Scan:
    new: list[FoundVideo] = field(default_factory=list)  # complete files without a partition yet
    growing: int = 0  # written less than the settle time ago: left for a later tick
    skipped: list[str] = field(default_factory=list)  # "path: why" (loops, FIFOs, folders named .mp4)
    listed: int = 0  # folders listed (the others were clean and unchanged)
    folders: dict[str, FolderRecord] = field(default_factory=dict)  # every folder visited: for the next scan


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


def _listing(folder: str) -> tuple[list[str], list[str]]:
    """Paths of the visible entries named like videos directly in ``folder`` (a folder named like a
    video included: it is reported, not walked) and its visible sub-folders (links to folders are not
    walked), each in name order."""
    videos, below = [], []
    with os.scandir(folder) as listing:
        for entry in sorted(listing, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if is_video_file(entry.name):
                videos.append(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                below.append(entry.path)
    return videos, below


def _children(folders: Mapping[str, FolderRecord]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for path in sorted(folders):
        children.setdefault(os.path.dirname(path), []).append(path)
    return children


def scan_folder(
    folder: Path,
    settle_seconds: float,
    known_in: Callable[[list[str]], Mapping[str, str]] = lambda folders: {},
    previous: Mapping[str, FolderRecord] | None = None,
    relist_seconds: float = 600.0,
    now: float | None = None,
) -> Scan:
    """Visible video files under ``folder`` that are not known yet (sub-folders included, links not
    followed into folders). ``known_in(folders)`` maps the absolute path of each file directly in those
    folders that is a partition already to its key, so only new files are stat-ed and have their key
    computed. A file is complete when its last write is at least ``settle_seconds`` old. ``previous`` is the
    last scan's ``Scan.folders``: its clean folders are not listed while unchanged (see the module's text)."""
    scan = Scan()
    if not folder.is_dir():
        return scan
    now = time.time() if now is None else now
    root = os.path.abspath(folder)
    previous = previous or {}
    children = _children(previous)
    folders, listed = [root], []
    while folders:  # the walk: unchanged clean folders are stat-ed only
        path = folders.pop()
        try:
            mtime_ns = os.stat(path, follow_symlinks=False).st_mtime_ns
        except OSError:
            continue  # removed since its parent was listed
        record = previous.get(path)
        if record is not None and record.mtime_ns == mtime_ns and now - record.listed_at < relist_seconds:
            scan.folders[path] = record
            folders += reversed(children.get(path, []))
            continue
        videos, below = _listing(path)
        listed.append((path, mtime_ns, videos))
        folders += reversed(below)  # depth first, in name order
    scan.listed = len(listed)
    known = known_in([path for path, _, videos in listed if videos])  # a folder of folders asks nothing
    for path, mtime_ns, videos in listed:
        pending = False
        for video in videos:
            if video in known:
                continue
            info, why = classify_path(video)
            if info is None:
                scan.skipped.append(f"{os.path.relpath(video, root)}: {why}")
            elif now - info.st_mtime < settle_seconds:
                scan.growing += 1
                pending = True
            else:  # empty files too: they get a row with their error
                scan.new.append(FoundVideo(partition_key_for(video, root), video, info.st_size, info.st_mtime))
                pending = True
        settled = not pending and now - mtime_ns / 1e9 >= RACY_SECONDS
        scan.folders[path] = FolderRecord(mtime_ns if settled else UNSETTLED, now)
    scan.new.sort(key=lambda v: v.path)
    return scan
