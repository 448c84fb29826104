"""video_features: the one-row-per-video feature table (CSV + Parquet)."""


import dagster as dg

from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib import registry
from tiktok_assets.lib.registry import RegisteredVideo
from tiktok_assets.lib.schema import COLUMNS, REQUIRED, STAGES, UNIQUE
from tiktok_assets.lib.table import build_table, write_table

# The declared column schema, on the asset's definition: the UI shows it before any materialization.
TABLE_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn(c.name, c.type_name, description=c.description,
                            constraints=dg.TableColumnConstraints(nullable=c.name not in REQUIRED, unique=c.name == UNIQUE))
             for c in COLUMNS]
)


def registered_videos(instance: dg.DagsterInstance, paths: ProjectPaths) -> list[RegisteredVideo]:
    """Every video partition, with its registry entry (a partition whose entry is gone still gets a row)."""
    keys = instance.get_dynamic_partitions(VIDEOS_PARTITION)
    found = registry.lookup_many(paths.layout(), keys)
    # not registered, or an invalid key: still a row, with its error
    return [found.get(key) or RegisteredVideo(key=key, source_path="", file_name="", registered_at="") for key in keys]


@dg.asset(
    group_name="table",
    deps=STAGES,
    kinds={"pandas", "parquet", "csv"},
    metadata={"dagster/column_schema": TABLE_SCHEMA},
    description="One row per registered video with every feature and a status/error/time per stage; "
    "data/video_features_results.csv and .parquet, replaced together. Rewritten after every run of "
    "per-video stages (feature_table_sensor), and at the end of a run that selects it.",
)
def video_features(context: dg.AssetExecutionContext, paths: ProjectPaths) -> dg.MaterializeResult:
    layout = paths.layout()
    frame = build_table(layout, registered_videos(context.instance, paths))
    write_table(frame, layout.table_csv, layout.table_parquet)
    counts = frame["status"].value_counts().to_dict()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "csv": dg.MetadataValue.path(str(layout.table_csv)),
            "parquet": dg.MetadataValue.path(str(layout.table_parquet)),
            "status_counts": dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()}),
            "failed_videos": dg.MetadataValue.md(  # bounded: the UI loads this with the asset page
                frame.loc[frame["status"] == "failed", ["video_key", "error"]].head(20).to_markdown(index=False)
                if (frame["status"] == "failed").any() else "_none_"
            ),
        }
    )
