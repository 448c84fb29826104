"""Partition keys derived from video file names.

A key is stable (same file name, same key), uses only ``[a-z0-9_-]`` and is collision-free: when the
file name does not map one-to-one onto a clean key (unicode, spaces, quotes, upper case, another
extension) a short hash of the exact file name is appended.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv"})
MAX_SLUG_LENGTH = 60
_CLEAN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HASHED = re.compile(r"-h[0-9a-f]{8}$")


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9_-]+", "_", ascii_text.lower()).strip("_-")
    return slug[:MAX_SLUG_LENGTH].rstrip("_-") or "video"


def partition_key_for(path: str | Path) -> str:
    """Return the partition key for a video file (only its file name matters)."""
    name = Path(path).name
    stem, ext = Path(name).stem, Path(name).suffix
    slug = _slug(stem)
    lossless = slug == stem and ext == ".mp4" and _CLEAN.match(stem) and not _HASHED.search(stem)
    if lossless:
        return slug
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-h{digest}"


def is_video_file(path: str | Path) -> bool:
    """A visible file with a video extension."""
    p = Path(path)
    return not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS
