"""Model-based visual stages: YOLO-World objects, CLIP representative frames, BLIP captions + CLIP
embeddings per representative frame, and the vision-language description and category."""

import dagster as dg
import numpy as np

from tiktok_assets.defs.batching import GPU_POOL, video_backfill_policy
from tiktok_assets.defs.model_resources import BlipResource, ClipResource, VlmResource, YoloWorldResource
from tiktok_assets.defs.partitions import videos_partitions
from tiktok_assets.defs.resources import CatalogueResource, ProjectPaths
from tiktok_assets.defs.stage_runner import run_partitions
from tiktok_assets.lib import atomic
from tiktok_assets.lib.contact_sheet import contact_sheet_markdown
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.multimodal import (
    EMBEDDINGS_DIR,
    FrameAnalysis,
    encode_product_prompts,
    load_detections,
    representative_paths,
    save_frame_analysis,
)
from tiktok_assets.lib.selection import (
    SelectionConfig,
    aggregate_objects,
    mean_embedding,
    select_representative,
)
from tiktok_assets.lib.status import read_status

DISABLED = "disabled"


class ObjectSettings(dg.Config):
    enabled: bool = True  # False: no detector (representative frames then use CLIP relevance only)


class SelectionSettings(dg.Config):
    detection_weight: float = 0.5
    mmr_lambda: float = 0.7
    duplicate_cosine: float = 0.99


def kept_frames(video: VideoLayout) -> list[dict]:
    return atomic.read_json(video.filtered_frames_json)["kept"]


def _outcome(result: dict) -> str:
    return str(result.get("status", "ok"))


@dg.asset(
    partitions_def=videos_partitions,
    group_name="vision",
    deps=["filtered_frames"],
    kinds={"pytorch", "json"},
    pool=GPU_POOL,
    backfill_policy=video_backfill_policy,
    description="YOLO-World (open vocabulary from the product vocabulary, prompts encoded offline with "
    "CLIP) on the filtered frames, batched: label, confidence, normalised box, is_product per frame.",
)
def frame_objects(
    context: dg.AssetExecutionContext,
    paths: ProjectPaths,
    yolo_world: YoloWorldResource,
    clip: ClipResource,
    catalogue: CatalogueResource,
    config: ObjectSettings,
) -> dg.MaterializeResult:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        frames = kept_frames(video)
        if not config.enabled:
            atomic.write_json(video.frame_objects_json, {"detector_ran": False, "frames": []})
            return {"status": DISABLED}
        vocab = catalogue.vocabulary()
        detector = yolo_world.load(clip.load(), list(vocab.names), list(vocab.product_names))
        images = [video.frames_dir / f["file"] for f in frames]
        detections = detector.detect(images, conf=yolo_world.confidence, batch_size=yolo_world.batch_size)
        product_conf = yolo_world.product_confidence
        rows = [
            {
                "time": f["time"],
                "file": f["file"],
                "detections": [d.to_json() for d in dets],
                "product_frame": any(d.is_product and d.confidence >= product_conf for d in dets),
            }
            for f, dets in zip(frames, detections, strict=True)
        ]
        summary = aggregate_objects(detections)
        atomic.write_json(
            video.frame_objects_json,
            {
                "detector_ran": True,
                "product_confidence": product_conf,
                "frames": rows,
                "objects": summary.to_json(),
            },
        )
        return {
            "status": "ok",
            "frames": len(rows),
            "objects_top": summary.top_string(5) or "-",
            "product_frame_ratio": round(sum(r["product_frame"] for r in rows) / max(len(rows), 1), 4),
        }

    return run_partitions(
        context,
        layout,
        "frame_objects",
        run,
        requires=["filtered_frames"],
        outcome=_outcome,
        model_families=("yolo_world", "clip"),
    )


