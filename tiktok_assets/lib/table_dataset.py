"""The feature table as a dataset that grows with the catalogue.

Rows live in ``SHARDS`` Parquet files chosen by a hash of the video key
(``data/video_features_dataset/shard-NNN.parquet``, each of the declared schema, replaced atomically), so
updating the rows of a batch of videos rebuilds those rows only and rewrites only the shards they fall in,
whatever the size of the catalogue. Which rows to rebuild comes from a journal in the registry database:
every per-video stage marks its video when it records an outcome (:func:`mark_changed`); an update takes
the marks it read, and a mark made while it runs stays for the next one.

The compacted pair ``video_features_results.parquet`` / ``.csv`` (one file each, replaced together) is
written from the shards on request, and after every update while the catalogue has at most
``COMPACT_MAX_ROWS`` rows, so a small project always has it current.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tiktok_assets.lib import atomic, registry, table_io
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.registry import RegisteredVideo
from tiktok_assets.lib.schema import arrow_schema
from tiktok_assets.lib.table import SOURCE_MISSING, build_row, write_table

SHARDS = 256
COMPACT_MAX_ROWS = int(os.environ.get("TIKTOK_ASSETS_TABLE_COMPACT_MAX_ROWS", "10000"))
MAX_FAILED_SHOWN = 20
_JOURNAL = "CREATE TABLE IF NOT EXISTS table_pending (key TEXT PRIMARY KEY, marked REAL NOT NULL)"


def shard_of(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") % SHARDS


def shard_path(folder: Path, shard: int) -> Path:
    return folder / f"shard-{shard:03d}.parquet"


# --- the journal of videos whose row is out of date ---------------------------------------------------
def mark_changed(layout: DataLayout, keys: list[str]) -> None:
    """Record that these videos' rows must be rebuilt (a stage recorded an outcome for them)."""
    now = time.time()
    with registry.database(layout) as conn:
        conn.execute(_JOURNAL)
        conn.executemany("INSERT OR REPLACE INTO table_pending (key, marked) VALUES (?, ?)", [(k, now) for k in keys])


def pending(layout: DataLayout) -> dict[str, float]:
    with registry.database(layout) as conn:
        conn.execute(_JOURNAL)
        return dict(conn.execute("SELECT key, marked FROM table_pending"))


def _clear(layout: DataLayout, taken: dict[str, float]) -> None:
    """Drop the marks an update took (a key marked again since keeps its newer mark)."""
    with registry.database(layout) as conn:
        conn.executemany("DELETE FROM table_pending WHERE key = ? AND marked = ?", list(taken.items()))


# --- the shards --------------------------------------------------------------------------------------
@dataclass
class DatasetUpdate:
    rows: int = 0
    rebuilt: int = 0  # rows built again from the per-video artifacts
    dropped: int = 0  # rows of videos that are no longer partitions
    shards_written: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, error), the first MAX_FAILED_SHOWN


def _read_shard(path: Path) -> pa.Table | None:
    """The shard as the declared schema, or None when it is missing or of another schema (rebuilt)."""
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid):
        return None
    declared = arrow_schema()
    return table.cast(declared) if table.schema.remove_metadata().equals(declared) else None


def _summarise(update: DatasetUpdate, table: pa.Table) -> None:
    update.rows += table.num_rows
    for status, count in zip(*pc.value_counts(table.column("status")).flatten(), strict=True):
        update.status_counts[str(status)] = update.status_counts.get(str(status), 0) + int(count.as_py())
    if len(update.failed) < MAX_FAILED_SHOWN:
        failed = table.filter(pc.equal(table.column("status"), "failed")).select(["video_key", "error"])
        update.failed += [(r["video_key"], r["error"] or "") for r in failed.to_pylist()]
        update.failed = update.failed[:MAX_FAILED_SHOWN]


def _source_missing(entry: RegisteredVideo) -> bool:
    return bool(entry.source_path) and not os.path.exists(entry.source_path)


def update_dataset(layout: DataLayout, entries: list[RegisteredVideo], full: bool = False) -> DatasetUpdate:
    """Bring the shards up to date with ``entries`` (every registered video partition): rebuild the rows
    of marked videos, of videos without a row and of videos whose source file went missing (or came
    back), drop rows of videos that are no longer partitions; ``full`` rebuilds every row (e.g. after
    outputs were changed by hand)."""
    folder = layout.table_dataset
    folder.mkdir(parents=True, exist_ok=True)
    marks = pending(layout)
    by_shard: dict[int, dict[str, RegisteredVideo]] = {}
    for entry in entries:
        by_shard.setdefault(shard_of(entry.key), {})[entry.key] = entry
    update = DatasetUpdate()
    for shard in range(SHARDS):
        wanted = by_shard.get(shard, {})
        path = shard_path(folder, shard)
        old = None if full else _read_shard(path)
        if old is None and not wanted and not path.exists():
            continue
        status = dict(zip(old.column("video_key").to_pylist(), old.column("status").to_pylist(), strict=True)) \
            if old is not None else {}
        present = set(status)
        rebuild = sorted(k for k in wanted if k in marks or k not in present
                         or (status[k] == SOURCE_MISSING) != _source_missing(wanted[k]))
        drop = present - set(wanted)
        if old is not None and not rebuild and not drop:
            _summarise(update, old)
            continue
        rows = [build_row(layout, wanted[k]) for k in rebuild]
        parts = [table_io.to_arrow(table_io.frame_of_rows(rows))] if rows else []
        if old is not None:
            keep = pc.invert(pc.is_in(old.column("video_key"), pa.array(sorted(drop | set(rebuild)), pa.string())))
            parts.insert(0, old.filter(keep))
        table = pa.concat_tables(parts) if parts else arrow_schema().empty_table()
        table = table.sort_by("video_key")
        if table.num_rows:
            with atomic.atomic_path(path) as tmp:
                table_io.write_parquet(table_io.from_arrow(table), tmp)
        else:
            path.unlink(missing_ok=True)
        update.rebuilt += len(rebuild)
        update.dropped += len(drop)
        update.shards_written += 1
        _summarise(update, table)
    _clear(layout, marks)
    return update


def compact(layout: DataLayout) -> int:
    """Write the one-file CSV + Parquet pair from the shards; returns its row count."""
    frame = table_io.load_features(layout.table_dataset)
    write_table(frame, layout.table_csv, layout.table_parquet)
    return len(frame)
