"""candidate_frames and filtered_frames: keyframes from one decode pass, then black/blur/duplicate
filtering on small grayscale copies."""


from collections.abc import Iterator
from dataclasses import asdict

import dagster as dg

from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.video_stage import StageEvent, run_partitions, video_stage
from tiktok_assets.lib import atomic
from tiktok_assets.lib.contact_sheet import contact_sheet_markdown
from tiktok_assets.lib.frame_filter import FilterConfig, filter_frames
from tiktok_assets.lib.frames import CandidateFrame, ExtractConfig, extract_candidates
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.status import stage_done


class CandidateFramesSettings(dg.Config):
    per_second: bool = True
    iframes: bool = True
    highlight_min_confidence: float = 0.6
    jpeg_quality: int = 90
    max_side: int = 1920


class FilterSettings(dg.Config):
    black_mean: float = 18.0
    black_p95: float = 40.0
    blur_absolute: float = 0.65
    blur_margin: float = 0.25
    ssim_threshold: float = 0.8


def highlight_times(video: VideoLayout, min_confidence: float) -> list[float]:
    """Middles of confident voice-activity segments (none when voice activity did not run)."""
    if not stage_done(video, "speech_segments"):
        return []
    segments = atomic.read_json(video.speech_segments_json).get("segments", [])
    return [round((s["start"] + s["end"]) / 2, 3) for s in segments if s["confidence"] >= min_confidence]


def load_candidates(video: VideoLayout) -> list[CandidateFrame]:
    index = atomic.read_json(video.frames_index_json)
    return [CandidateFrame(**{k: v for k, v in f.items() if k != "path"}) for f in index["frames"]]


@video_stage(
    "candidate_frames",
    group="frames",
    deps=["video_metadata", "speech_segments"],
    kinds={"pyav", "jpeg"},
    description="One decode pass: I-frames, one frame per second and highlight frames at the middle of "
    "speech segments, saved as JPEGs in data/tiktok_frames/<video>/ with frames_index.json.",
)
def candidate_frames(
    context: dg.AssetExecutionContext, paths: ProjectPaths, config: CandidateFramesSettings
) -> Iterator[StageEvent]:
    layout = paths.layout()
    extract_config = ExtractConfig(per_second=config.per_second, iframes=config.iframes,
                                   jpeg_quality=config.jpeg_quality, max_side=config.max_side)

    def extract(key: str, video: VideoLayout) -> dict:
        meta = atomic.read_json(video.metadata_json)
        highlights = highlight_times(video, config.highlight_min_confidence)
        with atomic.atomic_dir(video.frames_dir) as tmp:
            frames = extract_candidates(meta["source_path"], tmp, highlights, extract_config)
            atomic.write_json(tmp / video.frames_index_json.name, {
                "video": key,
                "duration_s": meta["duration_s"],
                "frames": [{**asdict(f), "path": str(video.frames_dir / f.file)} for f in frames],
            })
        kinds: dict[str, int] = {}
        for f in frames:
            for kind in f.kinds:
                kinds[kind] = kinds.get(kind, 0) + 1
        return {"candidates": len(frames), **{f"{k}_frames": v for k, v in kinds.items()},
                "frames_dir": dg.MetadataValue.path(str(video.frames_dir))}

    yield from run_partitions(context, layout, "candidate_frames", extract)


@video_stage(
    "filtered_frames",
    group="frames",
    deps=["candidate_frames"],
    kinds={"opencv", "json"},
    description="Candidate frames without black, blurred (relative to the video) and near-duplicate "
    "(SSIM > 0.8 against the last kept frame) frames; every drop keeps its reason and score.",
)
def filtered_frames(
    context: dg.AssetExecutionContext, paths: ProjectPaths, config: FilterSettings
) -> Iterator[StageEvent]:
    layout = paths.layout()
    filter_config = FilterConfig(black_mean=config.black_mean, black_p95=config.black_p95,
                                 blur_absolute=config.blur_absolute, blur_margin=config.blur_margin,
                                 ssim_threshold=config.ssim_threshold)

    def run(key: str, video: VideoLayout) -> dict:
        result = filter_frames(load_candidates(video), video.frames_dir, filter_config)
        atomic.write_json(video.filtered_frames_json, result.to_json())
        return {
            **result.counts,
            "kept_timestamps": dg.MetadataValue.json([v.time for v in result.kept]),
            "contact_sheet": dg.MetadataValue.md(
                contact_sheet_markdown([video.frames_dir / v.file for v in result.kept], "kept frames")),
        }

    yield from run_partitions(context, layout, "filtered_frames", run)
