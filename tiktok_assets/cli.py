"""`tiktok-assets`: register videos, run the pipeline, make the demo, manage model weights.

Dagster has no CLI for dynamic partitions, so `add` registers videos as partitions; `run`
registers and materializes every asset for each video in this process (models load once), then
writes the feature table. Runs are recorded in the Dagster instance at $DAGSTER_HOME, so they
show up in `dagster dev` like any other run.

Exit codes: 0 every video processed (ok or partial), 1 some videos failed (each failure is recorded in
the feature table), 2 usage or system error (no such path, the feature table failed, an unexpected
error), 130 / 143 interrupted by SIGINT / SIGTERM: the running stage is abandoned (outputs are written
to a temp file and renamed, so none is half-written), no further video starts, and the feature table
is rewritten with what finished; a second signal skips that.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

from tiktok_assets.lib import atomic
from tiktok_assets.lib.catalogue.keys import is_video_file

if TYPE_CHECKING:  # dagster is imported only by the commands that use it (fast --help)
    import dagster as dg

    from tiktok_assets.lib.layout import DataLayout

DEFAULT_DATA_DIR = "data"

EXIT_OK = 0  # every video processed (ok or partial)
EXIT_FAILED = 1  # some videos failed; their errors are in the feature table
EXIT_ERROR = 2  # usage or system error
ADD_CHUNK = 10_000  # partitions per add_dynamic_partitions call
EXIT_CODES_HELP = (
    "exit codes: 0 all videos ok, 1 some videos failed, 2 usage or system error, "
    "130 / 143 interrupted by SIGINT / SIGTERM"
)


def _setup_env(data_dir: str) -> None:
    os.environ["TIKTOK_ASSETS_DATA_DIR"] = str(Path(data_dir).expanduser().resolve())
    if not os.environ.get("DAGSTER_HOME"):
        home = Path(".dagster_home").resolve()
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "dagster.yaml").exists() and Path("dagster.yaml").exists():
            # temp + rename: a concurrent first call never reads a half-copied file
            tmp = home / f".dagster.yaml.{os.getpid()}.tmp"
            shutil.copy("dagster.yaml", tmp)
            os.replace(tmp, home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)


def _video_paths(paths: list[str]) -> list[Path]:
    """Video files named or found in folders (sub-folders too). Links that loop, FIFOs and folders
    named like videos are skipped with their reason; a path that does not exist is a usage error."""
    from tiktok_assets.lib.catalogue.watch import classify_path, scan_folder

    found: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir() and not is_video_file(p.name):
            scan = scan_folder(p, settle_seconds=0)
            skipped = scan.skipped
            found += [Path(v.path) for v in scan.new]
        elif os.path.lexists(p):
            info, why = classify_path(p)
            skipped = [] if info else [f"{raw}: {why}"]
            found += [p] if info else []
        else:
            print(f"tiktok-assets: no such file or folder: {raw}", file=sys.stderr)
            raise SystemExit(EXIT_ERROR)
        for reason in skipped:
            print(f"tiktok-assets: skipped {reason}", file=sys.stderr)
    return found


# --- the Dagster instance: concurrent first use -------------------------------------------------
# The first `DagsterInstance.get()` on a fresh $DAGSTER_HOME creates the SQLite databases and stamps
# their alembic revision; two processes doing that at once can both stamp (two heads: every later
# command fails). First use is serialized by an flock in $DAGSTER_HOME; a marker written once the
# instance is set up makes later calls skip the lock.
INSTANCE_LOCK = ".tiktok_assets.lock"
INSTANCE_READY = ".tiktok_assets_instance_ready"


@contextlib.contextmanager
def _instance_lock() -> Iterator[None]:
    """Exclusive lock across processes on this $DAGSTER_HOME (released when the process dies)."""
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with open(home / INSTANCE_LOCK, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _ensure_instance() -> None:
    """Create the instance's storage once, one process at a time; free once it exists."""
    ready = Path(os.environ["DAGSTER_HOME"]) / INSTANCE_READY
    if ready.exists():
        return
    import dagster as dg

    from tiktok_assets.defs.partitions import VIDEOS_PARTITION

    with _instance_lock():
        if ready.exists():
            return
        instance = dg.DagsterInstance.get()  # creates and stamps the run / event / schedule storage
        try:
            instance.get_dynamic_partitions(VIDEOS_PARTITION)
            instance.get_runs(limit=1)
        finally:
            instance.dispose()
        tmp = ready.with_name(f"{ready.name}.{os.getpid()}.tmp")
        tmp.write_text("the Dagster instance here was set up by tiktok-assets\n")
        os.replace(tmp, ready)