@dg.asset(
    partitions_def=videos_partitions,
    group_name="vision",
    deps=["frame_objects"],
    kinds={"pytorch", "jpeg"},
    pool=GPU_POOL,
    backfill_policy=video_backfill_policy,
    description="open_clip embeddings of the filtered frames scored against the product prompts; 2-5 "
    "frames (k = clamp(round(sqrt(n)), 2, 5)) chosen by relevance + product detections with maximal "
    "marginal relevance; saved as tiktok_frames/<key>/representative_<t>s.jpg with "
    "representative_timestamps.json; per-frame embeddings as .npy.",
)
def representative_frames(
    context: dg.AssetExecutionContext,
    paths: ProjectPaths,
    clip: ClipResource,
    catalogue: CatalogueResource,
    config: SelectionSettings,
) -> dg.MaterializeResult:
    layout = paths.layout()
    selection_config = SelectionConfig(
        detection_weight=config.detection_weight,
        mmr_lambda=config.mmr_lambda,
        duplicate_cosine=config.duplicate_cosine,
    )
    prompts: dict[str, np.ndarray] = {}  # encoded once per run

    def run(key: str, video: VideoLayout) -> dict:
        encoder = clip.load()
        if "p" not in prompts:
            prompts["p"] = encode_product_prompts(encoder, catalogue.vocabulary())
        frames = kept_frames(video)
        detections, detector_ran = load_detections(video.frame_objects_json, frames)
        times, files = [f["time"] for f in frames], [f["file"] for f in frames]
        images = [video.frames_dir / f for f in files]
        embeddings = (
            encoder.encode_images(images, batch_size=clip.batch_size)
            if images
            else np.zeros((0, encoder.embed_dim), dtype=np.float32)
        )
        selection = select_representative(
            times, files, embeddings, prompts["p"], detections, selection_config
        )
        analysis = FrameAnalysis(
            times,
            files,
            embeddings,
            detections,
            selection,
            aggregate_objects(detections),
            mean_embedding(embeddings) if len(embeddings) else None,
            detector_ran,
        )
        save_frame_analysis(analysis, video.frames_dir, video.vision_dir, video.representative_dir)
        if analysis.mean_embedding is not None:
            np.save(video.vision_dir / "mean_embedding.npy", analysis.mean_embedding.astype(np.float32))
        return {
            "status": selection.status,
            "picked": len(selection.frames),
            "timestamps": dg.MetadataValue.json(selection.timestamps),
            "representative": dg.MetadataValue.md(
                contact_sheet_markdown(
                    representative_paths(video.representative_dir), "representative frames"
                )
            ),
        }

    return run_partitions(
        context,
        layout,
        "representative_frames",
        run,
        requires=["filtered_frames"],
        outcome=lambda r: "ok" if r["status"] in ("ok", "few_frames") else str(r["status"]),
        model_families=("clip",),
    )


@dg.asset(
    partitions_def=videos_partitions,
    group_name="vision",
    deps=["representative_frames"],
    kinds={"pytorch", "json"},
    pool=GPU_POOL,
    backfill_policy=video_backfill_policy,
    description="Per representative frame: its YOLO objects, a BLIP caption and its CLIP embedding (.npy).",
)
def frame_features(
    context: dg.AssetExecutionContext, paths: ProjectPaths, blip: BlipResource
) -> dg.MaterializeResult:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        reps = atomic.read_json(video.representative_dir / "representative_timestamps.json")["frames"]
        images = [video.representative_dir / r["file"] for r in reps]
        captions = (
            blip.load().caption(images, max_new_tokens=blip.max_new_tokens, batch_size=blip.batch_size)
            if images
            else []
        )
        frames = [{"file": r["source_frame"], "time": r["time"]} for r in reps]
        detections, _ = load_detections(video.frame_objects_json, frames)
        embeddings_index = {
            e["frame"]: e["embedding"]
            for e in atomic.read_json(video.vision_dir / EMBEDDINGS_DIR / "index.json")
        }
        rows = [
            {
                "time": r["time"],
                "file": r["file"],
                "caption": caption,
                "objects": [d.to_json() for d in dets],
                "clip_embedding": str(
                    video.vision_dir / EMBEDDINGS_DIR / embeddings_index[r["source_frame"]]
                ),
            }
            for r, caption, dets in zip(reps, captions, detections, strict=True)
        ]
        atomic.write_json(video.frame_features_json, {"frames": rows})
        return {"status": "ok" if rows else "no_frames", "captions": dg.MetadataValue.json(captions)}

    return run_partitions(
        context,
        layout,
        "frame_features",
        run,
        requires=["representative_frames"],
        outcome=lambda r: "ok",
        model_families=("blip",),
    )


@dg.asset(
    partitions_def=videos_partitions,
    group_name="vision",
    deps=["representative_frames", "transcript"],
    kinds={"pytorch", "json"},
    pool=GPU_POOL,
    backfill_policy=video_backfill_policy,
    description="Vision-language model (Qwen2.5-VL) on the representative frames + transcript: a short "
    "description and a three-level category constrained to the taxonomy (strict JSON, one retry).",
)
def video_understanding(
    context: dg.AssetExecutionContext, paths: ProjectPaths, vlm: VlmResource, catalogue: CatalogueResource
) -> dg.MaterializeResult:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        images = representative_paths(video.representative_dir)
        text = ""
        status = read_status(video, "transcript")
        if status and status.status == "ok" and video.transcript_json.exists():
            text = atomic.read_json(video.transcript_json).get("text", "")
        result = vlm.load().describe(images, text, catalogue.taxonomy(), max_new_tokens=vlm.max_new_tokens)
        atomic.write_json(video.understanding_json, result.to_json())
        return {
            "status": result.status,
            "description": result.description or "",
            "category": " > ".join(result.category or []),
            "category_source": result.category_source,
            "attempts": result.attempts,
        }

    return run_partitions(
        context,
        layout,
        "video_understanding",
        run,
        requires=["representative_frames"],
        outcome=_outcome,
        model_families=("vlm",),
    )
