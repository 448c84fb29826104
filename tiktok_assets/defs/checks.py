"""Asset checks: the feature table as written on disk matches its documented schema."""


import dagster as dg
import pyarrow.parquet as pq

from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib.table_validation import validate_files


@dg.asset_check(asset="video_features", blocking=True,
                description="Parquet and CSV exist, the Parquet schema is the declared one, the values "
                "match the schema and each other, one row per video.")
def video_features_schema(paths: ProjectPaths) -> dg.AssetCheckResult:
    layout = paths.layout()
    if not layout.table_parquet.exists() or not layout.table_csv.exists():
        return dg.AssetCheckResult(passed=False, description="table files are missing")
    problems = validate_files(layout.table_parquet, layout.table_csv)
    rows = pq.read_metadata(layout.table_parquet).num_rows
    return dg.AssetCheckResult(
        passed=not problems, metadata={"rows": rows, "problems": dg.MetadataValue.json(problems)},
    )
