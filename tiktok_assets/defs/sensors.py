"""Sensors: new videos become partitions and runs; every finished run leaves a current feature table.

``new_video_sensor``: the new, fully written videos of a tick become partitions of ``videos`` and
are requested as runs of every per-video stage over batches of up to ``TIKTOK_ASSETS_MODEL_BATCH``
videos (a partition key range: the keys added in one tick are adjacent), so each model loads once per
run.

``stale_video_sensor`` (off by default): runs of exactly the stages that are stale (a model or a
setting default changed, a file replaced), batched like the new ones.

``feature_table_sensor``: whenever runs that materialized per-video stages have ended (succeeded or
failed), one run of the ``feature_table`` job rewrites the CSV and Parquet; at most once per
interval, however many runs a backfill had.
"""

import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import dagster as dg

from tiktok_assets.defs.assets.video_file import observation
from tiktok_assets.defs.batching import MODEL_BATCH, contiguous_batches
from tiktok_assets.defs.jobs import feature_table
from tiktok_assets.defs.model_resources import (
    BlipResource,
    ClipResource,
    DemucsResource,
    VlmResource,
    WhisperResource,
    YoloWorldResource,
    stage_plan,
)
from tiktok_assets.defs.partitions import VIDEOS_PARTITION, videos_partitions
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.staleness import redo_groups, stale_stages
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.catalogue.watch import scan_folder
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.table.schema import STAGES

TABLE_INTERVAL_SECONDS = int(os.environ.get("TIKTOK_ASSETS_TABLE_INTERVAL_SECONDS", "30"))
# New files registered per tick: a drop of 100,000 files is taken a page at a time (the folder scan is the
# cursor: what is not registered yet is new again at the next tick), so no tick nears Dagster's 60 s timeout.
MAX_NEW_PER_TICK = int(os.environ.get("TIKTOK_ASSETS_SENSOR_MAX_NEW", "500"))
# Registered files whose size and mtime one tick compares with the registry (files replaced in place): a
# catalogue past this is checked a page per tick, each file every ceil(N / page) ticks.
STAT_PAGE = int(os.environ.get("TIKTOK_ASSETS_SENSOR_STAT_PAGE", "100000"))
# A folder found clean is not listed again while its modification time stays put, for at most this long.
RELIST_SECONDS = float(os.environ.get("TIKTOK_ASSETS_SENSOR_RELIST_SECONDS", "600"))
SENSOR_TAG = "tiktok_assets/sensor"
# Dagster's tags for a run over a partition key range (what its own backfills set).
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
VIDEO_STAGES = dg.AssetSelection.assets(*STAGES)
STAGE_KEYS = {dg.AssetKey(stage) for stage in STAGES}
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def batch_run_requests(
    batches: list[list[str]], reason: str = "new", stages: tuple[str, ...] = (), sensor: str = "new_video_sensor"
) -> list[dg.RunRequest]:
    """One run of every per-video stage (or of ``stages``) per batch of adjacent partition keys."""
    return [
        dg.RunRequest(
            run_key=f"{reason}:{batch[0]}..{batch[-1]}:{time.time():.0f}",
            asset_selection=[dg.AssetKey(s) for s in stages] if stages else None,
            tags={RANGE_START: batch[0], RANGE_END: batch[-1], SENSOR_TAG: f"{sensor}/{reason}"},
        )
        for batch in batches
    ]


def replaced_videos(layout: DataLayout, page: list[tuple[int, str, str, int | None, float | None]],
                    known: set[str]) -> dict[str, str]:
    """Videos of a page of registry rows (see ``registry.files_page``) whose file was replaced in place
    since it was registered (key -> new content hash; entries refreshed). Only a file whose size or
    mtime moved is looked up and hashed again."""
    moved: dict[str, tuple[str, int, float]] = {}
    for _, key, path, size, mtime in page:
        if key not in known:  # registered, not a partition (yet): nothing to re-run
            continue
        try:
            info = os.stat(path)
        except OSError:
            continue  # gone: the table says so (source_missing)
        if (info.st_size, info.st_mtime) != (size, mtime):
            moved[key] = (path, info.st_size, info.st_mtime)
    entries = registry.lookup_many(layout, list(moved))
    seen = [replace(e, size=moved[k][1], mtime=moved[k][2],
                    content_hash=registry.content_hash(e.source_path, like=e.content_hash))
            for k, e in entries.items() if e.source_path == moved[k][0]]
    registry.refresh(layout, seen)  # a file only touched is not hashed again at the next tick
    return {e.key: e.content_hash for e in seen if e.content_hash != entries[e.key].content_hash}


