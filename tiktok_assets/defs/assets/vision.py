"""Model-based visual stages: objects (YOLO-World, or a closed-set detector), CLIP representative frames,
BLIP captions + CLIP embeddings per representative frame, and the vision-language description and category."""

from collections.abc import Iterator

import dagster as dg
import numpy as np

from tiktok_assets.defs.assets.frames import load_content_box
from tiktok_assets.defs.batching import GPU_POOL
from tiktok_assets.defs.model_resources import (
    CLOSED_SET_FAMILY,
    BlipResource,
    ClipResource,
    VlmResource,
    YoloWorldResource,
)
from tiktok_assets.defs.resources import CatalogueResource, ProjectPaths
from tiktok_assets.defs.video_stage import StageEvent, run_partitions, video_stage
from tiktok_assets.lib import atomic
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.media.bars import ContentBox
from tiktok_assets.lib.media.contact_sheet import contact_sheet_markdown
from tiktok_assets.lib.media.crop import model_inputs
from tiktok_assets.lib.media.frame_filter import FrameVerdict, read_filter_result
from tiktok_assets.lib.status import DISABLED, stage_done
from tiktok_assets.lib.vision.multimodal import (
    EMBEDDINGS_DIR,
    analyse_frames,
    encode_product_prompts,
    load_detections,
    representative_paths,
    save_frame_analysis,
)
from tiktok_assets.lib.vision.ocr import read_onscreen_text
from tiktok_assets.lib.vision.selection import (
    SelectionConfig,
    aggregate_objects,
)


class ObjectSettings(dg.Config):
    enabled: bool = True  # False: no detector (representative frames then use CLIP relevance only)


class SelectionSettings(dg.Config):
    detection_weight: float = 0.5
    mmr_lambda: float = 0.7
    duplicate_cosine: float = 0.99
    same_shot_penalty: float = 0.2


def kept_frames(video: VideoLayout) -> list[FrameVerdict]:
    return read_filter_result(video.filtered_frames_json).kept


def content_box_of(video: VideoLayout) -> ContentBox | None:
    """The picture inside the video's bars (candidate_frames), which is what the models see; None: full frame."""
    return load_content_box(video) if video.frames_index_json.exists() else None


def onscreen_text_of(video: VideoLayout) -> str:
    """The video's on-screen text (OCR lines joined by ` | `) when onscreen_text ran for it, else ""."""
    if not stage_done(video, "onscreen_text") or not video.onscreen_text_json.exists():
        return ""
    return read_onscreen_text(video.onscreen_text_json).text


def detections_of(video: VideoLayout, files: list[str]) -> tuple[list, bool]:
    """The detector's boxes for the frame ``files`` when frame_objects ran for this video, else none."""
    if not stage_done(video, "frame_objects"):
        return [[] for _ in files], False
    return load_detections(video.frame_objects_json, files)


@video_stage(
    "frame_objects",
    group="vision",
    deps=["filtered_frames"],
    kinds={"pytorch", "json"},
    pool=GPU_POOL,
    description="YOLO-World (open vocabulary from the product vocabulary, prompts encoded offline with "
    "CLIP), or a closed-set Ultralytics detector with its classes mapped onto the vocabulary "
    "(TIKTOK_ASSETS_DETECTOR_MODEL), on the filtered frames, batched: label, confidence, normalised box, "
    "is_product per frame.",
)
def frame_objects(
    context: dg.AssetExecutionContext,
    paths: ProjectPaths,
    yolo_world: YoloWorldResource,
    clip: ClipResource,
    catalogue: CatalogueResource,
    config: ObjectSettings,
) -> Iterator[StageEvent]:
    layout = paths.layout()
    closed_set = yolo_world.closed_set()
    backend = "closed_set" if closed_set else "yolo_world"

    def run(key: str, video: VideoLayout) -> dict:
        frames = kept_frames(video)
        if not config.enabled:
            video.frame_objects_json.unlink(missing_ok=True)
            return {"status": DISABLED}
        detector = yolo_world.detector(catalogue.vocabulary(), clip.load)
        box = content_box_of(video)
        images = model_inputs([video.frames_dir / f.file for f in frames], box)
        detections = [[d.in_frame(box) for d in dets]  # boxes normalised to the full frame
                      for dets in detector.detect(images, conf=yolo_world.confidence,
                                                  batch_size=yolo_world.batch_size)]
        product_conf = yolo_world.product_confidence
        rows = [
            {
                "time": f.time,
                "file": f.file,
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
                "detector": {"model": yolo_world.model_name(), "backend": backend},
                "product_confidence": product_conf,
                "frames": rows,
                "objects": summary.to_json(),
            },
        )
        return {
            "frames": len(rows),
            "model": yolo_world.model_name(),
            "backend": backend,
            "objects_top": summary.top_string(5) or "-",
            "product_frame_ratio": round(sum(r["product_frame"] for r in rows) / max(len(rows), 1), 4),
        }

    unavailable = (yolo_world.missing() or (None if closed_set else clip.missing())) if config.enabled else None
    yield from run_partitions(context, layout, "frame_objects", run, unavailable=unavailable,
                              model_families=("yolo_world", CLOSED_SET_FAMILY, "clip"))


