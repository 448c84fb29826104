"""Jobs: the per-video pipeline (every partitioned asset) and the feature table."""

import dagster as dg

from tiktok_assets.defs.partitions import videos_partitions

video_pipeline = dg.define_asset_job(
    "video_pipeline",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("video_features"),
    partitions_def=videos_partitions,
    description="Every per-video stage for the selected partitions.",
)
feature_table = dg.define_asset_job(
    "feature_table",
    selection=dg.AssetSelection.assets("video_features"),
    description="Rebuild video_features_results.csv / .parquet from the per-video artifacts.",
)
