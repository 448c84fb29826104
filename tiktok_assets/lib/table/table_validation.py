"""Validation of the written feature table: the Parquet file's Arrow schema is the declared one, and
the rows pass a pandera schema built from the same declaration."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pyarrow.parquet as pq

from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.table.schema import COLUMNS, REQUIRED, UNIQUE, arrow_schema
from tiktok_assets.lib.table.table_dataset import read_meta, shard_of, write_meta
from tiktok_assets.lib.table.table_io import load_features

STATUSES = ["ok", "partial", "failed", "incomplete", "source_missing"]
_NON_NEGATIVE = {"duration_s", "file_size_bytes", "frame_count", "speech_seconds", "candidate_frame_count",
                 "kept_frame_count"}


def table_schema() -> pa.DataFrameSchema:
    columns = {}
    for c in COLUMNS:
        checks = []
        if c.name in _NON_NEGATIVE or c.name.endswith("_seconds"):
            checks.append(pa.Check.ge(0))
        if c.name == "status":
            checks.append(pa.Check.isin(STATUSES))
        columns[c.name] = pa.Column(
            c.pandas_dtype, checks=checks, nullable=c.name not in REQUIRED, unique=c.name == UNIQUE,
        )
    return pa.DataFrameSchema(columns, strict=True, ordered=True)


def validate_table(parquet: pd.DataFrame, csv: pd.DataFrame) -> list[str]:
    """Problems found (empty when valid)."""
    problems: list[str] = []
    try:
        table_schema().validate(parquet, lazy=True)
    except pa.errors.SchemaErrors as exc:
        problems += [str(x) for x in exc.failure_cases.head(20).to_dict("records")]
    if len(csv) != len(parquet):
        problems.append(f"CSV has {len(csv)} rows, Parquet {len(parquet)}")
    expected_csv = [c.name for c in COLUMNS if c.csv]
    if list(csv.columns) != expected_csv:
        problems.append("CSV columns differ from the schema")
    elif not csv.equals(parquet[expected_csv]):
        problems.append("CSV and Parquet hold different values")
    if parquet["status"].eq("failed").any() and parquet.loc[parquet["status"] == "failed", "error"].isna().any():
        problems.append("a failed video has no error message")
    strings = [c.name for c in COLUMNS if c.dtype == "string"]
    blank = [n for n in strings if parquet[n].str.strip().eq("").any()]
    if blank:
        problems.append(f"empty strings (missing is null): {blank}")
    return problems


def validate_files(parquet_path: Path, csv_path: Path) -> list[str]:
    """Problems of the table as written (empty when valid)."""
    written = pq.read_schema(parquet_path).remove_metadata()
    declared = arrow_schema()
    if not written.equals(declared):
        differ = [f"{f.name}: {f.type} (declared {declared.field(f.name).type})" for f in written
                  if f.name in declared.names and f.type != declared.field(f.name).type]
        return [f"Parquet schema is not the declared one: {differ or written.names}"]
    try:
        parquet, csv = load_features(parquet_path), load_features(csv_path)
    except (ValueError, OSError) as exc:  # pyarrow's errors are ValueErrors (ArrowInvalid, ...)
        return [f"unreadable table: {exc}"]
    return validate_table(parquet, csv)


@dataclass(frozen=True)
class ShardSignature:
    """A shard file as it was when it passed: unchanged while its mtime and size are."""

    mtime_ns: int
    size: int
    rows: int


@dataclass
class DatasetCheck:
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    passed: dict[str, ShardSignature] = field(default_factory=dict)  # shard file name -> what passed
    read: int = 0  # shards read (the others passed before and are unchanged)


def validate_dataset(folder: Path, passed: Mapping[str, ShardSignature] | None = None) -> DatasetCheck:
    """Rows and problems of the table's shards (lib/table/table_dataset.py): the declared schema, each key
    once and in the shard its key hashes to (so once in the dataset), an error on every failed row. Reads
    three columns of each shard, except shards in ``passed`` (an earlier check's ``DatasetCheck.passed``)
    whose file is unchanged: after a batch only the shards it rewrote are read."""
    declared, check, passed = arrow_schema(), DatasetCheck(), passed or {}
    for path in sorted(folder.glob("shard-*.parquet")):
        info = path.stat()
        before = passed.get(path.name)
        if before is not None and (before.mtime_ns, before.size) == (info.st_mtime_ns, info.st_size):
            check.rows += before.rows
            check.passed[path.name] = before
            continue
        check.read += 1
        shard_file = pq.ParquetFile(path)  # one open: the footer gives the schema, then three columns
        if not shard_file.schema_arrow.remove_metadata().equals(declared):
            check.problems.append(f"{path.name}: not the declared schema")
            continue
        table = shard_file.read(columns=["video_key", "status", "error"]).to_pylist()
        shard, seen, problems = int(path.stem.removeprefix("shard-")), set(), []
        for row in table:
            if row["video_key"] in seen or shard_of(row["video_key"]) != shard:
                problems.append(f"{path.name}: {row['video_key']} is duplicated or in the wrong shard")
            if row["status"] == "failed" and not row["error"]:
                problems.append(f"{path.name}: the failed video {row['video_key']} has no error message")
            seen.add(row["video_key"])
        check.rows += len(table)
        check.problems += problems
        if not problems:
            check.passed[path.name] = ShardSignature(info.st_mtime_ns, info.st_size, len(table))
    return check


PASSED_META = "shards_passed"


def load_passed(layout: DataLayout) -> dict[str, ShardSignature]:
    """The shards the last check passed (kept in the table's bookkeeping)."""
    value = read_meta(layout, PASSED_META)
    return {} if value is None else {name: ShardSignature(*sig) for name, sig in json.loads(value).items()}


def save_passed(layout: DataLayout, passed: dict[str, ShardSignature]) -> None:
    write_meta(layout, PASSED_META, json.dumps({name: astuple(sig) for name, sig in passed.items()}))
