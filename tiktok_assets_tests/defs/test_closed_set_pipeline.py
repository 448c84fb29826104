"""The whole vision chain through Dagster with the real closed-set detector (YOLO11n COCO INT8, ../shared)
and the tiny CLIP / BLIP / VLM: objects -> representative frames (detection bonus) -> captions -> VLM ->
table. The clip is made of two real photographs: ultralytics' bus.jpg, then scikit-image's coffee cup."""

import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import ultralytics
from skimage import data as skimage_data
from skimage import io as skimage_io

from tiktok_assets.definitions import defs as load_defs
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.sensors import RANGE_END, RANGE_START
from tiktok_assets.lib import atomic
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets_tests.conftest import ffmpeg
from tiktok_assets_tests.lib.vision_fixtures import YOLO11N_OPENVINO, needs_shared

BUS_JPG = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
SECONDS = 3  # per photograph
STAGES = ["video_metadata", "candidate_frames", "filtered_frames", "frame_objects", "representative_frames",
          "frame_features", "video_understanding", "video_features"]

# ~25 s of Dagster run on 2 cores, plus ~25-40 s building the tiny models when no other test did yet.
pytestmark = [pytest.mark.slow, needs_shared]


def object_counts(value) -> dict[str, int]:
    """The row's objects_top as {label: frames}, from `label:frames;...` text or a list of {label, frames}."""
    if isinstance(value, str):
        return {label: int(n) for label, n in (item.rsplit(":", 1) for item in value.split(";"))}
    return {item["label"]: int(item["frames"]) for item in value}


def build_photo_clip(folder: Path, target: Path) -> Path:
    """bus.jpg (810x1080) for SECONDS s, then the coffee photo (600x400, letterboxed) for SECONDS s: 720x960."""
    coffee = folder / "coffee.png"
    skimage_io.imsave(coffee, skimage_data.coffee())
    fit = "scale=720:960:force_original_aspect_ratio=decrease,pad=720:960:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=30"
    ffmpeg("-loop", "1", "-t", str(SECONDS), "-i", str(BUS_JPG), "-loop", "1", "-t", str(SECONDS), "-i", str(coffee),
           "-filter_complex", f"[0:v]{fit}[a];[1:v]{fit}[b];[a][b]concat=n=2:v=1[v]", "-map", "[v]",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(target))
    return target


@pytest.fixture(scope="module")
def chain_run(model_env, tmp_path_factory):
    root = tmp_path_factory.mktemp("closed_set_chain")
    layout = DataLayout(root / "data")
    layout.videos_dir.mkdir(parents=True)
    env = {**model_env, "TIKTOK_ASSETS_DATA_DIR": str(layout.root), "TIKTOK_ASSETS_DETECTOR_MODEL": str(YOLO11N_OPENVINO)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        build_photo_clip(root, layout.videos_dir / "bus_then_coffee.mp4")
        key = registry.register(layout, layout.videos_dir / "bus_then_coffee.mp4").key
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(VIDEOS_PARTITION, [key])
            job = load_defs().resolve_implicit_global_asset_job_def()
            result = job.execute_in_process(instance=instance, raise_on_error=False,
                                            asset_selection=[dg.AssetKey(s) for s in STAGES],
                                            tags={RANGE_START: key, RANGE_END: key})
            yield layout, key, result
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_the_detector_sees_the_bus_the_people_and_the_cup(chain_run):
    layout, key, result = chain_run
    assert result.success
    objects = atomic.read_json(layout.video(key).frame_objects_json)
    assert objects["detector"] == {"model": YOLO11N_OPENVINO.name, "backend": "closed_set"}
    frames = objects["frames"]
    bus_frames = [f for f in frames if f["time"] < SECONDS]
    cup_frames = [f for f in frames if f["time"] >= SECONDS]
    assert bus_frames and cup_frames
    for f in bus_frames:
        labels = [d["label"] for d in f["detections"]]
        assert "bus" in labels and labels.count("person") >= 3 and not f["product_frame"], labels
    for f in cup_frames:
        cups = [d for d in f["detections"] if d.get("model_label") == "cup"]
        assert cups and cups[0]["label"] == "mug" and cups[0]["is_product"] and f["product_frame"], f


def test_representative_frames_get_the_detection_bonus(chain_run):
    layout, key, _ = chain_run
    video = layout.video(key)
    picks = atomic.read_json(video.vision_dir / "selection.json")["frames"]
    coffee = [p for p in picks if p["time"] >= SECONDS]
    assert coffee and all(p["detection_bonus"] > 0 for p in coffee)  # 0.5 x the cup's confidence
    assert all(p["detection_bonus"] == 0 for p in picks if p["time"] < SECONDS)  # a bus is not a product
    features = atomic.read_json(video.frame_features_json)["frames"]
    assert any(o["label"] == "mug" and o["model_label"] == "cup" for f in features for o in f["objects"])
    assert len(features) == len(picks) and all(isinstance(f["caption"], str) for f in features)


def test_the_table_names_what_is_in_the_clip(chain_run):
    layout, key, _ = chain_run
    row = pd.read_parquet(layout.table_parquet).set_index("video_key").loc[key]
    for stage in ["frame_objects", "representative_frames", "frame_features", "video_understanding"]:
        assert row[f"{stage}_status"] in ("ok", "unparsable"), (stage, row[f"{stage}_error"])
    assert row["detector_model"] == YOLO11N_OPENVINO.name
    top = object_counts(row["objects_top"])
    assert {"bus", "person", "mug"} <= set(top), row["objects_top"]
    frames = len(atomic.read_json(layout.video(key).frame_objects_json)["frames"])
    assert top["bus"] + top["mug"] == frames  # every kept frame shows one or the other
    assert 0 < row["product_frame_ratio"] < 1
    assert row["product_frame_ratio"] == pytest.approx(top["mug"] / frames, abs=1e-4)
    assert row["representative_frame_count"] >= 2
