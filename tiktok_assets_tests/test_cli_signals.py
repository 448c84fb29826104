"""`tiktok-assets` as a user runs it, in real subprocesses: exit codes, SIGINT / SIGTERM during a run,
and concurrent first use of a fresh Dagster instance."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tiktok_assets.lib.catalogue.keys import partition_key_for
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.samples import make_clip
from tiktok_assets.lib.table.schema import STAGES

REPO = Path(__file__).parents[1]
SCRIPT = Path(sys.executable).parent / "tiktok-assets"
CLI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "tiktok_assets.cli"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real clips (2 s, 360x640): one with speech, one without audio, and random bytes."""
    folder = tmp_path_factory.mktemp("cli_clips")
    make_clip(
        folder / "speech.mp4", width=360, height=640, duration=2.0, speech_text="Hello, this is a test."
    )
    make_clip(folder / "silent.mp4", width=360, height=640, duration=2.0, has_audio=False)
    (folder / "bad.mp4").write_bytes(os.urandom(50_000))
    return {p.stem: p for p in folder.glob("*.mp4")}


class Project:
    """A throwaway DAGSTER_HOME and data folder, and the CLI run against them."""

    def __init__(self, root: Path, extra_env: dict[str, str] | None = None):
        self.root, self.home, self.data = root, root / "dagster_home", root / "data"
        self.home.mkdir(parents=True)
        shutil.copy(REPO / "dagster.yaml", self.home / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if k != "TIKTOK_ASSETS_DATA_DIR"}
        env.update(
            DAGSTER_HOME=str(self.home),
            TIKTOK_ASSETS_MODELS_DIR=str(REPO / "models"),
            TIKTOK_ASSETS_SEPARATION="0",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        self.env = {**env, **(extra_env or {})}

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data)

    def args(self, *args: str | Path) -> list[str]:
        return [*CLI, "--data-dir", str(self.data), *map(str, args)]

    def run(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.args(*args),
            check=False,
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, *args: str | Path) -> subprocess.Popen:
        return subprocess.Popen(
            self.args(*args),
            env=self.env,
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def leftovers(self) -> list[Path]:
        """Temp files / folders of atomic writes (``.name.XXXX.tmp``, ``.name.XXXX.old``) in the data folder."""
        return [p for p in self.data.rglob("*") if ".tmp" in p.name or p.name.endswith(".old")]


def _table(project: Project) -> pd.DataFrame:
    parquet = pd.read_parquet(project.layout.table_parquet).set_index("video_key")
    csv = pd.read_csv(project.layout.table_csv)
    assert sorted(csv["video_key"]) == sorted(parquet.index)
    return parquet


def test_exit_code_2_for_usage_and_system_errors(tmp_path):
    project = Project(tmp_path)
    missing = tmp_path / "no_such_video.mp4"
    for command in ("run", "add"):
        done = project.run(command, missing, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "no such file or folder" in done.stderr
    (project.data / "tiktok_videos").mkdir(parents=True)
    done = project.run("run", timeout=120)  # the watched folder is empty
    assert done.returncode == 2 and "no videos found" in done.stderr
    done = project.run("run", "--no-such-option", timeout=120)  # argparse
    assert done.returncode == 2


@pytest.mark.slow  # a whole CLI run over good and bad clips (~90 s on 2 cores)
def test_exit_code_1_when_a_video_failed(tmp_path, clips, model_env):
    """A good clip and random bytes: the run goes through both, writes the table, and exits 1 (not 0)."""
    project = Project(tmp_path, model_env)
    done = project.run("run", clips["silent"], clips["bad"])
    assert done.returncode == 1, done.stdout + done.stderr
    table = _table(project)
    assert table.loc[partition_key_for(clips["bad"]), "status"] == "failed"
    assert table.loc[partition_key_for(clips["silent"]), "status"] != "failed"
    assert not project.leftovers()


def _interrupt_first_video(project: Project, clips: dict[str, Path], signum: int, tmp_path: Path, after: str):
    """Start `run` over three videos, send ``signum`` once the first video's stage ``after`` is done."""
    videos = []
    for name in ("first", "second", "third"):
        videos.append(tmp_path / f"{name}.mp4")
        shutil.copy(clips["speech"], videos[-1])
    first = project.layout.video(partition_key_for(videos[0]))
    proc = project.start("run", *videos)
    deadline = time.monotonic() + 180
    while not first.status_json(after).exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first video never started"
        time.sleep(0.05)
    proc.send_signal(signum)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err, time.monotonic() - sent, [partition_key_for(v) for v in videos]


@pytest.mark.parametrize(
    ("signum", "code", "after"),
    [
        (signal.SIGINT, 130, "video_metadata"),
        (signal.SIGTERM, 143, "video_metadata"),
        (signal.SIGINT, 130, "filtered_frames"),  # lands while the model stages load Whisper / torch
    ],
    ids=["sigint", "sigterm", "sigint-model-loading"],
)
def test_signal_stops_the_run_and_rewrites_the_table(tmp_path, clips, model_env, signum, code, after):
    project = Project(tmp_path / "project", model_env)
    returncode, out, err, seconds, keys = _interrupt_first_video(project, clips, signum, tmp_path, after)
    assert returncode == code, out + err
    assert f"interrupted by {signal.Signals(signum).name}" in err
    assert "Traceback" not in err
    # no more videos: the last one never ran its stages
    last = project.layout.video(keys[-1])
    assert not all(last.status_json(stage).exists() for stage in STAGES), out
    # the table was rewritten with what finished: one row per registered video, CSV and Parquet
    assert sorted(_table(project).index) == sorted(keys)
    assert not project.leftovers()
    assert seconds < 120


def test_second_signal_during_the_table_write_aborts(tmp_path, clips, model_env):
    """Ctrl-C twice: the second one lands while the table is being rewritten; the CLI stops at once
    with 130 and leaves no temp file."""
    project = Project(tmp_path / "project", model_env)
    videos = [tmp_path / "one.mp4", tmp_path / "two.mp4"]
    for v in videos:
        shutil.copy(clips["silent"], v)
    proc = project.start("run", *videos)
    first = project.layout.video(partition_key_for(videos[0]))
    deadline = time.monotonic() + 180
    while not first.status_json("video_metadata").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    line = proc.stderr.readline()
    while line and "interrupted" not in line:
        line = proc.stderr.readline()
    assert "interrupted by SIGINT" in line
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert not project.leftovers()


# A barrier so the six processes reach their first instance access together (the race is in the first
# DagsterInstance.get(), after the slow imports); then the CLI's own main().
_RACER = """
import sys, time
from pathlib import Path
import dagster
from tiktok_assets import cli
barrier, me, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
(barrier / me).touch()
while len(list(barrier.iterdir())) < n:
    time.sleep(0.005)
sys.exit(cli.main(sys.argv[4:]))
"""


def test_concurrent_first_use_of_a_fresh_instance(tmp_path):
    """Six `add` at once on a fresh DAGSTER_HOME, twice: through the installed script, then released
    together after their imports (without the lock that second race left two alembic heads 4 times
    out of 4). All succeed, each database has one alembic head, each partition is added once, and a
    later command works."""
    videos = []
    for i in range(6):
        videos.append(tmp_path / f"video_{i}.mp4")
        videos[-1].write_bytes(b"not decoded by `add`")
    shared = tmp_path / "shared.mp4"
    shared.write_bytes(b"added by all six at once")
    for trial in range(2):
        project = Project(tmp_path / f"trial_{trial}")
        barrier = project.root / "barrier"
        barrier.mkdir()
        if trial == 0:  # the real entry point, unsynchronized
            procs = [project.start("add", v, shared) for v in videos]
        else:
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _RACER,
                        str(barrier),
                        str(i),
                        str(len(videos)),
                        *project.args("add", v, shared)[len(CLI) :],
                    ],
                    env=project.env,
                    cwd=project.root,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for i, v in enumerate(videos)
            ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"trial {trial}: {err}"
        dbs = list(project.home.rglob("*.db"))
        assert dbs
        for db in dbs:
            with sqlite3.connect(db) as conn:
                if conn.execute("select name from sqlite_master where name='alembic_version'").fetchone():
                    assert conn.execute("select count(*) from alembic_version").fetchone()[0] == 1, db
        with sqlite3.connect(next(project.home.rglob("index.db"))) as conn:
            keys = [k for (k,) in conn.execute("select partition from dynamic_partitions")]
        assert sorted(keys) == sorted({partition_key_for(p) for p in [*videos, shared]})  # each once
    later = tmp_path / "later.mp4"
    later.write_bytes(b"added afterwards")
    again = project.run("add", later, timeout=120)  # a later command on the raced instance
    assert again.returncode == 0, again.stderr


def test_interrupt_inside_a_pool_finalizer_logs_no_traceback(caplog):
    """SQLAlchemy logs an exception raised in its connection-reset finalizer; a stop signal that lands
    there is handled by the run, so that record is dropped, while other pool errors still show."""
    import logging

    from dagster._core.errors import DagsterExecutionInterruptedError

    from tiktok_assets import cli

    pool_logger = logging.getLogger("sqlalchemy.pool.impl.NullPool")

    def log_reset_error(error: BaseException) -> None:
        try:
            raise error
        except BaseException:
            pool_logger.exception("Exception during reset or similar")

    with caplog.at_level(logging.ERROR, logger="sqlalchemy.pool.impl.NullPool"), cli._stop_on_signals():
        log_reset_error(DagsterExecutionInterruptedError())
        log_reset_error(RuntimeError("disk I/O error"))
    assert [r.exc_info[0] for r in caplog.records] == [RuntimeError]
    log_reset_error(DagsterExecutionInterruptedError())  # outside a run nothing is filtered
    assert len(caplog.records) == 2


def test_interrupt_mid_query_logs_no_cursor_close_traceback(caplog):
    """A stop signal raised inside a Dagster storage query: SQLAlchemy closes the interrupted connection,
    then fails to close its cursor ("Cannot operate on a closed database") and logs that with the signal
    as its context. The run handles the signal, so the record is dropped; outside a run it shows."""
    import logging

    import sqlalchemy as sa
    from dagster._core.errors import DagsterExecutionInterruptedError

    from tiktok_assets import cli

    class InterruptedCursor:
        def __init__(self, cursor: sqlite3.Cursor):
            self._cursor = cursor

        def __getattr__(self, name: str):
            return getattr(self._cursor, name)

        def fetchall(self):
            raise DagsterExecutionInterruptedError  # the signal lands while rows are read

    class Connection:
        def __init__(self):
            self._connection = sqlite3.connect(":memory:")

        def __getattr__(self, name: str):
            return getattr(self._connection, name)

        def cursor(self):
            return InterruptedCursor(self._connection.cursor())

    engine = sa.create_engine("sqlite://", creator=Connection, poolclass=sa.pool.NullPool)

    def interrupted_query() -> None:  # as Dagster's storage reads (sqlalchemy_compat.db_result)
        with (contextlib.suppress(DagsterExecutionInterruptedError), engine.connect() as connection,
              connection.execute(sa.text("select 1")) as result):
            result.fetchall()

    with caplog.at_level(logging.ERROR, logger="sqlalchemy"), cli._stop_on_signals():
        interrupted_query()
    assert [r.getMessage() for r in caplog.records] == []
    interrupted_query()
    assert [r.getMessage() for r in caplog.records] == ["Error closing cursor"]
    assert isinstance(caplog.records[0].exc_info[1].__context__, DagsterExecutionInterruptedError)


class _SignalsInFinalizer:
    """Sends SIGINT to this process when collected: the handler then runs inside ``__del__``."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


def test_a_signal_swallowed_by_a_finalizer_still_stops_the_run():
    """Python drops an exception raised in a finalizer ("Exception ignored in ..."), so a SIGINT whose
    handler runs inside one (SQLAlchemy returning a storage connection to its pool in garbage collection)
    would neither interrupt the running step nor stop the run. `run` delivers it again: the step is
    interrupted at once and the signal is reported once, not as a second one."""
    import dagster as dg

    from tiktok_assets import cli

    finished: list[bool] = []

    @dg.op
    def long_step() -> None:
        _SignalsInFinalizer()  # collected at once: Dagster's handler raises inside the finalizer
        for _ in range(100):
            time.sleep(0.05)
        finished.append(True)

    @dg.job
    def one_step():
        long_step()

    with dg.instance_for_test() as instance, cli._stop_on_signals():
        started = time.monotonic()
        result = one_step.execute_in_process(instance=instance, raise_on_error=False)
        seconds = time.monotonic() - started
        assert cli._signal_received() == signal.SIGINT
        time.sleep(3 * cli.REDELIVER_SECONDS)
        assert cli._signal_received() is None  # the re-delivered signal is not a second one
    assert not result.success and not finished
    assert seconds < 2.5, seconds
