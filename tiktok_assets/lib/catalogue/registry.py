"""Video registry: partition key -> source file, with what the file was when it was registered.

One SQLite database in the data folder (``registry.sqlite3``, WAL journal, so the sensor, run workers and the
CLI read and write it at once; on a shared volume it needs a filesystem with POSIX locks, as NFSv4, CephFS
or EFS have). Many files are registered in one transaction (:func:`register_many`), so a drop of thousands of
files costs one commit, not one file write each. A key always names one source: registering another file
under a key that is taken gives it a distinct key, never a silent repoint. The entry keeps the file's size,
modification time and a fast content hash (size + first and last MiB, sha256), so a file replaced in place
is recognised; with TIKTOK_ASSETS_FULL_HASH=1 new entries hash the whole file, which also sees an edit in
the middle of a large file that keeps its size. A data folder of an earlier version (one JSON file per
video under ``registry/``) is imported the first time the database is created.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, astuple, dataclass
from datetime import UTC, datetime
from pathlib import Path

from tiktok_assets.lib import atomic
from tiktok_assets.lib.catalogue.keys import hashed_key, partition_key_for, validate_key
from tiktok_assets.lib.catalogue.watch import FolderRecord
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


_COLUMNS = "key, source_path, file_name, registered_at, size, mtime, content_hash"
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS videos (
    key TEXT PRIMARY KEY, source_path TEXT NOT NULL, file_name TEXT NOT NULL, registered_at TEXT NOT NULL,
    size INTEGER, mtime REAL, content_hash TEXT NOT NULL DEFAULT '')""",
    # the sensor asks for the entries of a few folders (a range of paths), never for all of them
    "CREATE INDEX IF NOT EXISTS videos_by_path ON videos (source_path)",
    # the folders the sensor's last scan visited (see watch.scan_folder)
    "CREATE TABLE IF NOT EXISTS scanned_folders (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, listed_at REAL NOT NULL)",
)
CHUNK = 500  # keys per IN (...) query: far below SQLite's limit on bound variables


@contextmanager
def database(layout: DataLayout) -> Iterator[sqlite3.Connection]:
    """A connection in one transaction (committed on success, rolled back on an error)."""
    path = layout.registry_db
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=60)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        with conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            if new:
                _import_json_entries(conn, layout.legacy_registry_dir)
        with conn:
            yield conn


