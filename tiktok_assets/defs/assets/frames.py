"""candidate_frames and filtered_frames: keyframes, content box (bars) and shots from one decode
pass, then black/blur/duplicate filtering on small grayscale copies of the content area."""


from collections.abc import Iterator
from dataclasses import asdict

import dagster as dg

from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.video_stage import StageEvent, run_partitions, video_stage
from tiktok_assets.lib import atomic
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.media.bars import ContentBox
from tiktok_assets.lib.media.contact_sheet import contact_sheet_markdown
from tiktok_assets.lib.media.decode_integrity import decode_warning
from tiktok_assets.lib.media.frame_filter import FilterConfig, filter_frames
from tiktok_assets.lib.media.frames import CandidateFrame, ExtractConfig, extract_video
from tiktok_assets.lib.media.shots import Shot, ShotResult
from tiktok_assets.lib.status import stage_done


class CandidateFramesSettings(dg.Config):
    per_second: bool = True
    iframes: bool = True
    highlight_min_confidence: float = 0.6
    jpeg_quality: int = 90
    max_side: int = 1920


class FilterSettings(dg.Config):
    black_luma: int = 32
    black_ratio: float = 0.98
    black_flat_std: float = 3.0
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


def load_content_box(video: VideoLayout) -> ContentBox | None:
    box = atomic.read_json(video.frames_index_json).get("content_box")
    return ContentBox.from_json(box) if box else None


def load_shots(video: VideoLayout) -> list[Shot] | None:
    path = video.shots_json
    return ShotResult.from_json(atomic.read_json(path)).shots if path.exists() else None


@video_stage(
    "candidate_frames",
    group="frames",
    deps=["video_metadata", "speech_segments"],
    kinds={"pyav", "jpeg"},
    description="One decode pass (past corrupt packets, counted: a short or damaged decode makes the row "
    "partial): I-frames, one frame per second, highlight frames at the middle of speech segments and shot starts, saved as JPEGs in data/tiktok_frames/<video>/ with frames_index.json "
    "(and the content box inside letterbox / pillarbox bars); shots in outputs/<video>/shots.json.",
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
            extraction = extract_video(meta["source_path"], tmp, highlights, extract_config)
            frames = extraction.frames
            atomic.write_json(tmp / video.frames_index_json.name, {
                "video": key,
                "duration_s": meta["duration_s"],
                "content_box": extraction.content_box.to_json(),
                "decode": extraction.decode.to_json(),
                "frames": [{**asdict(f), "path": str(video.frames_dir / f.file)} for f in frames],
            })
        shots = extraction.shots.to_json()
        atomic.write_json(video.shots_json, shots)
        decode = extraction.decode
        declared = decode.declared_seconds or meta["duration_s"]
        kinds: dict[str, int] = {}
        for f in frames:
            for kind in f.kinds:
                kinds[kind] = kinds.get(kind, 0) + 1
        return {"warning": decode_warning("video", decode.decoded_seconds, declared, decode.errors),
                "decoded_seconds": decode.decoded_seconds, "decode_errors": decode.errors,
                "candidates": len(frames), **{f"{k}_frames": v for k, v in kinds.items()},
                "content_box": extraction.content_box.as_string(), "shot_count": shots["shot_count"],
                "cuts_per_minute": shots["cuts_per_minute"],
                "frames_dir": dg.MetadataValue.path(str(video.frames_dir))}

    yield from run_partitions(context, layout, "candidate_frames", extract)


@video_stage(
    "filtered_frames",
    group="frames",
    deps=["candidate_frames"],
    kinds={"opencv", "json"},
    description="Candidate frames without black (empty: >= 98 % dark pixels or flat), blurred (relative to "
    "the video) and near-duplicate (SSIM > 0.8 against the last kept frame; never a shot's only frame) "
    "frames, judged on the content area; every drop keeps its reason and score.",
)
def filtered_frames(
    context: dg.AssetExecutionContext, paths: ProjectPaths, config: FilterSettings
) -> Iterator[StageEvent]:
    layout = paths.layout()
    filter_config = FilterConfig(black_luma=config.black_luma, black_ratio=config.black_ratio,
                                 black_flat_std=config.black_flat_std,
                                 blur_absolute=config.blur_absolute, blur_margin=config.blur_margin,
                                 ssim_threshold=config.ssim_threshold)

    def run(key: str, video: VideoLayout) -> dict:
        result = filter_frames(load_candidates(video), video.frames_dir, filter_config,
                               load_content_box(video), load_shots(video))
        atomic.write_json(video.filtered_frames_json, result.to_json())
        return {
            **result.counts,
            "kept_timestamps": dg.MetadataValue.json([v.time for v in result.kept]),
            "contact_sheet": dg.MetadataValue.md(
                contact_sheet_markdown([video.frames_dir / v.file for v in result.kept], "kept frames")),
        }

    yield from run_partitions(context, layout, "filtered_frames", run)
