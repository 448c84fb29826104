"""Video registry: partition key -> source file, with what the file was when it was registered.

One small JSON file per video (atomic writes). A key always names one source: registering another
file under a key that is taken gives it a distinct key, never a silent repoint. The entry keeps the
file's size, modification time and a fast content hash (size + first and last MiB, sha256), so a file
replaced in place is recognised; with TIKTOK_ASSETS_FULL_HASH=1 new entries hash the whole file, which
also sees an edit in the middle of a large file that keeps its size.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from tiktok_assets.lib import atomic
from tiktok_assets.lib.keys import hashed_key, partition_key_for, validate_key
from tiktok_assets.lib.layout import DataLayout

HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class RegisteredVideo:
    key: str
    source_path: str
    file_name: str
    registered_at: str
    size: int | None = None
    mtime: float | None = None
    content_hash: str = ""


def fast_hash(path: str | Path) -> str:
    """sha256 of the size and the first and last MiB: changes whenever a file is replaced, in O(1)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        digest = hashlib.sha256(str(size).encode())
        digest.update(fh.read(HASH_BLOCK))
        if size > HASH_BLOCK:
            fh.seek(max(size - HASH_BLOCK, HASH_BLOCK))
            digest.update(fh.read(HASH_BLOCK))
    return digest.hexdigest()[:32]


FULL_PREFIX = "sha256:"


def full_hash(path: str | Path) -> str:
    """sha256 of the whole file (``TIKTOK_ASSETS_FULL_HASH=1``): also sees an edit in the middle."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
    return FULL_PREFIX + digest.hexdigest()


def content_hash(path: str | Path, like: str | None = None) -> str:
    """The file's content hash: full when ``like`` (a stored hash) is a full one, or, for a new entry,
    when TIKTOK_ASSETS_FULL_HASH=1; else the fast hash."""
    full = like.startswith(FULL_PREFIX) if like is not None else os.environ.get("TIKTOK_ASSETS_FULL_HASH") == "1"
    return full_hash(path) if full else fast_hash(path)


def _entry_path(layout: DataLayout, key: str) -> Path:
    return layout.registry_dir / f"{validate_key(key)}.json"


def _read(layout: DataLayout, key: str) -> RegisteredVideo | None:
    path = _entry_path(layout, key)
    return RegisteredVideo(**atomic.read_json(path)) if path.exists() else None


def describe(source: Path, key: str) -> RegisteredVideo:
    """An entry for ``source`` as it is on disk now."""
    stat = source.stat()
    return RegisteredVideo(
        key=key,
        source_path=str(source),
        file_name=source.name,
        registered_at=datetime.now(UTC).isoformat(timespec="seconds"),
        size=stat.st_size,
        mtime=stat.st_mtime,
        content_hash=content_hash(source),
    )


def register(layout: DataLayout, path: str | Path) -> RegisteredVideo:
    """Record a video under its key (from its path relative to the watched folder). The same file again
    keeps its entry (refreshed when its content changed); another file whose key is taken gets a key made
    unique by a hash of its absolute path."""
    # `..` removed lexically, links not resolved: a link in the folder is its own video
    source = Path(os.path.abspath(Path(path).expanduser()))
    key = partition_key_for(source, layout.videos_dir)
    existing = _read(layout, key)
    if existing is not None and existing.source_path != str(source):
        key = hashed_key(key, str(source))
        existing = _read(layout, key)
        if existing is not None and existing.source_path != str(source):
            raise ValueError(f"cannot register {source}: key {key} is taken by {existing.source_path}")
    if existing is not None and not changed(existing):
        return existing
    entry = describe(source, key)
    if existing is not None:
        entry = RegisteredVideo(**{**asdict(entry), "registered_at": existing.registered_at})
    atomic.write_json(_entry_path(layout, key), asdict(entry))
    return entry


def changed(entry: RegisteredVideo) -> bool:
    """The source file differs from what was registered (size or mtime first, then the content hash)."""
    try:
        stat = os.stat(entry.source_path)
    except OSError:
        return False  # gone: see source_missing
    if stat.st_size == entry.size and stat.st_mtime == entry.mtime:
        return False
    return content_hash(entry.source_path, like=entry.content_hash) != entry.content_hash


def lookup(layout: DataLayout, key: str) -> RegisteredVideo:
    """The registered video for ``key``."""
    entry = _read(layout, key)
    if entry is None:
        raise KeyError(
            f"No video is registered under partition key {key!r}: add it with `tiktok-assets add PATH` "
            f"or drop it into {layout.videos_dir}"
        )
    return entry


def remove(layout: DataLayout, key: str) -> None:
    _entry_path(layout, key).unlink(missing_ok=True)


def registered(layout: DataLayout) -> list[RegisteredVideo]:
    if not layout.registry_dir.is_dir():
        return []
    return [RegisteredVideo(**atomic.read_json(p)) for p in sorted(layout.registry_dir.glob("*.json"))]