@video_stage(
    "representative_frames",
    group="vision",
    deps=["frame_objects"],
    kinds={"pytorch", "jpeg"},
    pool=GPU_POOL,
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
) -> Iterator[StageEvent]:
    layout = paths.layout()
    selection_config = SelectionConfig(
        detection_weight=config.detection_weight,
        mmr_lambda=config.mmr_lambda,
        duplicate_cosine=config.duplicate_cosine,
        same_shot_penalty=config.same_shot_penalty,
    )
    prompts: dict[str, np.ndarray] = {}  # encoded once per run

    def run(key: str, video: VideoLayout) -> dict:
        encoder = clip.load()
        if "p" not in prompts:
            prompts["p"] = encode_product_prompts(encoder, catalogue.vocabulary())
        frames = kept_frames(video)
        detections, detector_ran = detections_of(video, [f.file for f in frames])
        analysis = analyse_frames(frames, video.frames_dir, encoder, prompts["p"],
                                  detections if detector_ran else None, clip_batch_size=clip.batch_size,
                                  selection_config=selection_config, content_box=content_box_of(video),
                                  shots=[f.shot for f in frames])
        selection = analysis.selection
        save_frame_analysis(analysis, video.frames_dir, video.vision_dir, video.representative_dir)
        if analysis.mean_embedding is not None:
            np.save(video.vision_dir / "mean_embedding.npy", analysis.mean_embedding.astype(np.float32))
        return {
            "selection": selection.status,
            "model": clip.model_name(),
            "picked": len(selection.frames),
            "timestamps": dg.MetadataValue.json(selection.timestamps),
            "representative": dg.MetadataValue.md(
                contact_sheet_markdown(
                    representative_paths(video.representative_dir), "representative frames"
                )
            ),
        }

    yield from run_partitions(context, layout, "representative_frames", run, unavailable=clip.missing(),
                              model_families=("clip",))


@video_stage(
    "frame_features",
    group="vision",
    deps=["representative_frames"],
    kinds={"pytorch", "json"},
    pool=GPU_POOL,
    description="Per representative frame: its YOLO objects, a BLIP caption and its CLIP embedding (.npy).",
)
def frame_features(
    context: dg.AssetExecutionContext, paths: ProjectPaths, blip: BlipResource
) -> Iterator[StageEvent]:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        reps = atomic.read_json(video.representative_dir / "representative_timestamps.json")["frames"]
        images = [video.representative_dir / r["file"] for r in reps]
        captions = (
            blip.load().caption(model_inputs(images, content_box_of(video)), max_new_tokens=blip.max_new_tokens,
                                batch_size=blip.batch_size)
            if images
            else []
        )
        detections, _ = detections_of(video, [r["source_frame"] for r in reps])
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
        return {"frames": len(rows), "captions": dg.MetadataValue.json(captions), "model": blip.model_name()}

    yield from run_partitions(context, layout, "frame_features", run, unavailable=blip.missing(),
                              model_families=("blip",))


@video_stage(
    "video_understanding",
    group="vision",
    deps=["representative_frames", "transcript", "onscreen_text"],
    kinds={"pytorch", "json"},
    pool=GPU_POOL,
    description="Vision-language model (Qwen2.5-VL) on the representative frames + transcript + on-screen "
    "text (OCR), each when its stage ran: a short "
    "description, a three-level category constrained to the taxonomy, and a content type and target audience "
    "constrained to their lists (strict JSON, one retry).",
)
def video_understanding(
    context: dg.AssetExecutionContext, paths: ProjectPaths, vlm: VlmResource, catalogue: CatalogueResource
) -> Iterator[StageEvent]:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        images = model_inputs(representative_paths(video.representative_dir), content_box_of(video))
        text = ""
        if stage_done(video, "transcript") and video.transcript_json.exists():
            text = atomic.read_json(video.transcript_json).get("text", "")
        result = vlm.load().describe(images, text, catalogue.taxonomy(), max_new_tokens=vlm.max_new_tokens,
                                     onscreen_text=onscreen_text_of(video), labels=catalogue.content_labels())
        atomic.write_json(video.understanding_json, result.to_json())
        return {
            "answer": result.status,
            "model": vlm.model_name(),
            "description": result.description or "",
            "category": " > ".join(result.category or []),
            "category_source": result.category_source,
            "content_type": result.content_type.label or "",
            "target_audience": result.target_audience.label or "",
            "attempts": result.attempts,
        }

    yield from run_partitions(context, layout, "video_understanding", run, unavailable=vlm.missing(),
                              model_families=("vlm",))
