"""video_metadata: container and stream facts for each video. As the root of every per-video run it
checks the tools every stage needs first: a missing FFmpeg is one run failure, not a row per video.
(Each model stage reports its own missing weights once per run, see video_stage.run_partitions.)"""

import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import dagster as dg

from tiktok_assets.defs.model_resources import model_resources, stage_plan
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.video_stage import StageEvent, run_partitions, video_stage
from tiktok_assets.lib import atomic
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.errors import VideoInputError
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.media.input_policy import InputLimits
from tiktok_assets.lib.media.probe import probe_video

REQUIRED_TOOLS = ("ffmpeg", "ffprobe")


def refuse_links_out_of(folder: Path, source: Path) -> None:
    """A file in the watched folder that is a link to a file outside it is not read."""
    if source.is_relative_to(folder.absolute()) and not source.resolve().is_relative_to(folder.resolve()):
        raise VideoInputError(f"{source.name} is a link to a file outside the watched folder ({source.resolve()})")


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


class InputLimitSettings(dg.Config):
    """Inputs over these limits are refused with a row error before any decoding."""

    max_file_gb: float = 4.0
    max_duration_s: float = 3600.0
    max_side_px: int = 8192
    max_frame_rate: float = 240.0

    def limits(self) -> InputLimits:
        return InputLimits(int(self.max_file_gb * 1024**3), self.max_duration_s, self.max_side_px,
                           self.max_frame_rate)


@video_stage(
    "video_metadata",
    deps=["video_file"],
    group="media",
    kinds={"ffmpeg", "json"},
    description="Duration, display size, rotation, frame rates, codecs, bitrates and file size (ffprobe). "
    "Refuses what is not a local file in an allowed container (playlists, concat files) and what is over "
    "the size, duration, resolution or frame-rate limits.",
)
def video_metadata(
    context: dg.AssetExecutionContext, paths: ProjectPaths, config: InputLimitSettings
) -> Iterator[StageEvent]:
    tools = missing_tools()
    if tools:  # a system problem: reported once for the run, never copied into each video's row
        raise dg.Failure(f"{', '.join(tools)} not found on PATH: install FFmpeg (e.g. apt-get install ffmpeg)")
    # The run's first step says once what the run can do (model resources as the code location loaded
    # them; each model stage re-checks its own resource, run config included, before its videos).
    context.log.info(f"preflight:\n{stage_plan(model_resources()).summary()}")
    layout = paths.layout()

    def probe(key: str, video: VideoLayout) -> dict:
        entry = registry.lookup(layout, key)
        refuse_links_out_of(layout.videos_dir, Path(entry.source_path))
        meta = probe_video(entry.source_path, config.limits())
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

    yield from run_partitions(context, layout, "video_metadata", probe)
