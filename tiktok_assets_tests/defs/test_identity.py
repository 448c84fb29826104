"""Every video is itself: keys from paths, no silent repoint, replaced files redone, links and odd entries
handled, keys that could leave the data folder refused, deleted sources and removed partitions."""

import os
import shutil

import dagster as dg
import pandas as pd

from tiktok_assets import cli
from tiktok_assets.definitions import defs
from tiktok_assets.defs.assets.metadata import video_metadata
from tiktok_assets.defs.assets.table import video_features
from tiktok_assets.defs.model_resources import model_resources
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.sensors import RANGE_START, new_video_sensor
from tiktok_assets.defs.video_stage import VIDEO_CHECK
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout


def _age(path, seconds=120):
    old = os.lstat(path).st_mtime - seconds
    os.utime(path, (old, old), follow_symlinks=False)


def _tick(instance, data_dir):
    resources = {**model_resources(), "paths": ProjectPaths(data_dir=str(data_dir), settle_seconds=5)}
    with dg.build_sensor_context(instance=instance, definitions=defs(), resources=resources) as context:
        return new_video_sensor(context)


def _added(result) -> list[str]:
    return [k for r in result.dynamic_partitions_requests for k in r.partition_keys]


def test_same_name_in_two_folders_gives_two_videos(dagster_home, data_dir, sample_dir, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(sample_dir / "silent_cuts.mp4", tmp_path / folder / "clip.mp4")
    assert cli.main(["--data-dir", str(data_dir), "add", str(tmp_path / "a" / "clip.mp4"),
                     str(tmp_path / "b" / "clip.mp4")]) == 0
    layout = DataLayout(data_dir)
    entries = registry.registered(layout)
    assert sorted(e.source_path for e in entries) == [str(tmp_path / "a" / "clip.mp4"), str(tmp_path / "b" / "clip.mp4")]
    assert len({e.key for e in entries}) == 2 and "clip" in {e.key for e in entries}
    with dg.DagsterInstance.get() as instance:
        assert sorted(instance.get_dynamic_partitions(VIDEOS_PARTITION)) == sorted(e.key for e in entries)
    # registering the first again keeps its key: stable, and never repointed
    assert registry.register(layout, tmp_path / "a" / "clip.mp4").key == "clip"


def test_sensor_keys_sub_folders_and_handles_links_and_odd_entries(dagster_home, data_dir, sample_dir, tmp_path):
    videos = data_dir / "tiktok_videos"
    for folder in ("shop_a", "shop_b"):
        (videos / folder).mkdir()
        shutil.copy(sample_dir / "silent_cuts.mp4", videos / folder / "clip.mp4")
    shutil.copy(sample_dir / "silent_cuts.mp4", videos / "good.mp4")
    (videos / "link.mp4").symlink_to(videos / "good.mp4")
    shutil.copy(sample_dir / "silent_cuts.mp4", tmp_path / "outside.mp4")
    (videos / "escape.mp4").symlink_to(tmp_path / "outside.mp4")
    (videos / "loop.mp4").symlink_to(videos / "loop.mp4")
    os.mkfifo(videos / "pipe.mp4")
    (videos / "folder.mp4").mkdir()
    (videos / "empty.mp4").touch()
    for path in videos.rglob("*"):
        if not path.is_fifo() and (path.is_file() or path.is_symlink()):
            _age(path)
    _age(tmp_path / "outside.mp4")
    with dg.instance_for_test() as instance:
        result = _tick(instance, data_dir)  # must not raise on the loop, the FIFO or the folder
        added = _added(result)
        assert sorted(added) == sorted(["shop_a__clip", "shop_b__clip", "good", "link", "escape", "empty"])
        layout = DataLayout(data_dir)
        assert registry.lookup(layout, "link").source_path == str(videos / "link.mp4")  # its own video
        assert registry.lookup(layout, "good").source_path == str(videos / "good.mp4")  # not repointed
        instance.add_dynamic_partitions(VIDEOS_PARTITION, added)
        run = dg.materialize([video_metadata], instance=instance, partition_key="escape",
                             resources={"paths": ProjectPaths(data_dir=str(data_dir))})
        assert run.success
        check = next(e.event_specific_data for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")
        assert not check.passed and "link to a file outside the watched folder" in check.description
        assert isinstance(_tick(instance, data_dir), dg.SkipReason)


def test_a_file_replaced_in_place_is_redone(dagster_home, data_dir, sample_dir):
    videos = data_dir / "tiktok_videos"
    shutil.copy(sample_dir / "silent_cuts.mp4", videos / "clip.mp4")
    _age(videos / "clip.mp4")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(VIDEOS_PARTITION, _added(_tick(instance, data_dir)))
        layout = DataLayout(data_dir)
        before = registry.lookup(layout, "clip")
        assert isinstance(_tick(instance, data_dir), dg.SkipReason)  # unchanged: nothing to do
        shutil.copy(sample_dir / "soft_focus_speech.mp4", videos / "clip.mp4")  # same name, new content
        _age(videos / "clip.mp4")
        result = _tick(instance, data_dir)
        assert [r.tags[RANGE_START] for r in result.run_requests] == ["clip"] and not _added(result)
        after = registry.lookup(layout, "clip")
        assert after.content_hash != before.content_hash and after.size != before.size


def test_a_key_that_leaves_the_data_folder_is_refused(dagster_home, data_dir, tmp_path):
    evil = "../../../escaped"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(VIDEOS_PARTITION, [evil])  # as the UI or the API could
        run = dg.materialize([video_metadata], instance=instance, partition_key=evil,
                             resources={"paths": ProjectPaths(data_dir=str(data_dir))})
        assert run.success  # one bad key is that partition's problem, reported on it
        check = next(e.event_specific_data for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")
        assert check.check_name == VIDEO_CHECK and not check.passed and "invalid partition key" in check.description
        assert not list(tmp_path.parent.rglob("escaped"))  # nothing written anywhere
        table = dg.materialize([video_features], instance=instance,
                               resources={"paths": ProjectPaths(data_dir=str(data_dir))})
        assert table.success
        row = pd.read_parquet(DataLayout(data_dir).table_parquet).set_index("video_key").loc[evil]
        assert row["status"] == "failed" and "invalid partition key" in row["error"]


def test_deleted_source_keeps_its_results_and_remove_deletes_everything(dagster_home, data_dir, sample_dir):
    videos = data_dir / "tiktok_videos"
    for name in ("keep.mp4", "gone.mp4"):
        shutil.copy(sample_dir / "silent_cuts.mp4", videos / name)
    assert cli.main(["--data-dir", str(data_dir), "add", str(videos)]) == 0
    with dg.DagsterInstance.get() as instance:
        run = dg.materialize([video_metadata, video_features], instance=instance, partition_key="gone",
                             resources={"paths": ProjectPaths(data_dir=str(data_dir))})
        assert run.success
    (videos / "gone.mp4").unlink()
    assert cli.main(["--data-dir", str(data_dir), "remove", "keep"]) == 0
    layout = DataLayout(data_dir)
    table = pd.read_parquet(layout.table_parquet).set_index("video_key")
    assert list(table.index) == ["gone"]
    assert table.loc["gone", "status"] == "source_missing" and table.loc["gone", "duration_s"] > 0
    assert not layout.video("keep").out_dir.exists() and "keep" not in registry.lookup_many(layout, ["keep", "gone"])
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions(VIDEOS_PARTITION) == ["gone"]
    assert cli.main(["--data-dir", str(data_dir), "remove", "nope"]) == 2
