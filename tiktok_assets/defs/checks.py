"""Asset checks: the feature table as written on disk matches its documented schema."""


import dagster as dg
import pandas as pd

from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib.table_validation import validate_table


@dg.asset_check(asset="video_features", blocking=True,
                description="Parquet and CSV exist, columns and dtypes match the schema, one row per video.")
def video_features_schema(paths: ProjectPaths) -> dg.AssetCheckResult:
    layout = paths.layout()
    if not layout.table_parquet.exists() or not layout.table_csv.exists():
        return dg.AssetCheckResult(passed=False, description="table files are missing")
    frame = pd.read_parquet(layout.table_parquet)
    problems = validate_table(frame, pd.read_csv(layout.table_csv))
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"rows": len(frame), "problems": dg.MetadataValue.json(problems)},
    )
