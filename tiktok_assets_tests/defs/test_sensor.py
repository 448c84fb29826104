"""new_video_sensor: exactly the new, complete, visible video files become partitions."""

import os
import time

import dagster as dg

from tiktok_assets.definitions import defs
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.sensors import new_video_sensor
from tiktok_assets.lib import registry
from tiktok_assets.lib.keys import partition_key_for
from tiktok_assets.lib.schema import STAGES

PARTITIONED_ASSETS = STAGES


def _age(path, seconds=120):
    old = time.time() - seconds
    os.utime(path, (old, old))


def _tick(instance, data_dir):
    context = dg.build_sensor_context(instance=instance, definitions=defs(),
                                      resources={"paths": ProjectPaths(data_dir=str(data_dir))})
    return new_video_sensor(context)


def _requested(result) -> tuple[set[str], set[str]]:
    """(partition keys, unpartitioned assets) of the single backfill the sensor requests."""
    assert len(result.run_requests) == 1
    subset = result.run_requests[0].asset_graph_subset
    keys = {p for key, sub in subset.partitions_subsets_by_asset_key.items() for p in sub.get_partition_keys()}
    per_asset = {len(list(sub.get_partition_keys())) for sub in subset.partitions_subsets_by_asset_key.values()}
    assert len(per_asset) == 1  # every per-video asset gets every new partition
    assert len(subset.partitions_subsets_by_asset_key) == len(PARTITIONED_ASSETS)
    return keys, {k.to_user_string() for k in subset.non_partitioned_asset_keys}


def test_sensor_adds_exactly_the_new_files(dagster_home, data_dir, sample_dir):
    videos = data_dir / "tiktok_videos"
    for name in ["product_talk.mp4", "silent cuts (copy).mp4"]:
        (videos / name).write_bytes((sample_dir / "silent_cuts.mp4").read_bytes())
        _age(videos / name)
    (videos / ".hidden.mp4").write_bytes(b"x" * 100)
    (videos / "notes.txt").write_text("not a video")
    (videos / "empty.mp4").touch()
    (videos / "growing.mp4").write_bytes(b"x" * 100)  # written just now: still being copied
    _age(videos / ".hidden.mp4")
    _age(videos / "notes.txt")
    _age(videos / "empty.mp4")

    with dg.instance_for_test() as instance:
        result = _tick(instance, data_dir)
        expected = sorted([partition_key_for("product_talk.mp4"), partition_key_for("silent cuts (copy).mp4")])
        keys, unpartitioned = _requested(result)
        assert sorted(keys) == expected and unpartitioned == {"video_features"}
        added = result.dynamic_partitions_requests[0]
        assert sorted(added.partition_keys) == expected and added.partitions_def_name == VIDEOS_PARTITION
        # The tick as the sensor daemon evaluates it (validates the backfill request against the target).
        context = dg.build_sensor_context(instance=instance, definitions=defs(),
                                          resources={"paths": ProjectPaths(data_dir=str(data_dir))})
        data = new_video_sensor.evaluate_tick(context)
        assert len(data.run_requests) == 1 and data.run_requests[0].requires_backfill_daemon()
        layout = ProjectPaths(data_dir=str(data_dir)).layout()
        assert registry.lookup(layout, expected[1]).file_name == "silent cuts (copy).mp4"

        instance.add_dynamic_partitions(VIDEOS_PARTITION, expected)
        assert isinstance(_tick(instance, data_dir), dg.SkipReason)  # nothing new on the next tick

        _age(videos / "growing.mp4")  # the copy finished
        result = _tick(instance, data_dir)
        assert _requested(result)[0] == {"growing"}


def test_a_drop_of_1000_files_is_handled_in_one_tick(dagster_home, data_dir):
    videos = data_dir / "tiktok_videos"
    for i in range(1000):
        path = videos / f"drop_{i:04d}.mp4"
        path.write_bytes(b"\x00" * 16)
        _age(path)
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = _tick(instance, data_dir)
        elapsed = time.perf_counter() - started
    assert len(_requested(result)[0]) == 1000
    assert len(result.dynamic_partitions_requests[0].partition_keys) == 1000
    assert elapsed < 60  # Dagster's default sensor tick timeout
