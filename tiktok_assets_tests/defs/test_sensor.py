"""new_video_sensor: exactly the new, complete, visible video files become partitions (an empty file
too: it gets a row with its error instead of waiting forever)."""

import os
import time

import dagster as dg

from tiktok_assets.definitions import defs
from tiktok_assets.defs import sensors
from tiktok_assets.defs.batching import MODEL_BATCH
from tiktok_assets.defs.model_resources import model_resources
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.sensors import RANGE_END, RANGE_START, feature_table_sensor, new_video_sensor
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.catalogue.keys import partition_key_for
from tiktok_assets.lib.layout import DataLayout


def _age(path, seconds=120):
    old = time.time() - seconds
    os.utime(path, (old, old))


def _resources(data_dir) -> dict:
    # 60 s: a file written during the test stays "still being written" however slow the machine
    return {**model_resources(), "paths": ProjectPaths(data_dir=str(data_dir), settle_seconds=60)}


def _tick(instance, data_dir):
    with dg.build_sensor_context(instance=instance, definitions=defs(), resources=_resources(data_dir)) as context:
        return new_video_sensor(context)


def _requested(result) -> list[list[str]]:
    """The batches of partition keys the tick's run requests cover (ranges over the keys it adds, in order)."""
    added = list(result.dynamic_partitions_requests[0].partition_keys)
    batches = []
    for request in result.run_requests:
        first, last = added.index(request.tags[RANGE_START]), added.index(request.tags[RANGE_END])
        batches.append(added[first:last + 1])
    assert [k for b in batches for k in b] == added  # every new video exactly once
    assert all(len(b) <= MODEL_BATCH for b in batches)
    return batches


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
        expected = sorted([partition_key_for("product_talk.mp4"), partition_key_for("silent cuts (copy).mp4"),
                           "empty"])
        assert sorted(k for b in _requested(result) for k in b) == expected
        added = result.dynamic_partitions_requests[0]
        assert sorted(added.partition_keys) == expected and added.partitions_def_name == VIDEOS_PARTITION
        # The tick as the sensor daemon evaluates it (validates the run requests against the target).
        with dg.build_sensor_context(instance=instance, definitions=defs(), resources=_resources(data_dir)) as ctx:
            data = new_video_sensor.evaluate_tick(ctx)
        assert len(data.run_requests) == 1 and not data.run_requests[0].requires_backfill_daemon()
        layout = ProjectPaths(data_dir=str(data_dir)).layout()
        assert registry.lookup(layout, expected[2]).file_name == "silent cuts (copy).mp4"

        instance.add_dynamic_partitions(VIDEOS_PARTITION, expected)
        assert isinstance(_tick(instance, data_dir), dg.SkipReason)  # nothing new on the next tick

        _age(videos / "growing.mp4")  # the copy finished
        result = _tick(instance, data_dir)
        assert _requested(result) == [["growing"]]


