"""The feature table as a dataset that grows with the catalogue.

Rows live in ``SHARDS`` Parquet files chosen by a hash of the video key
(``data/video_features_dataset/shard-NNN.parquet``, each of the declared schema, replaced atomically), so
updating the rows of a batch of videos rebuilds those rows only and rewrites only the shards they fall in,
whatever the size of the catalogue. Which rows to rebuild comes from a journal in the registry database:
every per-video stage marks its video when it records an outcome (:func:`mark_changed`); an update takes
the marks it read, and a mark made while it runs stays for the next one. The same database keeps each
row's shard, status and error, so an update opens only the shards it rewrites and its counts come from
one query. A crash between a shard's write and its bookkeeping leaves the marks in place: the next
update rebuilds those rows again.

The compacted pair ``video_features_results.parquet`` / ``.csv`` (one file each, replaced together) is
written from the shards on request, and after every update while the catalogue has at most
``COMPACT_MAX_ROWS`` rows, so a small project always has it current.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tiktok_assets.lib import atomic
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.catalogue.registry import RegisteredVideo
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.table import table_io
from tiktok_assets.lib.table.schema import arrow_schema
from tiktok_assets.lib.table.table import SOURCE_MISSING, build_row, write_table

SHARDS = 256
COMPACT_MAX_ROWS = int(os.environ.get("TIKTOK_ASSETS_TABLE_COMPACT_MAX_ROWS", "10000"))
MAX_FAILED_SHOWN = 20
ROWS_PER_FLUSH = 2000


def shard_of(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") % SHARDS


def shard_path(folder: Path, shard: int) -> Path:
    return folder / f"shard-{shard:03d}.parquet"


# --- bookkeeping in the registry database --------------------------------------------------------------
# table_pending: videos whose row is out of date (the journal). table_rows: the key, shard, status and
# error of every row written, so an update opens only the shards it rewrites. table_meta: the schema the
# shards were written with (another schema: every row is rebuilt).
_TABLES = (
    "CREATE TABLE IF NOT EXISTS table_pending (key TEXT PRIMARY KEY, marked REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS table_rows (key TEXT PRIMARY KEY, shard INTEGER NOT NULL, status TEXT, error TEXT)",
    "CREATE INDEX IF NOT EXISTS table_rows_by_shard ON table_rows (shard)",
    "CREATE TABLE IF NOT EXISTS table_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


@contextmanager
def _bookkeeping(layout: DataLayout) -> Iterator[sqlite3.Connection]:
    with registry.database(layout) as conn:
        for statement in _TABLES:
            conn.execute(statement)
        yield conn


def mark_changed(layout: DataLayout, keys: list[str]) -> None:
    """Record that these videos' rows must be rebuilt (a stage recorded an outcome for them)."""
    now = time.time()
    with _bookkeeping(layout) as conn:
        conn.executemany("INSERT OR REPLACE INTO table_pending (key, marked) VALUES (?, ?)", [(k, now) for k in keys])


def pending(layout: DataLayout) -> dict[str, float]:
    with _bookkeeping(layout) as conn:
        return dict(conn.execute("SELECT key, marked FROM table_pending"))


def read_meta(layout: DataLayout, name: str) -> str | None:
    """A value the table's code keeps beside its bookkeeping (e.g. what the last schema check passed)."""
    with _bookkeeping(layout) as conn:
        row = conn.execute("SELECT value FROM table_meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]


def write_meta(layout: DataLayout, name: str, value: str) -> None:
    with _bookkeeping(layout) as conn:
        conn.execute("INSERT OR REPLACE INTO table_meta (name, value) VALUES (?, ?)", (name, value))


def _schema_id() -> str:
    return hashlib.sha256(arrow_schema().to_string().encode()).hexdigest()[:16]


# --- the shards --------------------------------------------------------------------------------------
@dataclass
class DatasetUpdate:
    rows: int = 0
    rebuilt: int = 0  # rows built again from the per-video artifacts
    dropped: int = 0  # rows of videos that are no longer partitions
    shards_written: int = 0
    full: bool = False  # every row was rebuilt (asked for, first update, or the schema changed)
    status_counts: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, error), the first MAX_FAILED_SHOWN


