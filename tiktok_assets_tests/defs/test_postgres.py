"""The pipeline on a production-shaped instance: run, event-log and schedule storage in PostgreSQL
(dagster-postgres), the code location served by a gRPC code server and a real ``dagster-daemon``.

A throwaway PostgreSQL cluster (tiktok_assets_tests/postgres.py) holds everything, reached through the
storage block of docker/dagster.yaml (the production one) with its DAGSTER_PG_* variables. Two tiny clips
land in the watched folder; the daemon's sensor tick makes them partitions and queues one batch run over
both; a backfill of the first one (``dagster job backfill``, as from the UI) queues another; the daemon's
run queue launches both through the code server (run worker processes, not this process), side by side; the
table sensor then rewrites the table. Everything is read back from PostgreSQL afterwards: partitions, sensor
ticks, each run's queue events, each stage's per-partition materializations and ``video_ok`` checks.

No model weights are given, so the model stages are ``unavailable`` (rows ``partial``): what is tested
here is the instance, not the models. The embedded SQLite instance stays the quick start's default.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.sensors import RANGE_END, RANGE_START, SENSOR_TAG
from tiktok_assets.lib.models.manifest import CODE_MANIFEST
from tiktok_assets.lib.samples import make_clip
from tiktok_assets.lib.table.schema import STAGES
from tiktok_assets_tests.postgres import postgres_bin_dir, throwaway_postgres
from tiktok_assets_tests.services import Services, free_port, port_open

PROJECT_YAML = Path(__file__).parents[2] / "dagster.yaml"
PRODUCTION_YAML = Path(__file__).parents[2] / "docker" / "dagster.yaml"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
LOCATION = "tiktok_assets"

pytestmark = pytest.mark.slow


def _instance_yaml() -> dict:
    """The project's dagster.yaml with the production storage block (docker/dagster.yaml: PostgreSQL, its
    settings from DAGSTER_PG_* variables) and a quicker run queue."""
    settings = yaml.safe_load(PROJECT_YAML.read_text())
    settings["storage"] = yaml.safe_load(PRODUCTION_YAML.read_text())["storage"]
    settings["run_queue"] = {"dequeue_interval_seconds": 1}
    return settings


def _table_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return [r for r in instance.get_runs(dg.RunsFilter(job_name="feature_table")) if r.status in FINISHED]


class _Settled:
    """True once every run has finished and no run was added for ``seconds``."""

    def __init__(self, instance: dg.DagsterInstance, seconds: float):
        self.instance, self.seconds = instance, seconds
        self.runs: frozenset[str] = frozenset()
        self.since = time.monotonic()

    def __call__(self) -> bool:
        runs = self.instance.get_runs()
        ids = frozenset(r.run_id for r in runs)
        if ids != self.runs or not all(r.status in FINISHED for r in runs):
            self.runs, self.since = ids, time.monotonic()
            return False
        return time.monotonic() - self.since >= self.seconds


def test_sensor_backfill_and_table_on_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if postgres_bin_dir() is None:
        pytest.skip(
            "PostgreSQL server binaries not installed (apt-get install postgresql; .ci/run installs it)"
        )
    pytest.importorskip(
        "dagster_postgres", reason="dagster-postgres not installed (pip install -e '.[postgres]')"
    )
    started = time.monotonic()
    home, data, videos = tmp_path / "home", tmp_path / "data", tmp_path / "data" / "tiktok_videos"
    for folder in (home, videos, tmp_path / "models", tmp_path / "hf", tmp_path / "yolo"):
        folder.mkdir(parents=True)
    for name in ("first_clip", "second_clip"):
        make_clip(videos / f"{name}.mp4", width=144, height=256, fps=10, duration=2.0, has_audio=True)
    # the manifest without any weights: every model stage is unavailable
    shutil.copy(CODE_MANIFEST, tmp_path / "models" / "manifest.yaml")
    old = time.time() - 120  # fully written long ago: the first tick takes them
    for clip in videos.iterdir():
        os.utime(clip, (old, old))

    with throwaway_postgres() as pg:
        pg_env = {
            "DAGSTER_PG_HOST": pg.host,
            "DAGSTER_PG_PORT": str(pg.port),
            "DAGSTER_PG_USER": pg.username,
            "DAGSTER_PG_PASSWORD": pg.password,
            "DAGSTER_PG_DB": pg.db_name,
        }
        for name, value in pg_env.items():  # for this process's instance and the services' (os.environ)
            monkeypatch.setenv(name, value)
        (home / "dagster.yaml").write_text(yaml.safe_dump(_instance_yaml()))
        port = free_port()
        workspace = tmp_path / "workspace.yaml"
        server = {"host": "127.0.0.1", "port": port, "location_name": LOCATION}
        workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": server}]}))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "TIKTOK_ASSETS_DATA_DIR": str(data),
            "TIKTOK_ASSETS_MODELS_DIR": str(tmp_path / "models"),
            "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_OFFLINE": "1",
            "YOLO_CONFIG_DIR": str(tmp_path / "yolo"),
            "TIKTOK_ASSETS_SETTLE_SECONDS": "0",
            "TIKTOK_ASSETS_TABLE_INTERVAL_SECONDS": "2",
        }
        with (
            Services(tmp_path, tmp_path / "logs", env) as services,
            dg.DagsterInstance.from_config(str(home)) as instance,
        ):
            # As in docker/: the code location in a gRPC code server, the daemon beside it.
            code_server = f"dagster code-server start -m tiktok_assets.definitions -h 127.0.0.1 -p {port}"
            services.spawn("code-server", *code_server.split(), "--location-name", LOCATION)
            services.wait_for("the code server", lambda: port_open(port), 120)
            daemon = services.spawn("daemon", "dagster-daemon", "run", "-w", str(workspace))

            # 1. a sensor tick: both videos become partitions, one batch run over their range is queued
            partitions = lambda: sorted(instance.get_dynamic_partitions(VIDEOS_PARTITION))
            keys = services.wait_for(
                "the sensor to add both videos", lambda: len(partitions()) == 2 and partitions(), 120
            )
            # 2. meanwhile a backfill of the first video (what the UI or `dagster job backfill` submits) is
            # queued too; the daemon's run queue launches both runs through the code server
            backfill_cli = f"dagster job backfill -w {workspace} -j video_pipeline --noprompt --partitions"
            services.run("backfill", *backfill_cli.split(), keys[0])
            video_runs = lambda: [r for r in instance.get_runs() if r.job_name != "feature_table"]
            services.wait_for(
                "the sensor's and the backfill's runs to finish",
                lambda: len(video_runs()) == 2 and all(r.status in FINISHED for r in video_runs()),
                300,
            )
            assert {r.status for r in video_runs()} == {dg.DagsterRunStatus.SUCCESS}, services.tail()
            (batch,) = [r for r in video_runs() if r.tags.get(SENSOR_TAG) == "new_video_sensor/new"]
            assert [batch.tags[RANGE_START], batch.tags[RANGE_END]] == keys
            (backfill,) = [r for r in video_runs() if "dagster/backfill" in r.tags]
            assert backfill.job_name == "video_pipeline" and backfill.tags["dagster/partition"] == keys[0]

            # 3. the table sensor rewrites the table once both have ended
            ended = max(instance.get_run_record_by_id(r.run_id).end_time for r in video_runs())
            services.wait_for(
                "the feature table after both runs",
                lambda: any(
                    instance.get_run_record_by_id(r.run_id).start_time > ended for r in _table_runs(instance)
                ),
                120,
            )
            # A run that ended after a table run was asked for makes the table sensor ask once more: stop
            # the daemon only once every run has finished and no new one came for two daemon sensor loops
            # (stopped earlier, it can leave a run it had just queued or launched behind).
            services.wait_for("the sensors to settle", _Settled(instance, seconds=10), 180)
            services.stop(daemon)
            flow_seconds = time.monotonic() - started

        # 4. read everything back from PostgreSQL, in a fresh instance
        with dg.DagsterInstance.from_config(str(home)) as instance:
            _assert_read_back(instance, keys, data)
            assert not list(home.rglob("*.db")), "nothing may be stored in SQLite"
        print(f"sensor tick + backfill -> runs from the queue -> table on PostgreSQL in {flow_seconds:.0f}s")


def _assert_read_back(instance: dg.DagsterInstance, keys: list[str], data: Path) -> None:
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert sorted(instance.get_dynamic_partitions(VIDEOS_PARTITION)) == keys

    # the sensor's ticks are in the schedule storage, one of them with the run it asked for
    states = {s.instigator_name: s for s in instance.all_instigator_state()}
    ticks = instance.get_ticks(
        states["new_video_sensor"].instigator_origin_id, states["new_video_sensor"].selector_id
    )
    assert any(t.status.value == "SUCCESS" and t.run_ids for t in ticks)
    assert instance.get_ticks(
        states["feature_table_sensor"].instigator_origin_id, states["feature_table_sensor"].selector_id
    )

    # every run went through the daemon's queue and ran in a worker process launched for it
    runs = instance.get_runs()
    assert len(runs) >= 3  # the sensor's run, the backfill's run, one or more table runs
    for run in runs:
        assert run.status == dg.DagsterRunStatus.SUCCESS
        types = {
            e.event_log_entry.dagster_event.event_type
            for e in instance.get_records_for_run(run.run_id).records
            if e.event_log_entry.is_dagster_event
        }
        assert {
            dg.DagsterEventType.RUN_ENQUEUED,
            dg.DagsterEventType.RUN_STARTING,
            dg.DagsterEventType.RUN_START,
            dg.DagsterEventType.RUN_SUCCESS,
        } <= types, (run.job_name, types)
        engine = [
            e.event_log_entry.dagster_event.message
            for e in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
            ).records
        ]
        assert any("pid" in (m or "") for m in engine), engine  # "Started process for run (pid: ...)"

    # each stage: a materialization per partition and run (the backfilled video has two) with its outcome,
    # and the video_ok check results
    table = pd.read_parquet(data / "video_features_results.parquet").set_index("video_key")
    for stage in STAGES:
        for key, count in zip(keys, (2, 1), strict=True):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(stage), asset_partitions=[key]), limit=10
            ).records
            assert len(records) == count, (stage, key, len(records))
            outcome = records[0].asset_materialization.metadata["outcome"].value
            assert outcome in ("ok", "no_audio", "unavailable", "disabled"), (stage, key, outcome)
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(stage), "video_ok")]
        )
        assert check, stage
    assert set(table.index) == set(keys)
    assert set(table.status) <= {"ok", "partial"} and table.error.isna().all(), table[["status", "error"]]
