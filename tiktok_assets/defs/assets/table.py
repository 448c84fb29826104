"""video_features: the one-row-per-video feature table (CSV + Parquet)."""


import dagster as dg
import pandas as pd

from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib.table.schema import COLUMNS, REQUIRED, STAGES, UNIQUE
from tiktok_assets.lib.table.table_dataset import COMPACT_MAX_ROWS, compact, update_dataset

# The declared column schema, on the asset's definition: the UI shows it before any materialization.
TABLE_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn(c.name, c.type_name, description=c.description,
                            constraints=dg.TableColumnConstraints(nullable=c.name not in REQUIRED, unique=c.name == UNIQUE))
             for c in COLUMNS]
)


class TableConfig(dg.Config):
    full_rebuild: bool = False  # build every row again from the per-video artifacts
    compact: bool | None = None  # write the one-file CSV + Parquet; empty: while the table is small


@dg.asset(
    group_name="table",
    deps=STAGES,
    kinds={"pandas", "parquet", "csv"},
    metadata={"dagster/column_schema": TABLE_SCHEMA},
    description="One row per registered video with every feature and a status/error/time per stage. Updated "
    "after every run of per-video stages (feature_table_sensor) and at the end of a run that selects it: "
    "the rows of the videos that changed, in data/video_features_dataset/ (Parquet shards by key); "
    "data/video_features_results.csv and .parquet (replaced together) are written from the shards while the "
    f"table has at most {COMPACT_MAX_ROWS:,} rows, or when the run's config asks (compact: true).",
)
def video_features(context: dg.AssetExecutionContext, config: TableConfig, paths: ProjectPaths) -> dg.MaterializeResult:
    layout = paths.layout()
    update = update_dataset(layout, context.instance.get_dynamic_partitions(VIDEOS_PARTITION), full=config.full_rebuild)
    compacted = config.compact if config.compact is not None else update.rows <= COMPACT_MAX_ROWS
    if compacted:
        compact(layout)
    failed = pd.DataFrame(update.failed, columns=["video_key", "error"])
    return dg.MaterializeResult(
        metadata={  # bounded whatever the catalogue's size: the UI loads this with the asset page
            "dagster/row_count": update.rows,
            "rows_rebuilt": update.rebuilt,
            "rows_dropped": update.dropped,
            "shards_written": update.shards_written,
            "dataset": dg.MetadataValue.path(str(layout.table_dataset)),
            "compacted": compacted,
            **({"csv": dg.MetadataValue.path(str(layout.table_csv)),
                "parquet": dg.MetadataValue.path(str(layout.table_parquet))} if compacted else {}),
            "status_counts": dg.MetadataValue.json(update.status_counts),
            "failed_videos": dg.MetadataValue.md(
                failed.to_markdown(index=False) if len(failed) else "_none_"),
        }
    )
