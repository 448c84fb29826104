"""video_metadata: container and stream facts for each video."""


from dataclasses import asdict

import dagster as dg

from tiktok_assets.defs.batching import video_backfill_policy
from tiktok_assets.defs.partitions import videos_partitions
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.stage_runner import run_partitions
from tiktok_assets.lib import atomic, registry
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.probe import probe_video


@dg.asset(
    partitions_def=videos_partitions,
    backfill_policy=video_backfill_policy,
    group_name="media",
    kinds={"ffmpeg", "json"},
    description="Duration, display size, rotation, frame rates, codecs, bitrates and file size (ffprobe).",
)
def video_metadata(context: dg.AssetExecutionContext, paths: ProjectPaths) -> dg.MaterializeResult:
    layout = paths.layout()

    def probe(key: str, video: VideoLayout) -> dict:
        entry = registry.lookup(layout, key)
        meta = probe_video(entry.source_path)
        atomic.write_json(video.metadata_json, {"source_path": entry.source_path, **asdict(meta)})
        return {
            "source_path": entry.source_path,
            "duration_s": meta.duration_s,
            "resolution": f"{meta.width}x{meta.height}",
            "rotation": meta.rotation,
            "avg_frame_rate": meta.avg_frame_rate,
            "video_codec": meta.video_codec,
            "has_audio": meta.has_audio,
            "file_size_bytes": meta.file_size_bytes,
        }

    return run_partitions(context, layout, "video_metadata", probe)