def _source_flips(rows: Iterable[tuple[str, str, str | None]]) -> set[str]:
    """Keys of the rows whose source went missing or came back: ``rows`` are (source path, key, row
    status) in path order, so each folder is listed once, not each file stat-ed (a link is followed, so
    a dangling one is missing)."""

    @functools.lru_cache(maxsize=64)  # a folder's files and its sub-folders' interleave in path order
    def names(folder: str) -> frozenset[str]:
        try:
            with os.scandir(folder) as listing:
                return frozenset(e.name for e in listing if not e.is_symlink() or os.path.exists(e.path))
        except OSError:  # the folder itself is gone
            return frozenset()

    flips = set()
    for path, key, status in rows:
        folder, _, name = path.rpartition("/")
        missing = name not in names(folder or "/")
        if missing != (status == SOURCE_MISSING):
            flips.add(key)
    return flips


def update_dataset(layout: DataLayout, partition_keys: list[str], full: bool = False) -> DatasetUpdate:
    """Bring the shards up to date with the video partitions ``partition_keys``: rebuild the rows of
    marked videos, of videos without a row and of videos whose source file went missing (or came back),
    drop rows of videos that are no longer partitions; ``full`` rebuilds every row (e.g. after outputs
    were changed by hand). Which rows is worked out in SQL against the bookkeeping (the partition keys in
    a temporary table), and rows are built ``ROWS_PER_FLUSH`` at a time: memory stays flat in the size of
    the catalogue. A partition without a registry entry still gets a row, with its error."""
    folder = layout.table_dataset
    folder.mkdir(parents=True, exist_ok=True)
    on_disk = {int(name[6:9]) for name in os.listdir(folder) if name.startswith("shard-") and name.endswith(".parquet")}
    with _bookkeeping(layout) as conn:
        marks = dict(conn.execute("SELECT key, marked FROM table_pending"))
        schema = conn.execute("SELECT value FROM table_meta WHERE name = 'schema'").fetchone()
        full = full or schema is None or schema[0] != _schema_id()
        conn.execute("CREATE TEMP TABLE wanted (key TEXT PRIMARY KEY)")
        conn.execute("INSERT OR IGNORE INTO temp.wanted (key) SELECT value FROM json_each(?)",
                     (json.dumps(partition_keys),))
        if full:
            stale = {key for (key,) in conn.execute("SELECT key FROM temp.wanted")}
            drop: dict[str, int] = {}
        else:
            stale = {key for (key,) in conn.execute(  # new partitions, and marked ones
                "SELECT w.key FROM temp.wanted w LEFT JOIN table_rows r USING (key) WHERE r.key IS NULL "
                "UNION SELECT key FROM temp.wanted JOIN table_pending USING (key)")}
            lost = [s for (s,) in conn.execute("SELECT DISTINCT shard FROM table_rows") if s not in on_disk]
            stale.update(key for (key,) in conn.execute(  # rows of shards deleted by hand
                f"SELECT key FROM table_rows JOIN temp.wanted USING (key) WHERE shard IN ({','.join('?' * len(lost))})",
                lost))
            stale |= _source_flips(conn.execute(  # in path order from the registry's index: no sort
                "SELECT v.source_path, r.key, r.status FROM videos v INDEXED BY videos_by_path "
                "CROSS JOIN table_rows r ON r.key = v.key CROSS JOIN temp.wanted w ON w.key = v.key "
                "ORDER BY v.source_path"))
            stale.update(key for (key,) in conn.execute(  # a row said missing whose entry is gone: nothing to miss
                f"SELECT key FROM table_rows r JOIN temp.wanted USING (key) WHERE r.status = '{SOURCE_MISSING}' "
                "AND NOT EXISTS (SELECT 1 FROM videos v WHERE v.key = r.key)"))
            drop = dict(conn.execute(  # rows of videos that are no longer partitions
                "SELECT r.key, r.shard FROM table_rows r LEFT JOIN temp.wanted w USING (key) WHERE w.key IS NULL"))
        conn.execute("DROP TABLE temp.wanted")
    by_shard: dict[int, list[str]] = {}
    for key in sorted(stale):
        by_shard.setdefault(shard_of(key), []).append(key)
    touched = sorted(set(by_shard) | set(drop.values()) | (set(range(SHARDS)) if full else set()))
    update = DatasetUpdate(rebuilt=len(stale), dropped=len(drop), full=full)
    dropped, group = set(drop), []
    for shard in touched:
        group.append(shard)
        if sum(len(by_shard.get(s, [])) for s in group) >= ROWS_PER_FLUSH:
            _write_shards(layout, group, by_shard, dropped, full)
            group = []
    _write_shards(layout, group, by_shard, dropped, full)
    with _bookkeeping(layout) as conn:
        conn.execute("INSERT OR REPLACE INTO table_meta (name, value) VALUES ('schema', ?)", (_schema_id(),))
        conn.executemany("DELETE FROM table_pending WHERE key = ? AND marked = ?", list(marks.items()))
        update.rows = conn.execute("SELECT count(*) FROM table_rows").fetchone()[0]
        update.status_counts = dict(conn.execute("SELECT status, count(*) FROM table_rows GROUP BY status"))
        update.failed = list(conn.execute(
            "SELECT key, coalesce(error, '') FROM table_rows WHERE status = 'failed' ORDER BY key LIMIT ?",
            (MAX_FAILED_SHOWN,)))
    update.shards_written = len(touched)
    return update


