"""video_similarity: near-duplicate and re-upload groups across videos (lib/catalogue/similarity.py)."""

from collections.abc import Iterator

import dagster as dg

from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.video_stage import StageEvent, run_partitions, video_stage
from tiktok_assets.lib.catalogue.similarity import K_NEAREST, project_store, video_signature, write_similarity
from tiktok_assets.lib.layout import VideoLayout


class SimilaritySettings(dg.Config):
    k: int = K_NEAREST  # nearest neighbours the index returns per frame hash and per embedding


@video_stage(
    "video_similarity",
    group="similarity",
    deps=["filtered_frames", "music_recognition", "representative_frames"],
    kinds={"usearch", "sqlite"},
    description="Near-duplicate and re-upload groups: a 64-bit perceptual hash of each kept frame (model-free), "
    "the Chromaprint of music_recognition and the mean CLIP embedding of representative_frames, each when its "
    "stage ran. The video is compared only with its k nearest neighbours in the usearch indexes of "
    "data/similarity/, then added; duplicate_group = the key of its group's first video.",
)
def video_similarity(
    context: dg.AssetExecutionContext, paths: ProjectPaths, config: SimilaritySettings
) -> Iterator[StageEvent]:
    layout = paths.layout()
    with project_store(layout, k=config.k) as store:

        def run(key: str, video: VideoLayout) -> dict:
            signature = video_signature(key, video)
            result = store.add(signature, record=lambda r: write_similarity(video, r.group, r))
            return {
                "duplicate_group": result.group,
                "duplicates": dg.MetadataValue.json([{"key": m.key, **m.signals()} for m in result.duplicates]),
                "compared": result.compared,
                "regrouped": len(result.regrouped),
                "signals": ", ".join(name for name, present in (
                    ("frames", len(signature.hashes) > 0), ("audio", signature.chromaprint.size > 0),
                    ("clip", signature.clip is not None)) if present) or "none",
            }

        yield from run_partitions(context, layout, "video_similarity", run)