# --- SIGINT / SIGTERM ---------------------------------------------------------------------------
# Dagster's execute_in_process installs its own SIGINT handler (and points SIGTERM at it) while a run
# executes: the signal interrupts the running step, the run is marked failed and execute_in_process
# returns normally, so the caller never sees the signal, and which one it was is lost. Python also
# writes the number of every signal it handles to the wakeup fd, whoever's handler runs: that is
# how `run` learns of a signal Dagster consumed. Outside Dagster's runs our handler raises at once.
# A handler that runs inside a finalizer raises where Python drops the exception: that signal is sent
# again (_redeliver_lost_interrupt), so the run still stops at once.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """`tiktok-assets run` got SIGINT or SIGTERM: stop, rewrite the table, exit 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@dataclass
class _Wakeup:
    """The read end of the pipe Python writes the number of every handled signal to, and what
    :func:`_redeliver_lost_interrupt` did with it."""

    read_fd: int
    pending: list[int] = field(default_factory=list)  # stop signals read early to re-deliver, not reported yet
    redelivered: int = 0  # re-deliveries whose bytes in the pipe are not the user's signals
    # re-entrant: a finalizer's re-delivery can run in the main thread while it reads the pipe
    lock: threading.RLock = field(default_factory=threading.RLock)


_wakeup: _Wakeup | None = None  # in effect inside _stop_on_signals

# A signal that lands while SQLAlchemy hands a Dagster storage connection back to its pool (often in a
# garbage-collection finalizer) is raised inside that finalizer, which SQLAlchemy logs as a traceback
# and swallows; one that lands mid-query makes SQLAlchemy close the connection, then log the error of
# closing its cursor. The run handles the signal itself, so those tracebacks are only noise.
_POOL_LOGGERS = ("sqlalchemy.pool.impl.NullPool", "sqlalchemy.pool.impl.QueuePool")
REDELIVER_SECONDS = 0.05


