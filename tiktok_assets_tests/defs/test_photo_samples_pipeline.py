"""The photo sample clips through the Dagster vision chain with the real closed-set detector (YOLO11n
COCO INT8, ../shared) and the tiny CLIP / BLIP / VLM: the table's objects_top names what each clip shows
(samples.json's per-segment COCO objects, as the class map labels them)."""

import os

import dagster as dg
import pandas as pd
import pytest

from tiktok_assets.definitions import defs as load_defs
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.sensors import RANGE_END, RANGE_START
from tiktok_assets.lib import atomic
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.vision.class_map import load_class_map
from tiktok_assets_tests.conftest import copy_clip
from tiktok_assets_tests.defs.test_closed_set_pipeline import STAGES, object_counts
from tiktok_assets_tests.lib.vision_fixtures import YOLO11N_OPENVINO, needs_shared

# ~1-2 min of Dagster run for the five 6 s clips on 2 cores, plus building the tiny models when no other test did.
pytestmark = [pytest.mark.slow, needs_shared]


@pytest.fixture(scope="module")
def photo_run(photo_sample_dir, photo_samples, model_env, tmp_path_factory):
    root = tmp_path_factory.mktemp("photo_chain")
    layout = DataLayout(root / "data")
    env = {**model_env, "TIKTOK_ASSETS_DATA_DIR": str(layout.root),
           "TIKTOK_ASSETS_DETECTOR_MODEL": str(YOLO11N_OPENVINO)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        keys = {}
        for name in photo_samples:
            clip = copy_clip(photo_sample_dir / f"{name}.mp4", layout.videos_dir / f"{name}.mp4")
            keys[name] = registry.register(layout, clip).key
        ordered = sorted(keys.values())
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(VIDEOS_PARTITION, ordered)
            job = load_defs().resolve_implicit_global_asset_job_def()
            result = job.execute_in_process(instance=instance, raise_on_error=False,
                                            asset_selection=[dg.AssetKey(s) for s in STAGES],
                                            tags={RANGE_START: ordered[0], RANGE_END: ordered[-1]})
            yield layout, keys, result
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_objects_top_names_the_ground_truth_objects_of_every_photo_clip(photo_run, photo_samples):
    layout, keys, result = photo_run
    assert result.success
    table = pd.read_parquet(layout.table_parquet).set_index("video_key")
    class_map = load_class_map()
    for name, clip in photo_samples.items():
        row = table.loc[keys[name]]
        assert row["frame_objects_status"] == "ok" and row["detector_model"] == YOLO11N_OPENVINO.name
        top = object_counts(row["objects_top"])
        frames = atomic.read_json(layout.video(keys[name]).frame_objects_json)["frames"]
        for seg in clip.segments:
            shown = [f for f in frames if seg.start <= f["time"] < seg.end]
            assert shown, (name, seg)
            for f in shown:  # every kept frame of the shot shows its objects
                labels = {d["label"] for d in f["detections"]}
                assert {class_map.label(o) for o in seg.objects} <= labels, (name, f["time"], labels)
                if not seg.objects:  # the rocket: nothing COCO knows
                    assert not f["detections"], (name, f)
            for obj in seg.objects:
                assert top[class_map.label(obj)] >= len(shown), (name, row["objects_top"])
        # A cup is a product (mug); a cat, a bus, people, a motorcycle are not.
        assert row["product_frame_ratio"] == (1.0 if name == "coffee_review" else 0.0), name
