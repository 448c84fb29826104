"""The feature table's files: Parquet with the declared Arrow schema, CSV with lists as JSON text, and
:func:`load_features`, which gives the same typed DataFrame from either file.

Types in the DataFrame: ``string``, ``Int64``, ``Float64`` and ``boolean`` for scalars, and
``pd.ArrowDtype`` for list and struct columns (a cell is a Python list or dict); missing is ``<NA>``.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tiktok_assets.lib.table.schema import COLUMNS, arrow_schema

PathLike = str | os.PathLike[str]


def _pandas_dtype(arrow_type: pa.DataType) -> Any:
    """The DataFrame dtype of a declared Arrow type (used as ``to_pandas(types_mapper=...)``)."""
    scalar = {pa.string(): pd.StringDtype(), pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(),
              pa.bool_(): pd.BooleanDtype()}
    return scalar.get(arrow_type) or pd.ArrowDtype(arrow_type)


def _blank_to_null(values: list[Any]) -> list[Any]:
    """One missing-value convention: a string column never holds an empty (or blank) string."""
    return [None if isinstance(v, str) and not v.strip() else v for v in values]


def to_arrow(frame: pd.DataFrame, csv_only: bool = False) -> pa.Table:
    """The frame as a table of the declared schema (raises when a value does not fit its column's type)."""
    schema = arrow_schema(csv_only)
    arrays = []
    for field in schema:
        values = frame[field.name].astype(object).where(frame[field.name].notna(), None).tolist()
        if pa.types.is_string(field.type):
            values = _blank_to_null(values)
        arrays.append(pa.array(values, type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def from_arrow(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_pandas_dtype)


def arrow_of_rows(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (column -> Python value; absent = missing) as a table of the declared schema."""
    frame = pd.DataFrame(rows, columns=[c.name for c in COLUMNS])
    for column in COLUMNS:
        if not column.nested:  # e.g. 12.0 read from JSON for an int64 column: pandas casts it exactly
            frame[column.name] = frame[column.name].astype(column.dtype)
    return to_arrow(frame)


def frame_of_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame of the declared types."""
    return from_arrow(arrow_of_rows(rows))


@functools.cache
def _pandas_metadata() -> dict[bytes, bytes]:
    """pandas' schema metadata for the declared dtypes (the same for every frame of the table)."""
    plain = frame_of_rows([])
    for column in COLUMNS:
        if column.nested:  # pandas cannot read its own metadata for pd.ArrowDtype list columns back
            plain[column.name] = plain[column.name].astype(object)
    return pa.Schema.from_pandas(plain, preserve_index=False).metadata


def write_arrow(table: pa.Table, path: Path) -> None:
    """Parquet with the declared schema, plus pandas metadata so ``pd.read_parquet`` restores Int64,
    Float64, boolean and string (lists come back as numpy arrays there; :func:`load_features` gives lists)."""
    pq.write_table(table.cast(arrow_schema()).replace_schema_metadata(_pandas_metadata()), path)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    write_arrow(to_arrow(frame), path)


def _json_cell(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The CSV's columns, with lists and structs as JSON text."""
    table = to_arrow(frame, csv_only=True)
    out = from_arrow(table)
    for column in COLUMNS:
        if column.csv and column.nested:
            out[column.name] = pd.array([_json_cell(v) for v in table.column(column.name).to_pylist()],
                                        dtype="string")
    return out


def _read_csv(path: Path) -> pa.Table:
    schema = arrow_schema(csv_only=True)
    header = pd.read_csv(path, nrows=0).columns.tolist()
    if header != schema.names:
        raise ValueError(f"{path}: the columns are not those of the declared feature table")
    nested = {c.name: c for c in COLUMNS if c.csv and c.nested}
    options = pa_csv.ConvertOptions(
        column_types={f.name: pa.string() if f.name in nested else f.type for f in schema},
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
    )
    table = pa_csv.read_csv(path, convert_options=options)
    for name, column in nested.items():
        values = [None if v is None else json.loads(v) for v in table.column(name).to_pylist()]
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values, type=column.arrow_type))
    return table.cast(schema)


def read_parquet(path: Path) -> pa.Table:
    schema = arrow_schema()
    table = pq.read_table(path)
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise ValueError(f"{path}: not the declared feature table (missing columns {missing[:5]})")
    return table.select(schema.names).cast(schema)


def load_features(path: PathLike) -> pd.DataFrame:
    """The feature table from its Parquet or CSV file, or from the folder of its shards, with the declared
    types. From the CSV, the Parquet-only columns (the CLIP embedding) are absent."""
    path = Path(path)
    if path.is_dir():  # the dataset of shards (data/video_features_dataset)
        shards = [read_parquet(p) for p in sorted(path.glob("shard-*.parquet"))]
        table = pa.concat_tables(shards) if shards else arrow_schema().empty_table()
        return from_arrow(table.sort_by("video_key"))
    if path.suffix == ".parquet":
        return from_arrow(read_parquet(path))
    if path.suffix == ".csv":
        return from_arrow(_read_csv(path))
    raise ValueError(f"{path}: expected the table's .parquet or .csv file, or the folder of its shards")
