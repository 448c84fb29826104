"""new_video_sensor: a video that lands in the watched folder becomes a partition and is processed.

All the videos found in one tick go into ONE asset backfill (every per-video asset for the new
partitions, then the feature table once). The backfill honours each asset's backfill policy, so
model stages get batches of videos per run (models load once per run) instead of one run per video.
"""

import os

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey

from tiktok_assets.defs.partitions import VIDEOS_PARTITION, videos_partitions
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib import registry
from tiktok_assets.lib.watch import find_new_videos

SETTLE_SECONDS = float(os.environ.get("TIKTOK_ASSETS_SETTLE_SECONDS", "10"))
SENSOR_TAG = "tiktok_assets/sensor"


def backfill_request(asset_graph, keys: list[str]) -> dg.RunRequest:
    """One backfill of every partitioned asset for ``keys`` plus the unpartitioned table."""
    wanted: set[AssetKeyPartitionKey] = set()
    for asset_key in asset_graph.materializable_asset_keys:
        if asset_graph.get(asset_key).is_partitioned:
            wanted.update(AssetKeyPartitionKey(asset_key, key) for key in keys)
        else:
            wanted.add(AssetKeyPartitionKey(asset_key, None))
    subset = AssetGraphSubset.from_asset_partition_set(wanted, asset_graph)
    return dg.RunRequest.for_asset_graph_subset(subset, tags={SENSOR_TAG: "new_video_sensor"})


@dg.sensor(
    asset_selection=dg.AssetSelection.all(),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds every new, fully written video in data/tiktok_videos/ as a partition and launches one "
    "backfill for them. Hidden, non-video, empty and still-growing files are ignored.",
)
def new_video_sensor(context: dg.SensorEvaluationContext, paths: ProjectPaths) -> dg.SensorResult | dg.SkipReason:
    layout = paths.layout()
    known = set(context.instance.get_dynamic_partitions(VIDEOS_PARTITION))
    new, growing = find_new_videos(layout.videos_dir, known, SETTLE_SECONDS)
    if not new:
        return dg.SkipReason(f"no new videos in {layout.videos_dir} ({growing} still being written)")
    for video in new:
        registry.register(layout, video.path)
    keys = [v.key for v in new]
    context.log.info(f"adding {len(keys)} videos ({growing} still being written)")
    return dg.SensorResult(
        run_requests=[backfill_request(context.repository_def.asset_graph, keys)],
        dynamic_partitions_requests=[videos_partitions.build_add_request(keys)],
    )
