"""Asset checks: the feature table as written on disk matches its documented schema."""


import dagster as dg

from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib.table.table_dataset import COMPACT_MAX_ROWS
from tiktok_assets.lib.table.table_validation import (
    load_passed,
    save_passed,
    validate_dataset,
    validate_files,
)


@dg.asset_check(asset="video_features", blocking=True,
                description="Every shard of the dataset has the declared schema, each video has one row in "
                "the shard of its key, failed rows say why (a shard unchanged since it last passed is not read "
                "again); while the table is small, the compacted Parquet and CSV also exist, pass the declared "
                "schema's value checks and hold the same rows.")
def video_features_schema(paths: ProjectPaths) -> dg.AssetCheckResult:
    layout = paths.layout()
    check = validate_dataset(layout.table_dataset, load_passed(layout))
    save_passed(layout, check.passed)
    rows, problems = check.rows, check.problems
    if not problems and rows <= COMPACT_MAX_ROWS:
        if not layout.table_parquet.exists() or not layout.table_csv.exists():
            problems = ["the compacted table files are missing"]
        else:
            problems = validate_files(layout.table_parquet, layout.table_csv)
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"rows": rows, "shards_read": check.read, "problems": dg.MetadataValue.json(problems[:20])},
    )
