"""new_video_sensor: a video that lands in the watched folder becomes a partition and is processed."""


import os

import dagster as dg

from tiktok_assets.defs.jobs import video_pipeline
from tiktok_assets.defs.partitions import VIDEOS_PARTITION, videos_partitions
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib import registry
from tiktok_assets.lib.watch import find_new_videos

SETTLE_SECONDS = float(os.environ.get("TIKTOK_ASSETS_SETTLE_SECONDS", "10"))


@dg.sensor(
    job=video_pipeline,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds every new, fully written video in data/tiktok_videos/ as a partition and requests "
    "its materialization. Hidden, non-video, empty and still-growing files are ignored.",
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
        run_requests=[dg.RunRequest(partition_key=key, run_key=f"video:{key}") for key in keys],
        dynamic_partitions_requests=[videos_partitions.build_add_request(keys)],
    )