def test_a_page_of_1000_files_is_handled_in_one_tick(dagster_home, data_dir, monkeypatch):
    monkeypatch.setattr(sensors, "MAX_NEW_PER_TICK", 1000)  # twice the default page
    videos = data_dir / "tiktok_videos"
    for i in range(1000):
        path = videos / f"drop_{i:04d}.mp4"
        path.write_bytes(b"\x00" * 16)
        _age(path)
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = _tick(instance, data_dir)
        elapsed = time.perf_counter() - started
    batches = _requested(result)
    assert len(batches) == -(-1000 // MODEL_BATCH) and sum(map(len, batches)) == 1000
    assert len(result.dynamic_partitions_requests[0].partition_keys) == 1000
    assert elapsed < 60  # Dagster's default sensor tick timeout


def test_a_bigger_drop_is_taken_a_page_per_tick(dagster_home, data_dir, monkeypatch):
    monkeypatch.setattr(sensors, "MAX_NEW_PER_TICK", 40)
    videos = data_dir / "tiktok_videos"
    for i in range(100):
        path = videos / f"drop_{i:03d}.mp4"
        path.write_bytes(i.to_bytes(2, "little"))
        _age(path)
    added: list[str] = []
    with dg.instance_for_test() as instance:
        for expected in (40, 40, 20):
            result = _tick(instance, data_dir)
            page = list(result.dynamic_partitions_requests[0].partition_keys)
            assert len(page) == expected and sum(map(len, _requested(result))) == expected
            assert len(result.asset_events) == expected  # an observation of each new file's data version
            instance.add_dynamic_partitions(VIDEOS_PARTITION, page)  # what the daemon does with the request
            added += page
        assert isinstance(_tick(instance, data_dir), dg.SkipReason)
    assert added == [f"drop_{i:03d}" for i in range(100)]  # in name order, each once
    assert len(registry.registered(DataLayout(data_dir))) == 100


def test_an_unapplied_tick_loses_nothing_and_idle_ticks_list_no_folder(dagster_home, data_dir):
    """The scan's record of clean folders is written by the tick, but a folder that had new files is
    listed again: if the daemon never applied the tick's result (it died), the next tick asks again."""
    videos = data_dir / "tiktok_videos"
    for i in range(3):
        (videos / "drop").mkdir(exist_ok=True)
        (videos / "drop" / f"clip_{i}.mp4").write_bytes(bytes([i]) * 16)
        _age(videos / "drop" / f"clip_{i}.mp4")
    _age(videos / "drop")
    _age(videos)
    with dg.instance_for_test() as instance:
        first = list(_tick(instance, data_dir).dynamic_partitions_requests[0].partition_keys)
        assert len(first) == 3
        assert list(_tick(instance, data_dir).dynamic_partitions_requests[0].partition_keys) == first
        instance.add_dynamic_partitions(VIDEOS_PARTITION, first)
        assert "1 folders listed" in _tick(instance, data_dir).skip_message  # drop/, to find it clean
        assert "0 folders listed" in _tick(instance, data_dir).skip_message
        (videos / "drop" / "clip_1.mp4").unlink()  # a removal lists the folder once more
        _age(videos / "drop")
        assert "1 folders listed" in _tick(instance, data_dir).skip_message


def test_files_replaced_in_place_are_checked_a_page_per_tick(dagster_home, data_dir, monkeypatch):
    """Rewriting a file in place does not move its folder's time: the replaced check stats registered
    files, STAT_PAGE per tick, resuming where the last tick ended (the sensor's cursor)."""
    monkeypatch.setattr(sensors, "STAT_PAGE", 2)
    videos = data_dir / "tiktok_videos"
    for i in range(3):
        (videos / f"clip_{i}.mp4").write_bytes(bytes([i]) * 16)
        _age(videos / f"clip_{i}.mp4")
    _age(videos)
    with dg.instance_for_test() as instance:
        keys = list(_tick(instance, data_dir).dynamic_partitions_requests[0].partition_keys)
        instance.add_dynamic_partitions(VIDEOS_PARTITION, keys)
        (videos / "clip_2.mp4").write_bytes(b"another video, rewritten in place")
        _age(videos / "clip_2.mp4", 60)
        _age(videos)  # as if the folder's time had not moved (it does not for an in-place rewrite)
        cursors, replaced = [None], []
        for _ in range(3):
            with dg.build_sensor_context(instance=instance, definitions=defs(), resources=_resources(data_dir),
                                         cursor=cursors[-1]) as context:
                result = new_video_sensor(context)
                cursors.append(context.cursor)
            replaced.append([r.tags[RANGE_START] for r in result.run_requests]
                            if isinstance(result, dg.SensorResult) else [])
    assert replaced == [[], ["clip_2"], []]  # rows 1-2, then row 3 (replaced), then rows 1-2 again
    assert cursors[1:] == ["2", "0", "2"]


def _table_tick(instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, definitions=defs(), cursor=cursor)
    return feature_table_sensor(context), context.cursor


def test_feature_table_sensor_asks_for_one_table_after_runs_of_video_stages(dagster_home, data_dir):
    """Runs of per-video stages that ended (succeeded or failed) lead to ONE feature_table run per
    tick; nothing when only other runs ended or when the table is newer than the last of them."""
    with dg.instance_for_test() as instance:
        assert isinstance(_table_tick(instance)[0], dg.SkipReason)
        pipeline = defs().resolve_job_def("video_pipeline")
        instance.report_run_failed(instance.create_run_for_job(pipeline))
        instance.report_run_canceled(instance.create_run_for_job(pipeline))
        request, cursor = _table_tick(instance)
        assert isinstance(request, dg.RunRequest)
        assert isinstance(_table_tick(instance, cursor)[0], dg.SkipReason)  # those runs are accounted for
        instance.report_runless_asset_event(dg.AssetMaterialization("video_features"))
        assert isinstance(_table_tick(instance, cursor)[0], dg.SkipReason)  # the table is newer
        instance.report_run_failed(instance.create_run_for_job(pipeline))
        assert isinstance(_table_tick(instance, cursor)[0], dg.RunRequest)


def _event(instance, run: dg.DagsterRun, event_type: dg.DagsterEventType, at: float, data=None) -> None:
    """Store one event of ``run`` as if written at ``at`` (run starts and ends take their times from it)."""
    from dagster._core.events import DagsterEvent
    from dagster._core.events.log import EventLogEntry

    instance.handle_new_event(EventLogEntry(
        error_info=None, level="debug", user_message="", run_id=run.run_id, timestamp=at,
        dagster_event=DagsterEvent(event_type.value, job_name=run.job_name, event_specific_data=data)))


def test_feature_table_sensor_redoes_a_table_that_started_before_a_video_run_ended(dagster_home, data_dir):
    """A table run that started while a video run was still writing may have missed that run's last
    outputs, though its materialization is newer than the run's end: the sensor asks for another table.
    A table run that started after the last video run ended is current."""
    from dagster._core.events import StepMaterializationData

    with dg.instance_for_test() as instance:
        pipeline, table_job = defs().resolve_job_def("video_pipeline"), defs().resolve_job_def("feature_table")
        video_run, table_run = instance.create_run_for_job(pipeline), instance.create_run_for_job(table_job)
        now = time.time()
        materialized = StepMaterializationData(dg.AssetMaterialization("video_features"))
        _event(instance, video_run, dg.DagsterEventType.RUN_START, now - 30)
        _event(instance, table_run, dg.DagsterEventType.RUN_START, now - 20)  # reads the outputs ...
        _event(instance, video_run, dg.DagsterEventType.RUN_SUCCESS, now - 15)  # ... the video run ends ...
        _event(instance, table_run, dg.DagsterEventType.ASSET_MATERIALIZATION, now - 10, materialized)
        _event(instance, table_run, dg.DagsterEventType.RUN_SUCCESS, now - 9)  # ... the table is written
        request, _ = _table_tick(instance)
        assert isinstance(request, dg.RunRequest), request

        again = instance.create_run_for_job(table_job)  # the table run it asked for
        _event(instance, again, dg.DagsterEventType.RUN_START, now - 5)
        _event(instance, again, dg.DagsterEventType.ASSET_MATERIALIZATION, now - 4, materialized)
        _event(instance, again, dg.DagsterEventType.RUN_SUCCESS, now - 3)
        another = instance.create_run_for_job(pipeline)  # a run that ended before that table run started
        _event(instance, another, dg.DagsterEventType.RUN_START, now - 8)
        _event(instance, another, dg.DagsterEventType.RUN_FAILURE, now - 6)
        skip, _ = _table_tick(instance)
        assert isinstance(skip, dg.SkipReason) and "after the last run ended" in (skip.skip_message or ""), skip


def test_feature_table_sensor_leaves_a_run_that_wrote_the_table_itself(dagster_home, data_dir):
    """A run that selects the stages and the table (`--select '*'`) wrote the table after its stages (the
    table depends on them): its own end asks for no other table run, another run's end does."""
    from dagster._core.events import StepMaterializationData

    with dg.instance_for_test() as instance:
        everything = defs().resolve_implicit_global_asset_job_def()
        run = instance.create_run_for_job(everything, asset_selection=frozenset(
            {*sensors.STAGE_KEYS, dg.AssetKey("video_features")}))
        now = time.time()
        _event(instance, run, dg.DagsterEventType.RUN_START, now - 30)
        _event(instance, run, dg.DagsterEventType.ASSET_MATERIALIZATION, now - 12,
               StepMaterializationData(dg.AssetMaterialization("video_features")))
        _event(instance, run, dg.DagsterEventType.RUN_SUCCESS, now - 10)
        skip, cursor = _table_tick(instance)
        assert isinstance(skip, dg.SkipReason) and "wrote the table themselves" in (skip.skip_message or "")
        other = instance.create_run_for_job(defs().resolve_job_def("video_pipeline"))
        _event(instance, other, dg.DagsterEventType.RUN_START, now - 25)
        _event(instance, other, dg.DagsterEventType.RUN_FAILURE, now - 5)
        assert isinstance(_table_tick(instance, cursor)[0], dg.RunRequest)