def _import_json_entries(conn: sqlite3.Connection, folder: Path) -> None:
    if folder.is_dir():
        rows = [astuple(RegisteredVideo(**atomic.read_json(p))) for p in sorted(folder.glob("*.json"))]
        conn.executemany(f"INSERT OR REPLACE INTO videos ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _rows(conn: sqlite3.Connection, keys: list[str]) -> dict[str, RegisteredVideo]:
    found: dict[str, RegisteredVideo] = {}
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        query = f"SELECT {_COLUMNS} FROM videos WHERE key IN ({','.join('?' * len(chunk))})"
        found.update((row[0], RegisteredVideo(*row)) for row in conn.execute(query, chunk))
    return found


def _write(conn: sqlite3.Connection, entry: RegisteredVideo) -> None:
    conn.execute(f"INSERT OR REPLACE INTO videos ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(entry))


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
    """Record one video under its key; see :func:`register_many`."""
    return register_many(layout, [path])[0]


def register_many(layout: DataLayout, paths: Iterable[str | Path]) -> list[RegisteredVideo]:
    """Record videos under their keys (from their paths relative to the watched folder), in one
    transaction. The same file again keeps its entry (refreshed when its content changed); another file
    whose key is taken gets a key made unique by a hash of its absolute path."""
    # `..` removed lexically, links not resolved: a link in the folder is its own video
    sources = [Path(os.path.abspath(Path(p).expanduser())) for p in paths]
    wanted = [partition_key_for(source, layout.videos_dir) for source in sources]
    entries: list[RegisteredVideo] = []
    with database(layout) as conn:
        existing = _rows(conn, list(dict.fromkeys(wanted)))
        for source, key in zip(sources, wanted, strict=True):
            entry = existing.get(key)
            if entry is not None and entry.source_path != str(source):
                key = hashed_key(key, str(source))
                entry = existing.get(key) or _rows(conn, [key]).get(key)
                if entry is not None and entry.source_path != str(source):
                    raise ValueError(f"cannot register {source}: key {key} is taken by {entry.source_path}")
            if entry is None or changed(entry):
                fresh = describe(source, key)
                entry = fresh if entry is None else RegisteredVideo(
                    **{**asdict(fresh), "registered_at": entry.registered_at})
                _write(conn, entry)
                existing[key] = entry
            entries.append(entry)
    return entries


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
    with database(layout) as conn:
        entry = _rows(conn, [validate_key(key)]).get(key)
    if entry is None:
        raise KeyError(
            f"No video is registered under partition key {key!r}: add it with `tiktok-assets add PATH` "
            f"or drop it into {layout.videos_dir}"
        )
    return entry


def lookup_many(layout: DataLayout, keys: list[str]) -> dict[str, RegisteredVideo]:
    """The registered videos among ``keys`` (a key without an entry is absent from the result)."""
    if not layout.registry_db.exists() and not layout.legacy_registry_dir.is_dir():
        return {}
    with database(layout) as conn:
        return _rows(conn, keys)


def refresh(layout: DataLayout, entries: list[RegisteredVideo]) -> None:
    """Store re-described entries (a file replaced in place), in one transaction."""
    with database(layout) as conn:
        for entry in entries:
            _write(conn, entry)


def remove(layout: DataLayout, key: str) -> None:
    with database(layout) as conn:
        conn.execute("DELETE FROM videos WHERE key = ?", (key,))


def files_in(layout: DataLayout, folders: list[str]) -> dict[str, str]:
    """source path -> key of the entries directly in ``folders`` (absolute paths): what the sensor
    matches the folders it lists against (one indexed range of paths per folder)."""
    if not folders or (not layout.registry_db.exists() and not layout.legacy_registry_dir.is_dir()):
        return {}
    found: dict[str, str] = {}
    with database(layout) as conn:
        for folder in folders:
            prefix = folder.rstrip("/") + "/"
            rows = conn.execute(  # '0' is the character after '/': the range is every path under the folder
                "SELECT source_path, key FROM videos WHERE source_path >= ? AND source_path < ? "
                "AND instr(substr(source_path, ?), '/') = 0", (prefix, prefix[:-1] + "0", len(prefix) + 1))
            found.update(rows)
    return found


def files_page(layout: DataLayout, after: int, limit: int) -> list[tuple[int, str, str, int | None, float | None]]:
    """(row id, key, source path, size, mtime) of up to ``limit`` entries after row id ``after``, in row
    order: the sensor's replaced check goes through a large registry a page per tick."""
    if not layout.registry_db.exists() and not layout.legacy_registry_dir.is_dir():
        return []
    with database(layout) as conn:
        return conn.execute("SELECT rowid, key, source_path, size, mtime FROM videos WHERE rowid > ? "
                            "ORDER BY rowid LIMIT ?", (after, limit)).fetchall()


def scanned_folders(layout: DataLayout) -> dict[str, FolderRecord]:
    """The folders the sensor's last scan visited (``watch.Scan.folders``)."""
    if not layout.registry_db.exists():
        return {}
    with database(layout) as conn:
        return {path: FolderRecord(mtime_ns, listed_at)
                for path, mtime_ns, listed_at in conn.execute("SELECT path, mtime_ns, listed_at FROM scanned_folders")}


def save_scanned_folders(layout: DataLayout, folders: dict[str, FolderRecord]) -> None:
    """Replace the record of the last scan (one transaction)."""
    with database(layout) as conn:
        conn.execute("DELETE FROM scanned_folders")
        conn.executemany("INSERT INTO scanned_folders (path, mtime_ns, listed_at) VALUES (?, ?, ?)",
                         [(path, r.mtime_ns, r.listed_at) for path, r in folders.items()])


def source_paths(layout: DataLayout) -> dict[str, str]:
    """key -> source path of every entry (one query, two columns: cheap for a large catalogue)."""
    if not layout.registry_db.exists() and not layout.legacy_registry_dir.is_dir():
        return {}
    with database(layout) as conn:
        return dict(conn.execute("SELECT key, source_path FROM videos"))


def registered(layout: DataLayout) -> list[RegisteredVideo]:
    """Every entry, in key order."""
    if not layout.registry_db.exists() and not layout.legacy_registry_dir.is_dir():
        return []
    with database(layout) as conn:
        return [RegisteredVideo(*row) for row in conn.execute(f"SELECT {_COLUMNS} FROM videos ORDER BY key")]
