"""End to end on a real clip: frames -> filter -> CLIP + YOLO-World -> selection -> artifacts -> BLIP, VLM."""

import json

import numpy as np
import pytest

from tiktok_assets.lib.media.frame_filter import filter_frames
from tiktok_assets.lib.media.frames import extract_candidates
from tiktok_assets.lib.models.blip import load_blip
from tiktok_assets.lib.models.clip import load_clip
from tiktok_assets.lib.models.vlm import load_vlm
from tiktok_assets.lib.models.yolo_world import load_yolo_world
from tiktok_assets.lib.samples import generate_samples
from tiktok_assets.lib.vision.multimodal import (
    TIMESTAMPS_JSON,
    analyse_frames,
    encode_product_prompts,
    load_frame_embeddings,
    representative_paths,
    save_frame_analysis,
)
from tiktok_assets.lib.vision.taxonomy import load_taxonomy
from tiktok_assets.lib.vision.vocabulary import load_vocabulary
from tiktok_assets_tests.lib.vision_fixtures import *


@pytest.fixture(scope="module")
def kept_frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("mm_clip")
    generate_samples(root, names=["silent_cuts"])  # 6 s, three shots: testsrc2, smptehdbars, mandelbrot
    frames_dir = root / "frames"
    frames_dir.mkdir()
    candidates = extract_candidates(root / "silent_cuts.mp4", frames_dir)
    result = filter_frames(candidates, frames_dir)
    assert len(result.kept) >= 2
    return result.kept, frames_dir


def test_vision_pipeline_artifacts_and_columns(kept_frames, tiny_clip_dir, tiny_yolo_world_pt, tiny_blip_dir,
                                               tiny_vlm_dir, tmp_path):
    kept, frames_dir = kept_frames
    vocabulary = load_vocabulary()
    clip = load_clip(tiny_clip_dir, device="cpu")
    detector = load_yolo_world(clip, vocabulary.names, vocabulary.product_names, model=tiny_yolo_world_pt,
                               device="cpu", imgsz=320)
    detections = detector.detect([frames_dir / f.file for f in kept], conf=0.0001)
    analysis = analyse_frames(kept, frames_dir, clip, encode_product_prompts(clip, vocabulary), detections)
    assert analysis.embeddings.shape == (len(kept), 512)
    assert len(analysis.detections) == len(kept)
    assert 2 <= len(analysis.selection.frames) <= 5
    out = tmp_path / "out"
    paths = save_frame_analysis(analysis, frames_dir, out)
    times, matrix = load_frame_embeddings(out)
    assert times == analysis.times and np.allclose(matrix, analysis.embeddings)
    reps = representative_paths(paths["representative"])
    assert [p.name for p in reps] == [f"representative_{t:08.3f}s.jpg" for t in analysis.selection.timestamps]
    assert all(p.is_file() and p.stat().st_size > 0 for p in reps)
    assert json.loads((paths["representative"] / TIMESTAMPS_JSON).read_text())["status"] == "ok"
    json.loads(paths["detections"].read_text())

    # a second save with fewer picks leaves no stale representative frames behind
    analysis.selection.frames = analysis.selection.frames[:1]
    save_frame_analysis(analysis, frames_dir, out)
    assert len(list(paths["representative"].glob("representative_*.jpg"))) == 1
    reps = representative_paths(paths["representative"])

    captions = load_blip(tiny_blip_dir, device="cpu").caption(reps, max_new_tokens=4)
    understanding = load_vlm(tiny_vlm_dir, device="cpu").describe(reps, "a glowing serum", load_taxonomy(),
                                                                  max_new_tokens=6)
    assert len(captions) == 1 and all(isinstance(c, str) for c in captions)
    assert understanding.status == "unparsable" and understanding.description is None  # random weights
    assert analysis.detector_ran and len(analysis.mean_embedding) == 512
    assert np.isclose(np.linalg.norm(analysis.mean_embedding), 1.0, atol=1e-4)
    assert 0.0 <= analysis.objects.product_frame_ratio <= 1.0


def test_selection_without_detector_uses_clip_alone(kept_frames, tiny_clip_dir):
    kept, frames_dir = kept_frames
    clip = load_clip(tiny_clip_dir, device="cpu")
    analysis = analyse_frames(kept, frames_dir, clip, encode_product_prompts(clip, load_vocabulary()))
    assert not analysis.detector_ran and analysis.detections == [[] for _ in kept]
    assert 2 <= len(analysis.selection.frames) <= 5