class _DropInterruptsInPoolReset(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _interrupt(record.exc_info[1] if record.exc_info else None)


_pool_filter = _DropInterruptsInPoolReset()


def _interrupt(error: BaseException | None) -> bool:
    """The error is the signal, or was raised while handling it (SQLAlchemy invalidates a connection the
    signal interrupted mid-query, then logs the "closed database" error of closing its cursor)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if _is_signal(error):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _is_signal(error: BaseException | None) -> bool:
    return isinstance(error, (Interrupted, KeyboardInterrupt)) or (
        type(error).__name__ == "DagsterExecutionInterruptedError")


def _drop_interrupts_in_finalizers(unraisable: sys.UnraisableHookArgs) -> None:
    """The same signal raised inside a weakref callback or finalizer ("Exception ignored in ..."): Python
    drops it there, so neither the run nor `run` would ever stop; it is delivered again."""
    if _is_signal(unraisable.exc_value):
        _redeliver_lost_interrupt()
    elif not _interrupt(unraisable.exc_value):
        sys.__unraisablehook__(unraisable)


def _redeliver_lost_interrupt() -> None:
    """Send the stop signal a finalizer swallowed to the main thread again, a moment later (out of the
    finalizer), until it lands where it stops the run; the re-sent signal does not count as a second."""
    if (wakeup := _wakeup) is None:
        return
    with wakeup.lock:
        if (signum := _signal_received()) is None:
            return
        wakeup.pending.insert(0, signum)

    def deliver() -> None:
        with wakeup.lock:
            if wakeup.pending and _wakeup is wakeup:  # not reported yet: still needed
                wakeup.redelivered += 1
                _thread.interrupt_main(signum)

    threading.Timer(REDELIVER_SECONDS, deliver).start()


def _on_stop_signal(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def _signal_received() -> int | None:
    """The first SIGINT / SIGTERM received since the last call (also one Dagster handled), or None."""
    if (wakeup := _wakeup) is None:
        return None
    with wakeup.lock:
        received = b""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while chunk := os.read(wakeup.read_fd, 512):
                received += chunk
        stops = [s for s in received if s in STOP_SIGNALS]
        dropped = min(wakeup.redelivered, len(stops))  # each re-delivery wrote a byte after its original
        wakeup.redelivered -= dropped
        signals, wakeup.pending = [*wakeup.pending, *stops[:len(stops) - dropped]], []
    return signals[0] if signals else None


def _raise_if_signalled() -> None:
    if (signum := _signal_received()) is not None:
        raise Interrupted(signum)


@contextlib.contextmanager
def _stop_on_signals(enabled: bool = True) -> Iterator[None]:
    """SIGINT / SIGTERM raise :class:`Interrupted`; restores the previous handlers on exit."""
    global _wakeup
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    previous_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    _wakeup = _Wakeup(read_fd)
    for name in _POOL_LOGGERS:
        logging.getLogger(name).addFilter(_pool_filter)
    previous_hook, sys.unraisablehook = sys.unraisablehook, _drop_interrupts_in_finalizers
    try:
        for s in STOP_SIGNALS:
            signal.signal(s, _on_stop_signal)
        yield
    finally:
        for name in _POOL_LOGGERS:
            logging.getLogger(name).removeFilter(_pool_filter)
        sys.unraisablehook = previous_hook
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(previous_wakeup)
        with _wakeup.lock:  # a pending re-delivery then sees it is no longer in effect
            _wakeup = None
        os.close(read_fd)
        os.close(write_fd)


def add_videos(paths: list[Path]) -> list[str]:
    """Register files as partitions of the `videos` partitions definition; return their keys."""
    import dagster as dg

    from tiktok_assets.defs.assets.video_file import new_observations, observation
    from tiktok_assets.defs.partitions import VIDEOS_PARTITION
    from tiktok_assets.defs.resources import ProjectPaths
    from tiktok_assets.lib.catalogue import registry

    layout = ProjectPaths(data_dir=os.environ["TIKTOK_ASSETS_DATA_DIR"]).layout()
    entries = registry.register_many(layout, paths)
    keys = [e.key for e in entries]
    _ensure_instance()
    instance = dg.DagsterInstance.get()
    with _instance_lock():  # check-then-add: two processes adding one key at once would collide
        existing = set(instance.get_dynamic_partitions(VIDEOS_PARTITION))
        new = [k for k in dict.fromkeys(keys) if k not in existing]
        for i in range(0, len(new), ADD_CHUNK):  # one statement per chunk: SQLite caps bound variables
            instance.add_dynamic_partitions(VIDEOS_PARTITION, new[i:i + ADD_CHUNK])
    # Their data versions, for staleness in the UI: new partitions have one by definition, a video added
    # again only when its file changed.
    hashes = {e.key: e.content_hash for e in entries}
    events = [observation(k, hashes[k]) for k in new] + new_observations(instance, layout, sorted(existing & set(keys)))
    for event in events:
        instance.report_runless_asset_event(event)
    return keys


def _video_failed(run_succeeded: bool, video) -> bool:
    """A video failed (exit 1): its run failed, or a stage recorded a data error for it. A bad video
    does not fail its run (its error is in its stage status and the `video_ok` check); stages that are
    disabled or unavailable here leave the row partial, which is not a failure."""
    from tiktok_assets.lib.status import FAILED, read_status
    from tiktok_assets.lib.table.schema import STAGES

    if not run_succeeded:
        return True
    return any((s := read_status(video, stage)) is not None and s.status == FAILED for stage in STAGES)


def _quiet_logs(verbose: bool) -> dict:
    level = "DEBUG" if verbose else "CRITICAL"  # stage outcomes are printed below; -v for the full log
    return {"loggers": {"console": {"config": {"log_level": level}}}}


class StageProgress:
    """Prints each video's stage outcomes as they are recorded (the status files the stages write), from
    a background thread while a batch runs: per-video, per-stage progress during a run."""

    def __init__(self, layout, keys: list[str], position: dict[str, int], total: int) -> None:
        self.layout, self.keys, self.position, self.total = layout, keys, position, total
        self.seen: set[tuple[str, str, str]] = set()
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()  # whatever was recorded after the last tick

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.poll()

    def poll(self) -> None:
        from tiktok_assets.lib.status import FAILED, read_status
        from tiktok_assets.lib.table.schema import STAGES

        for key in self.keys:
            video = self.layout.video(key)
            for stage in STAGES:
                path = video.status_json(stage)
                if not path.exists() or path.stat().st_mtime < self.started:
                    continue
                status = read_status(video, stage)
                if status is None or (key, stage, status.finished_at) in self.seen:
                    continue
                self.seen.add((key, stage, status.finished_at))
                detail = f"  {status.error}" if status.status == FAILED else ""  # the others were said at start
                print(f"[{self.position[key]}/{self.total}] {key:<24} {stage:<22} {status.status:<11} "
                      f"{status.seconds:6.2f}s{detail}", flush=True)


def run_pipeline(keys: list[str], verbose: bool = False, stages: list[str] | None = None) -> int:
    """Materialize every per-video asset (or only ``stages``) for ``keys`` in this process, in runs of
    up to TIKTOK_ASSETS_MODEL_BATCH adjacent partitions (as the sensor does: each model loads once per
    run), then the feature table."""
    import dagster as dg

    from tiktok_assets.definitions import defs as load_defs
    from tiktok_assets.defs.batching import contiguous_batches
    from tiktok_assets.defs.model_resources import model_resources, stage_plan
    from tiktok_assets.defs.partitions import VIDEOS_PARTITION
    from tiktok_assets.defs.resources import ProjectPaths
    from tiktok_assets.defs.sensors import RANGE_END, RANGE_START

    print(stage_plan(model_resources()).summary(), flush=True)
    defs = load_defs()
    instance = dg.DagsterInstance.get()
    layout = ProjectPaths(data_dir=os.environ["TIKTOK_ASSETS_DATA_DIR"]).layout()
    pipeline = defs.resolve_job_def("video_pipeline")
    position = {k: i for i, k in enumerate(keys, 1)}
    failed = 0
    for batch in contiguous_batches(instance.get_dynamic_partitions(VIDEOS_PARTITION), keys):
        started = time.perf_counter()
        with StageProgress(layout, batch, position, len(keys)):
            result = pipeline.execute_in_process(
                instance=instance, raise_on_error=False, run_config=_quiet_logs(verbose),
                tags={RANGE_START: batch[0], RANGE_END: batch[-1]},
                asset_selection=[dg.AssetKey(s) for s in stages] if stages else None,
            )
        _raise_if_signalled()  # Dagster turned a SIGINT / SIGTERM into a failed run: stop here
        bad = [k for k in batch if _video_failed(result.success, layout.video(k))]
        failed += len(bad)
        print(f"    {len(batch)} video(s) in {time.perf_counter() - started:.1f}s"
              + (f", with errors: {', '.join(bad)}" if bad else ""), flush=True)
    table = defs.resolve_job_def("feature_table").execute_in_process(
        instance=instance, raise_on_error=False, run_config=_quiet_logs(verbose)
    )
    _raise_if_signalled()  # a signal Dagster consumed during the table run
    if not table.success:
        print("feature table: FAILED (see the run in the Dagster UI)", file=sys.stderr)
        return EXIT_ERROR
    _print_table(table, layout)
    print(
        f"{len(keys) - failed} of {len(keys)} videos processed without error"
        + (f"; {failed} recorded with their error in the table" if failed else "")
    )
    return EXIT_FAILED if failed else EXIT_OK


def run_interruptible(keys: list[str], verbose: bool = False, stages: list[str] | None = None) -> int:
    """:func:`run_pipeline`; on SIGINT / SIGTERM (see :func:`_stop_on_signals`) no more videos, the
    feature table rewritten with what finished, and 128 + the signal's number returned."""
    try:
        return run_pipeline(keys, verbose, stages)
    except Interrupted as stop:
        return _table_after_interrupt(stop, verbose)


def _table_after_interrupt(stop: Interrupted, verbose: bool) -> int:
    """Rewrite the feature table after an interrupt; return 128 + the signal. A second signal raises
    :class:`Interrupted` out of here (or interrupts the table step inside Dagster): every output is
    written to a temp file and renamed, so nothing is left half-written either way."""
    import dagster as dg

    from tiktok_assets.definitions import defs as load_defs
    from tiktok_assets.defs.resources import ProjectPaths

    print(
        f"tiktok-assets: interrupted by {stop.name}; no more videos, rewriting the feature table "
        f"with what finished (a second signal skips that)",
        file=sys.stderr,
        flush=True,
    )
    _signal_received()  # forget the first signal
    atomic.remove_unfinished()  # the signal may have landed between a temp file's creation and its cleanup
    layout = ProjectPaths(data_dir=os.environ["TIKTOK_ASSETS_DATA_DIR"]).layout()
    job = load_defs().resolve_job_def("feature_table")
    table = job.execute_in_process(
        instance=dg.DagsterInstance.get(), raise_on_error=False, run_config=_quiet_logs(verbose)
    )
    if _signal_received() is not None or not table.success:
        print("feature table: not rewritten", file=sys.stderr)
    else:
        _print_table(table, layout)
    return stop.exit_code


def cmd_add(args: argparse.Namespace) -> int:
    for path, key in zip(files := _video_paths(args.paths), add_videos(files), strict=True):
        print(f"{key}\t{path}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete partitions: the Dagster partition, the registry entry and every artifact; then the table."""
    import dagster as dg

    from tiktok_assets.defs.partitions import VIDEOS_PARTITION
    from tiktok_assets.defs.resources import ProjectPaths
    from tiktok_assets.lib.catalogue import registry
    from tiktok_assets.lib.catalogue.keys import validate_key

    layout = ProjectPaths(data_dir=os.environ["TIKTOK_ASSETS_DATA_DIR"]).layout()
    _ensure_instance()
    instance = dg.DagsterInstance.get()
    known = set(instance.get_dynamic_partitions(VIDEOS_PARTITION))
    unknown = [k for k in args.keys if k not in known]
    if unknown:
        print(f"tiktok-assets: not a partition of videos: {', '.join(unknown)}", file=sys.stderr)
        return EXIT_ERROR
    for key in args.keys:
        instance.delete_dynamic_partition(VIDEOS_PARTITION, key)
        try:
            video = layout.video(validate_key(key))
        except ValueError:
            print(f"{key}: partition deleted (an invalid key has no files)")
            continue
        registry.remove(layout, key)
        shutil.rmtree(video.out_dir, ignore_errors=True)
        shutil.rmtree(video.frames_dir, ignore_errors=True)
        print(f"{key}: removed (partition, registry entry, outputs and frames)")
    if (layout.similarity_dir / "similarity.sqlite3").exists():  # its duplicate pairs and index entries
        from tiktok_assets.lib.catalogue.similarity import project_store

        with project_store(layout) as store:
            regrouped = store.forget(args.keys)
        if regrouped:
            print(f"duplicate groups changed for {len(regrouped)} other video(s)")
    from tiktok_assets.definitions import defs as load_defs

    table = load_defs().resolve_job_def("feature_table").execute_in_process(
        instance=instance, raise_on_error=False, run_config=_quiet_logs(args.verbose))
    return EXIT_OK if table.success else EXIT_ERROR


def _print_table(result: dg.ExecuteInProcessResult, layout: DataLayout) -> None:
    """Where the feature_table run left the table (the compacted pair only when it wrote it)."""
    metadata = result.asset_materializations_for_node("video_features")[0].metadata
    print(f"feature table: {metadata['dagster/row_count'].value} rows ({metadata['rows_rebuilt'].value} "
          f"updated) in {layout.table_dataset}")
    if metadata["compacted"].value:
        print(f"               {layout.table_csv}\n               {layout.table_parquet}")
    else:
        print("               (over the compaction limit: `tiktok-assets table --compact` writes the CSV)")


def cmd_table(args: argparse.Namespace) -> int:
    """Update the feature table (the rows of videos that changed); --compact writes the one-file CSV and
    Parquet whatever the table's size, --full rebuilds every row."""
    import dagster as dg

    from tiktok_assets.definitions import defs as load_defs
    from tiktok_assets.defs.resources import ProjectPaths

    _ensure_instance()
    config = {**({"compact": True} if args.compact else {}), **({"full_rebuild": True} if args.full else {})}
    run_config = {**_quiet_logs(args.verbose), "ops": {"video_features": {"config": config}}}
    result = load_defs().resolve_job_def("feature_table").execute_in_process(
        instance=dg.DagsterInstance.get(), raise_on_error=False, run_config=run_config)
    if not result.success:
        print("tiktok-assets: the feature table was not updated (see the run in the Dagster UI)", file=sys.stderr)
        return EXIT_ERROR
    _print_table(result, ProjectPaths(data_dir=os.environ["TIKTOK_ASSETS_DATA_DIR"]).layout())
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    data_dir = Path(os.environ["TIKTOK_ASSETS_DATA_DIR"])
    files = _video_paths(args.paths or [str(data_dir / "tiktok_videos")])
    if not files:
        print(
            f"tiktok-assets: no videos found in {args.paths or data_dir / 'tiktok_videos'}", file=sys.stderr
        )
        return EXIT_ERROR
    return run_interruptible(list(dict.fromkeys(add_videos(files))), args.verbose)


def cmd_stale(args: argparse.Namespace) -> int:
    """List the (video, stage) pairs Dagster shows as stale; with --run, redo exactly those."""
    import dagster as dg

    from tiktok_assets.definitions import defs as load_defs
    from tiktok_assets.defs.partitions import VIDEOS_PARTITION
    from tiktok_assets.defs.staleness import redo_groups, stale_stages

    _ensure_instance()
    instance = dg.DagsterInstance.get()
    graph = load_defs().resolve_asset_graph()
    stale = stale_stages(instance, graph, instance.get_dynamic_partitions(VIDEOS_PARTITION))
    for item in stale:
        print(f"{item.key:<32} {item.stage:<22} {'; '.join(item.causes)}")
    groups = redo_groups(stale)
    print(f"{len(stale)} stale stage(s) in {sum(len(k) for k in groups.values())} video(s)")
    if not args.run or not stale:
        return EXIT_OK
    worst = EXIT_OK
    for stages, keys in groups.items():
        print(f"redoing {', '.join(stages)} for {len(keys)} video(s)", flush=True)
        worst = max(worst, run_interruptible(keys, args.verbose, list(stages)))
    return worst


def cmd_similar(args: argparse.Namespace) -> int:
    """The registered videos most like KEY: duplicates first, then by score, with each signal's similarity."""
    from tiktok_assets.defs.resources import ProjectPaths
    from tiktok_assets.lib.catalogue import registry
    from tiktok_assets.lib.catalogue.similarity import SimilarityStore

    layout = ProjectPaths(data_dir=os.environ["TIKTOK_ASSETS_DATA_DIR"]).layout()
    group, matches = None, []
    if (layout.similarity_dir / "similarity.sqlite3").exists():
        with SimilarityStore(layout.similarity_dir) as store:
            group = store.group_of(args.key)
            if group is not None:
                matches = store.similar(args.key, args.n, allowed=set(registry.source_paths(layout)))
    if group is None:
        print(f"tiktok-assets: {args.key}: not compared yet (video_similarity has not run for it)", file=sys.stderr)
        return EXIT_ERROR
    print(f"{args.key}: duplicate group {group}")
    print(f"{'video':<40} {'score':>6} {'dup':>4} {'visual':>7} {'audio':>7} {'clip':>7}  matched")

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for m in matches:
        print(f"{m.key:<40} {m.score:>6.3f} {'yes' if m.duplicate else 'no':>4} {cell(m.visual):>7} "
              f"{cell(m.audio):>7} {cell(m.clip):>7}  {', '.join(m.matched()) or '-'}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    """Rank the registered videos for a text: BM25 over transcript + on-screen text, and CLIP text-image
    similarity of the representative frames when a CLIP model is installed."""
    from tiktok_assets.defs.model_resources import model_resources
    from tiktok_assets.defs.resources import ProjectPaths
    from tiktok_assets.lib.catalogue import registry
    from tiktok_assets.lib.catalogue.search import search

    layout = ProjectPaths(data_dir=os.environ["TIKTOK_ASSETS_DATA_DIR"]).layout()
    clip = model_resources()["clip"]
    missing = clip.missing()
    print(f"pictures: CLIP {clip.model_name()}" if missing is None else f"pictures: not used ({missing})")
    encoder = clip.load() if missing is None else None
    hits = search(layout, sorted(registry.source_paths(layout)), args.query, args.n, encoder,
                  clip.model_name() if encoder is not None else None)
    if not hits:
        print("no video matches")
        return EXIT_OK
    print(f"{'video':<40} {'score':>8} {'words':>8} {'clip':>7}")
    for hit in hits:
        words = "-" if hit.words is None else f"{hit.words:.3f}"
        pictures = "-" if hit.clip is None else f"{hit.clip:.3f}"
        print(f"{hit.key:<40} {hit.score:>8.5f} {words:>8} {pictures:>7}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from tiktok_assets.lib.samples import generate_samples, missing_photos, sample_specs

    videos_dir = Path(os.environ["TIKTOK_ASSETS_DATA_DIR"]) / "tiktok_videos"
    wanted = []
    for clip, _, _ in sample_specs():
        missing = missing_photos(clip)
        if missing:
            print(f"skipping the sample {clip.name}: {', '.join(missing)} is not installed "
                  "(scikit-image comes with the dev extra, ultralytics with vision)", flush=True)
        else:
            wanted.append(clip.name)
    if not all((videos_dir / f"{n}.mp4").exists() for n in wanted):
        print(f"generating {len(wanted)} sample clips into {videos_dir} ...", flush=True)
        generate_samples(videos_dir, wanted)
    files = [videos_dir / f"{n}.mp4" for n in wanted]
    return run_interruptible(list(dict.fromkeys(add_videos(files))), args.verbose)


def cmd_models(args: argparse.Namespace) -> int:
    from tiktok_assets.lib.models.base import DEFAULT_MODELS_DIR
    from tiktok_assets.lib.models.manifest import (
        VERIFIED_BY_LOCK,
        ModelEntry,
        folder_size_mb,
        load_manifest,
        manifest_path,
        pull,
        read_lock,
    )

    models_dir = Path(args.models_dir or DEFAULT_MODELS_DIR)
    entries = load_manifest(manifest_path(models_dir))

    def lock_note(e: ModelEntry) -> str:
        if e.verification != VERIFIED_BY_LOCK:
            return ""
        return ", recorded" if read_lock(e.local_dir(models_dir)) else ", not recorded yet"

    if args.action == "list":
        print(f"{'name':<22} {'family':<11} {'presets':<8} {'status':<8} {'size':>9}  {'source':<40}  verified by")
        for e in entries:
            state = "present" if e.present(models_dir) else "missing"
            size = (
                f"{folder_size_mb(e.local_dir(models_dir)):.0f} MB"
                if state == "present"
                else f"~{e.size_mb} MB"
            )
            print(f"{e.name:<22} {e.family:<11} {','.join(e.presets):<8} {state:<8} {size:>9}  {e.source:<40}  "
                  f"{e.verification}{lock_note(e)}")
        return 0
    by_name = {e.name: e for e in entries}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        print(
            f"tiktok-assets: unknown model(s) {', '.join(unknown)}; see `tiktok-assets models list`",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for e in [by_name[n] for n in args.names] if args.names else entries:
        if e.present(models_dir) and not args.force:
            print(f"{e.name}: present in {e.local_dir(models_dir)}")
            continue
        print(f"{e.name}: pulling {e.source} (~{e.size_mb} MB) into {e.local_dir(models_dir)}", flush=True)
        try:
            pull(e, models_dir)
        except Exception as exc:  # noqa: BLE001 - report each model and go on
            failed += 1
            print(
                f"{e.name}: FAILED ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                file=sys.stderr,
            )
    return 1 if failed else 0


def cmd_dev(args: argparse.Namespace) -> int:
    # This interpreter's dagster, so it works from .venv/bin without activating the environment.
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    _ensure_instance()  # not concurrently with a first `add` / `run`
    from tiktok_assets.defs.model_resources import model_resources, stage_plan

    print(stage_plan(model_resources()).summary(), flush=True)
    os.execv(
        sys.executable, [sys.executable, "-m", "dagster", "dev", "-m", "tiktok_assets.definitions", *extra]
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiktok-assets", description=__doc__.splitlines()[0], epilog=EXIT_CODES_HELP
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("TIKTOK_ASSETS_DATA_DIR", DEFAULT_DATA_DIR),
        help="project data folder (default: ./data or $TIKTOK_ASSETS_DATA_DIR)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show Dagster's debug log of each run")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("add", help="register video files (or folders of them) as partitions")
    p.add_argument("paths", nargs="+")
    p.set_defaults(fn=cmd_add)
    p = sub.add_parser("remove", help="delete partitions and their registry entries and artifacts")
    p.add_argument("keys", nargs="+")
    p.set_defaults(fn=cmd_remove)
    p = sub.add_parser("run", help="register and process videos (default: the whole watched folder)")
    p.add_argument("paths", nargs="*")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("stale", help="list the video stages Dagster shows as stale (file replaced, model or "
                       "setting changed); --run redoes exactly them")
    p.add_argument("--run", action="store_true")
    p.set_defaults(fn=cmd_stale)
    p = sub.add_parser("table", help="update the feature table now; --compact writes the one-file CSV and "
                       "Parquet however large the table is, --full rebuilds every row")
    p.add_argument("--compact", action="store_true")
    p.add_argument("--full", action="store_true")
    p.set_defaults(fn=cmd_table)
    p = sub.add_parser("similar", help="the videos most like KEY (near-duplicates first) with each signal's "
                       "similarity: frames, soundtrack, CLIP")
    p.add_argument("key")
    p.add_argument("-n", type=int, default=10, help="how many (default 10)")
    p.set_defaults(fn=cmd_similar)
    p = sub.add_parser("search", help="rank videos for a text: transcript and on-screen text (BM25), plus CLIP "
                       "text-image similarity of representative frames when CLIP is installed")
    p.add_argument("query")
    p.add_argument("-n", type=int, default=10, help="how many (default 10)")
    p.set_defaults(fn=cmd_search)
    p = sub.add_parser("demo", help="generate the sample clips and run the pipeline on them")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser(
        "models", help="list model weights (present / missing / size) or pull them into models/"
    )
    p.add_argument("action", choices=["list", "pull"])
    p.add_argument("names", nargs="*", help="models to pull (default: all)")
    p.add_argument("--models-dir", default=None, help="default: ./models or $TIKTOK_ASSETS_MODELS_DIR")
    p.add_argument("--force", action="store_true", help="pull even when present")
    p.set_defaults(fn=cmd_models)
    p = sub.add_parser("dev", help="start the Dagster UI (dagster dev) on this project's instance")
    p.add_argument("extra", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_dev)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (see EXIT_CODES_HELP). Usage errors exit 2 (argparse)."""
    args = build_parser().parse_args(argv)
    _setup_env(args.data_dir)
    try:
        with _stop_on_signals(args.command in ("run", "demo", "stale")):
            return int(args.fn(args) or 0)
    except Interrupted as stop:  # before any video finished, or a second signal
        print(f"tiktok-assets: interrupted by {stop.name}", file=sys.stderr, flush=True)
        return stop.exit_code
    except Exception as exc:  # noqa: BLE001 - a system error, not a video's: exit 2 with the traceback
        traceback.print_exc()
        print(f"tiktok-assets: error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