def _write_shards(layout: DataLayout, shards: list[int], by_shard: dict[int, list[str]], drop: set[str],
                  fresh: bool) -> None:
    """Build the rows of ``by_shard``'s keys in these shards in one table (their registry entries looked up
    for this group only), then write each shard (atomically) and its bookkeeping. ``fresh``: the shards'
    current files are not read (every row of them is rebuilt)."""
    if not shards:
        return
    keys = [k for s in shards for k in by_shard.get(s, [])]
    found = registry.lookup_many(layout, keys)
    entries = [found.get(k) or RegisteredVideo(key=k, source_path="", file_name="", registered_at="") for k in keys]
    built = table_io.arrow_of_rows([build_row(layout, e) for e in entries])
    index: dict[int, list[dict]] = {}
    for shard in shards:
        path = shard_path(layout.table_dataset, shard)
        keys = by_shard.get(shard, [])
        parts = [built.filter(pc.is_in(built.column("video_key"), pa.array(keys, pa.string())))]
        if not fresh and path.exists():
            old = pq.read_table(path).cast(arrow_schema())
            gone = pa.array(sorted(drop | set(keys)), pa.string())
            parts.insert(0, old.filter(pc.invert(pc.is_in(old.column("video_key"), gone))))
        table = pa.concat_tables(parts).sort_by("video_key")
        if table.num_rows:
            with atomic.atomic_path(path) as tmp:
                table_io.write_arrow(table, tmp)
        else:
            path.unlink(missing_ok=True)
        index[shard] = table.select(["video_key", "status", "error"]).to_pylist()
    with _bookkeeping(layout) as conn:  # one transaction for the group (a crash before it: rows rebuilt again)
        for shard, rows in index.items():
            conn.execute("DELETE FROM table_rows WHERE shard = ?", (shard,))
            conn.executemany("INSERT OR REPLACE INTO table_rows (key, shard, status, error) VALUES (?, ?, ?, ?)",
                             [(r["video_key"], shard, r["status"], r["error"]) for r in rows])


def compact(layout: DataLayout) -> int:
    """Write the one-file CSV + Parquet pair from the shards; returns its row count."""
    frame = table_io.load_features(layout.table_dataset)
    write_table(frame, layout.table_csv, layout.table_parquet)
    return len(frame)