@dg.sensor(
    asset_selection=VIDEO_STAGES,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds every new, fully written video in data/tiktok_videos/ (sub-folders too) as a partition and "
    "runs every per-video stage for them in batches; re-runs videos whose file was replaced. Hidden, non-video "
    "and still-growing files are left alone; link loops, FIFOs and folders named like videos are skipped.",
)
def new_video_sensor(
    context: dg.SensorEvaluationContext,
    paths: ProjectPaths,
    whisper: WhisperResource,
    demucs: DemucsResource,
    clip: ClipResource,
    yolo_world: YoloWorldResource,
    blip: BlipResource,
    vlm: VlmResource,
) -> dg.SensorResult | dg.SkipReason:
    layout = paths.layout()
    ordered = context.instance.get_dynamic_partitions(VIDEOS_PARTITION)
    known = set(ordered)
    scan = scan_folder(  # folders unchanged since every video in them was a partition are not listed
        layout.videos_dir, paths.settle_seconds,
        known_in=lambda folders: {p: k for p, k in registry.files_in(layout, folders).items() if k in known},
        previous=registry.scanned_folders(layout), relist_seconds=RELIST_SECONDS)
    for reason in scan.skipped[:20]:
        context.log.warning(f"skipped {reason}")
    page, later = scan.new[:MAX_NEW_PER_TICK], len(scan.new) - MAX_NEW_PER_TICK
    entries = {e.key: e for e in registry.register_many(layout, [v.path for v in page]) if e.key not in known}
    keys = list(entries)
    # A folder with new files is listed again at the next tick, so a tick whose result the daemon never
    # applied loses nothing.
    registry.save_scanned_folders(layout, scan.folders)
    replaced: dict[str, str] = {}
    if paths.reprocess_replaced:  # a page of the registry per tick, where the last one ended
        stat_page = registry.files_page(layout, after=int(context.cursor or 0), limit=STAT_PAGE)
        context.update_cursor(str(stat_page[-1][0] if len(stat_page) == STAT_PAGE else 0))
        replaced = replaced_videos(layout, stat_page, known)
    if not keys and not replaced:
        return dg.SkipReason(f"no new or replaced videos in {layout.videos_dir} ({scan.growing} still being "
                             f"written, {len(scan.skipped)} skipped, {scan.listed} folders listed)")
    plan = stage_plan({"whisper": whisper, "demucs": demucs, "clip": clip, "yolo_world": yolo_world,
                       "blip": blip, "vlm": vlm})
    context.log.info(f"adding {len(keys)} videos, reprocessing {len(replaced)} replaced ones "
                     f"({scan.growing} still being written"
                     f"{f', {later} more new ones at the next ticks' if later > 0 else ''})\n{plan.summary()}")
    new_batches = [keys[i:i + MODEL_BATCH] for i in range(0, len(keys), MODEL_BATCH)]  # appended in order
    return dg.SensorResult(
        run_requests=batch_run_requests(new_batches)
        + batch_run_requests(contiguous_batches(ordered, list(replaced)), reason="replaced"),
        dynamic_partitions_requests=[videos_partitions.build_add_request(keys)] if keys else [],
        # New and replaced files have new data versions by definition: no lookup per key.
        asset_events=[observation(k, entries[k].content_hash) for k in keys]
        + [observation(k, v) for k, v in replaced.items()],
    )


UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]


@dg.sensor(
    asset_selection=VIDEO_STAGES,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Redoes exactly the per-video stages that are stale (a model or a setting default changed, or "
    "a source file was replaced), in batches; waits while its previous runs are unfinished. Off by default: "
    "turn it on after switching a model to bring every video up to date (`tiktok-assets stale` lists them).",
)
def stale_video_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    unfinished = context.instance.get_run_records(
        filters=dg.RunsFilter(statuses=UNFINISHED, tags={SENSOR_TAG: "stale_video_sensor/stale"}), limit=1)
    if unfinished:
        return dg.SkipReason("runs it requested are not finished yet")
    ordered = context.instance.get_dynamic_partitions(VIDEOS_PARTITION)
    stale = stale_stages(context.instance, context.repository_def.asset_graph, ordered)
    if not stale:
        return dg.SkipReason("no stale stages")
    requests = []
    for stages, keys in redo_groups(stale).items():
        context.log.info(f"redoing {', '.join(stages)} for {len(keys)} videos")
        requests += batch_run_requests(contiguous_batches(ordered, keys), "stale", stages, "stale_video_sensor")
    return dg.SensorResult(run_requests=requests)


@dataclass(frozen=True)
class _LatestTable:
    run_id: str  # "" for a table materialization reported outside a run
    read_at: float  # when it read the per-video outputs (0 without a table)


def _latest_table(instance: dg.DagsterInstance) -> _LatestTable:
    """The latest table and when it read the per-video outputs: its run's start (a table run that started
    before a video run ended may have missed that run's last outputs, however late it was written), or
    the time a table materialization reported outside a run was written."""
    latest = instance.get_latest_materialization_event(dg.AssetKey("video_features"))
    if latest is None:
        return _LatestTable("", 0.0)
    if not latest.run_id:
        return _LatestTable("", latest.timestamp)
    record = instance.get_run_record_by_id(latest.run_id)
    started = record.start_time if record is not None else None
    return _LatestTable(latest.run_id, started or 0.0)


def _touches_stages(run: dg.DagsterRun) -> bool:
    return bool(run.asset_selection and run.asset_selection & STAGE_KEYS) or run.job_name == "video_pipeline"


@dg.sensor(
    job=feature_table,
    minimum_interval_seconds=TABLE_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rewrites video_features_results.csv / .parquet after runs of per-video stages end "
    "(succeeded or failed), at most once per interval.",
)
def feature_table_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    since = float(context.cursor or 0)
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED, updated_after=datetime.fromtimestamp(since, UTC)),
        order_by="update_timestamp",
        ascending=True,
    )
    if not records:
        return dg.SkipReason("no runs ended since the last check")
    context.update_cursor(str(max(r.update_timestamp.timestamp() for r in records)))
    table = _latest_table(context.instance)
    # a run that wrote the table itself (--select '*') did so after its stages: the table depends on them
    ended = [r.end_time or r.update_timestamp.timestamp() for r in records
             if _touches_stages(r.dagster_run) and r.dagster_run.run_id != table.run_id]
    if not ended:
        return dg.SkipReason("the runs that ended did not process videos, or wrote the table themselves")
    if table.read_at >= max(ended):
        return dg.SkipReason("the table was last built from outputs read after the last run ended")
    return dg.RunRequest(run_key=f"table-after-{max(ended):.3f}", tags={SENSOR_TAG: "feature_table_sensor"})
