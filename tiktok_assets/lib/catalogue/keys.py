"""Partition keys: one per video file, derived from its path relative to the watched folder.

A key is stable (same relative path, same key), uses only ``[a-z0-9_-]``, is at most
``MAX_KEY_LENGTH`` characters, and is collision-free: sub-folders join with ``__``, and whenever the
relative path does not map one-to-one onto a clean key (unicode, spaces, upper case, another
extension, a ``__`` of its own, a long name) a short hash of the exact relative path is appended.
Every key that reaches the pipeline (CLI, sensor, UI, API) is checked with :func:`validate_key`.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path, PurePath

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".mov", ".m4v", ".3gp", ".webm", ".mkv", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg"}
)
MAX_SLUG_LENGTH = 60
MAX_KEY_LENGTH = 100
SEPARATOR = "__"  # between sub-folder and file parts of a key
_CLEAN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HASHED = re.compile(r"-h[0-9a-f]{8}$")
KEY_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_KEY_LENGTH - 1}}}$")


class InvalidKeyError(ValueError):
    """A partition key that is not one this project makes (it could name a path outside the data)."""


def validate_key(key: str) -> str:
    """``key`` when it is a well-formed partition key; InvalidKeyError otherwise."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise InvalidKeyError(
            f"invalid partition key {key!r}: keys are 1-{MAX_KEY_LENGTH} characters of [a-z0-9_-] starting with a "
            f"letter or digit (register videos with `tiktok-assets add` or the sensor)"
        )
    return key


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9_-]+", "_", ascii_text.lower()).strip("_-")
    return slug[:MAX_SLUG_LENGTH].rstrip("_-") or "video"


def hashed_key(slug: str, text: str) -> str:
    """``slug`` made unique by a short hash of ``text`` (the exact relative path, or an absolute one)."""
    digest = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{slug[: MAX_KEY_LENGTH - 10].rstrip('_-')}-h{digest}"


def partition_key_for(path: str | Path, root: str | Path | None = None) -> str:
    """The key of a video file: from its path relative to ``root`` (the watched folder) when it lies
    inside it, else from its file name alone."""
    relative = PurePath(Path(path).name)
    if root is not None:
        try:
            relative = PurePath(Path(os.path.abspath(path)).relative_to(os.path.abspath(root)))
        except ValueError:
            pass
    parts = [*relative.parent.parts, relative.stem]
    slug = SEPARATOR.join(_slug(p) for p in parts)
    lossless = (
        relative.suffix == ".mp4"
        and all(_CLEAN.match(p) and SEPARATOR not in p and len(p) <= MAX_SLUG_LENGTH for p in parts)
        and not _HASHED.search(relative.stem)
        and len(slug) <= MAX_KEY_LENGTH
    )
    return slug if lossless else hashed_key(slug, relative.as_posix())


def is_video_file(path: str | Path) -> bool:
    """A visible file name with a video extension."""
    name = os.path.basename(path)  # plain string functions: the sensor asks this of every file it scans
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS
