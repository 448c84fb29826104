"""Stale results in Dagster: the source file is an observed asset whose data version is its content
hash; a replaced file makes exactly that video's stages stale, a model switch exactly the stages that
use the model, and `tiktok-assets stale --run` redoes exactly those."""

import os
import shutil
import subprocess
import sys
import time

import dagster as dg
import pytest

from tiktok_assets.definitions import defs
from tiktok_assets.defs.assets.video_file import VIDEO_FILE, video_file
from tiktok_assets.defs.model_resources import model_resources
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.sensors import new_video_sensor
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.samples import make_clip
from tiktok_assets.lib.status import read_status
from tiktok_assets.lib.table.schema import STAGES as ALL_STAGES

STAGES = ["video_metadata", "audio_wav", "transcript"]


def _age(path, seconds=120):
    old = os.stat(path).st_mtime - seconds
    os.utime(path, (old, old))


def _tick(instance, data_dir):
    """One sensor tick; its observations reported as the daemon does with a SensorResult."""
    resources = {**model_resources(), "paths": ProjectPaths(data_dir=str(data_dir), settle_seconds=5)}
    with dg.build_sensor_context(instance=instance, definitions=defs(), resources=resources) as context:
        result = new_video_sensor(context)
    if isinstance(result, dg.SensorResult):
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
    return result


def _cli(data_dir, env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tiktok_assets.cli", "--data-dir", str(data_dir), *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600, check=False)


def _stale_lines(result: subprocess.CompletedProcess) -> dict[tuple[str, str], str]:
    assert result.returncode == 0, result.stdout + result.stderr
    found = {}
    for line in result.stdout.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[0] in ("a", "b"):
            found[(parts[0], parts[1])] = parts[2]
    return found


def _downstream(stage: str) -> set[str]:
    graph, found, todo = defs().resolve_asset_graph(), set(), [dg.AssetKey(stage)]
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child.to_user_string() not in found:
                found.add(child.to_user_string())
                todo.append(child)
    return found


@pytest.mark.slow  # ten CLI processes, each loading the code location
def test_replaced_file_and_model_switch_make_exactly_their_stages_stale(dagster_home, data_dir, model_env, tmp_path):
    """Runs and staleness checks go through the CLI in fresh processes, as a reloaded code location: the
    code versions are computed from the environment a process loads with."""
    videos = data_dir / "tiktok_videos"
    small = {"width": 180, "height": 320, "fps": 15, "duration": 3.0}
    make_clip(videos / "a.mp4", speech_text="Fresh lemons on sale today.", **small)
    make_clip(videos / "b.mp4", has_audio=False, **small)
    for key in ("a", "b"):
        _age(videos / f"{key}.mp4")
    whisper_b = tmp_path / "whisper-b"
    shutil.copytree(model_env["TIKTOK_ASSETS_WHISPER_MODEL"], whisper_b)
    model_a = {"TIKTOK_ASSETS_WHISPER_MODEL": model_env["TIKTOK_ASSETS_WHISPER_MODEL"]}
    model_b = {"TIKTOK_ASSETS_WHISPER_MODEL": str(whisper_b)}
    layout = DataLayout(data_dir)
    with dg.DagsterInstance.get() as instance:
        _tick(instance, data_dir)  # registers a and b and records their files' data versions
        observed = instance.get_latest_data_version_record(VIDEO_FILE, is_source=True, partition_key="a")
        assert observed.asset_observation.tags["dagster/data_version"] == registry.lookup(layout, "a").content_hash
    first = _cli(data_dir, model_a, "run")
    assert first.returncode in (0, 1), first.stdout + first.stderr
    assert _stale_lines(_cli(data_dir, model_a, "stale")) == {}

    # "Observe sources" in the UI re-reads every file: nothing changed, so nothing is stale.
    with dg.DagsterInstance.get() as instance:
        observe = dg.materialize([video_file], instance=instance,
                                 resources={"paths": ProjectPaths(data_dir=str(data_dir))})
        assert observe.success
    assert _stale_lines(_cli(data_dir, model_a, "stale")) == {}

    # a is replaced in place: every stage of a is stale, with the file as the root cause; b is not.
    make_clip(videos / "a.mp4", speech_text="Fresh limes on sale today.", source="mandelbrot", **small)
    _age(videos / "a.mp4")
    with dg.DagsterInstance.get() as instance:
        _tick(instance, data_dir)
    stale = _stale_lines(_cli(data_dir, model_a, "stale"))
    assert {k for k, _ in stale} == {"a"} and {s for _, s in stale} == set(ALL_STAGES), stale
    assert stale.pop(("a", "video_metadata")) == "video_file has a new data version"
    assert all(cause.startswith("upstream ") and cause.endswith(" is stale") for cause in stale.values()), stale
    assert _cli(data_dir, model_a, "stale", "--run").returncode in (0, 1)
    assert _stale_lines(_cli(data_dir, model_a, "stale")) == {}

    # The code location reloads with Whisper B: transcript, and only what is downstream of it, is stale
    # for both videos; `stale --run` redoes exactly those stages.
    stale = _stale_lines(_cli(data_dir, model_b, "stale"))
    for key in ("a", "b"):
        stages = {s for k, s in stale if k == key}
        assert "transcript" in stages and stages <= {"transcript"} | _downstream("transcript"), stale
    assert stale[("a", "transcript")] == "transcript has a new code version"
    before = {(k, s): read_status(layout.video(k), s).finished_at for k in ("a", "b") for s in STAGES}
    time.sleep(1.1)  # finished_at has a resolution of one second
    redo = _cli(data_dir, model_b, "stale", "--run")
    assert redo.returncode in (0, 1), redo.stdout + redo.stderr
    for key in ("a", "b"):
        for stage in STAGES:
            status = read_status(layout.video(key), stage)
            assert (status.finished_at != before[(key, stage)]) == ((key, stage) in stale), (key, stage)
    assert read_status(layout.video("a"), "transcript").model == "whisper-b"
    assert _stale_lines(_cli(data_dir, model_b, "stale")) == {}


def test_stale_video_sensor_requests_exactly_the_stale_stages(dagster_home, data_dir):
    from dagster._core.test_utils import create_run_for_test

    from tiktok_assets.defs.sensors import RANGE_END, RANGE_START, SENSOR_TAG, stale_video_sensor

    videos = data_dir / "tiktok_videos"
    small = {"width": 96, "height": 160, "fps": 10, "duration": 2.0, "has_audio": False}
    for key in ("a", "b"):
        make_clip(videos / f"{key}.mp4", **small)
        _age(videos / f"{key}.mp4")
    selection = [dg.AssetKey("video_metadata"), dg.AssetKey("audio_wav")]

    def tick(instance):
        with dg.build_sensor_context(instance=instance, definitions=defs()) as context:
            return stale_video_sensor(context)

    with dg.DagsterInstance.get() as instance:
        _tick(instance, data_dir)
        run = defs().resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=selection, tags={RANGE_START: "a", RANGE_END: "b"})
        assert run.success
        assert isinstance(tick(instance), dg.SkipReason)  # all up to date (other stages: never run)
        make_clip(videos / "a.mp4", source="mandelbrot", **small)  # a replaced, observed by a sensor tick
        _age(videos / "a.mp4")
        _tick(instance, data_dir)
        result = tick(instance)
        [request] = result.run_requests
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("a", "a")
        assert request.asset_selection == selection
        # While a run it requested is unfinished, it waits instead of asking again.
        create_run_for_test(instance, job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED,
                            tags={SENSOR_TAG: request.tags[SENSOR_TAG]})
        assert "not finished" in tick(instance).skip_message
