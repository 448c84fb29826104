"""Validation of the written feature table with pandera, built from the documented schema."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from tiktok_assets.lib.schema import COLUMNS

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
            None if c.dtype == "object" else c.dtype, checks=checks, nullable=c.name not in ("video_key", "status"),
            unique=c.name == "video_key",
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
    if parquet["status"].eq("failed").any() and parquet.loc[parquet["status"] == "failed", "error"].isna().any():
        problems.append("a failed video has no error message")
    return problems
