"""onscreen_text: OCR (RapidOCR, PP-OCRv4 ONNX on CPU) on the filtered frames, captions merged over frames."""

from collections.abc import Iterator

import dagster as dg

from tiktok_assets.defs.model_resources import OcrResource
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.video_stage import StageEvent, run_partitions, video_stage
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.media.frame_filter import read_filter_result
from tiktok_assets.lib.vision.ocr import MergeConfig, frames_to_read, ocr_frames, write_onscreen_text


class OnscreenTextSettings(dg.Config):
    min_similarity: float = 0.8  # readings on two frames are the same caption: text similarity (difflib ratio)...
    min_iou: float = 0.3  # ...and box overlap
    max_gap_frames: int = 1  # frames a caption may go unread on and still continue


@video_stage(
    "onscreen_text",
    group="vision",
    deps=["filtered_frames"],
    kinds={"onnx", "json"},
    description="RapidOCR (PP-OCRv4 detection + recognition, ONNX on CPU) on the kept frames and those dropped "
    "only as near-duplicates (a changed caption over a still picture is one), the full frame with its bars: "
    "lines with text, confidence and box; the same caption over consecutive frames merged into one line with "
    "its time span; vision/onscreen_text.json.",
)
def onscreen_text(
    context: dg.AssetExecutionContext, paths: ProjectPaths, ocr: OcrResource, config: OnscreenTextSettings
) -> Iterator[StageEvent]:
    layout = paths.layout()
    merge = MergeConfig(min_similarity=config.min_similarity, min_iou=config.min_iou,
                        max_gap_frames=config.max_gap_frames)

    def run(key: str, video: VideoLayout) -> dict:
        filtered = read_filter_result(video.filtered_frames_json)
        frames = [(f.time, video.frames_dir / f.file) for f in frames_to_read(filtered)]
        document = ocr_frames(ocr.load(), frames, merge)
        write_onscreen_text(video.onscreen_text_json, document)
        return {
            "frames": len(frames),
            "lines": len(document.lines),
            "model": ocr.model_name(),
            "text": document.text[:300] or "-",
        }

    yield from run_partitions(context, layout, "onscreen_text", run, unavailable=ocr.missing(),
                              model_families=("ocr",))
