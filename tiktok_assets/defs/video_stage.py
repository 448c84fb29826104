"""The shape of every per-video stage: a partitioned asset with one per-partition check.

A run covers a batch of videos (a partition range). Each video's outcome is recorded once, on disk
next to its artifacts (``outputs/<key>/status/<stage>.json``, the source of truth the table and the
downstream stages read), and mirrored into Dagster from the same record:

- the materialization of each partition carries that video's metadata and ``outcome``;
- the ``video_ok`` check of each partition fails for a data error (``failed``) or an upstream
  failure (``skipped``), with the error as its description, and fails with severity WARN when
  the stage could not run here (``unavailable``).

A bad video never fails the step, so the other videos of the batch and every downstream stage (and
the feature table) still run. Dagster cannot mark one partition of a multi-partition step as failed
(dagster-io/dagster#17836), so the failed check is how a partition says it has no result.
"""

import functools
import hashlib
import json
import typing
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

from tiktok_assets.defs.batching import GPU_POOL, video_backfill_policy
from tiktok_assets.defs.model_resources import ModelResource, model_resources
from tiktok_assets.defs.partitions import videos_partitions
from tiktok_assets.lib.catalogue.keys import InvalidKeyError
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.layout import DataLayout, VideoLayout
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.stage_plan import REQUIRES
from tiktok_assets.lib.status import (
    DISABLED,
    DONE,
    FAILED,
    SKIPPED,
    UNAVAILABLE,
    StageStatus,
    describe_error,
    read_status,
    run_stage,
    write_status,
)
from tiktok_assets.lib.table import table_dataset
from tiktok_assets.lib.table.table import PIPELINE_VERSION

StageFn = Callable[[str, VideoLayout], Mapping[str, Any]]
StageEvent = dg.MaterializeResult | dg.AssetCheckEvaluation
VIDEO_CHECK = "video_ok"
# On Kubernetes with the k8s_job_executor (TIKTOK_ASSETS_EXECUTOR=k8s, docker/helm/values.yaml) each step is a
# pod: the steps of the `gpu` pool (model stages) ask for one GPU, every other step runs on CPU nodes.
K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_K8S_CONFIG = {"container_config": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}
_CHECK_DESCRIPTION = (
    "This video's stage finished without a data error. Fails with the error for a bad video (or when a "
    "stage it requires failed); fails as a warning when the stage could not run here (model not installed)."
)


def video_stage(
    name: str,
    *,
    deps: Sequence[str] = (),
    group: str,
    kinds: set[str],
    description: str,
    pool: str | None = None,
) -> Callable[[Callable[..., Iterator[StageEvent]]], dg.AssetsDefinition]:
    """Decorate a stage function (a generator over :func:`run_partitions`) as a partitioned asset with
    the per-partition ``video_ok`` check, batched by the videos backfill policy."""
    def decorate(fn: Callable[..., Iterator[StageEvent]]) -> dg.AssetsDefinition:
        return _multi_asset(code_version=stage_code_version(fn))(fn)

    _multi_asset = functools.partial(
        dg.multi_asset,
        name=name,
        specs=[dg.AssetSpec(name, deps=deps, group_name=group, kinds=kinds, description=description,
                            partitions_def=videos_partitions)],
        check_specs=[dg.AssetCheckSpec(VIDEO_CHECK, asset=name, partitions_def=videos_partitions,
                                       description=_CHECK_DESCRIPTION)],
        partitions_def=videos_partitions,
        backfill_policy=video_backfill_policy,
        can_subset=True,  # makes the check output optional: its results are logged per partition
        pool=pool,
        op_tags={K8S_CONFIG_TAG: GPU_K8S_CONFIG} if pool == GPU_POOL else None,
    )
    return decorate


def stage_code_version(fn: Callable[..., Any]) -> str:
    """The stage's code version: the pipeline version, the defaults of its settings and the models its
    resources use as configured when the code location loads (TIKTOK_ASSETS_* variables). Changing a
    threshold default or a model makes its materialized partitions show as changed code in the UI.
    (A per-run config override is recorded in the run's config, not here.)"""
    defaults = model_resources()
    settings, models = {}, {}
    for param, cls in typing.get_type_hints(fn).items():
        if isinstance(cls, type) and issubclass(cls, ModelResource):  # resources are Config classes too
            models[param] = defaults[param]._ref().model
        elif isinstance(cls, type) and issubclass(cls, dg.Config) and not issubclass(cls, dg.ConfigurableResource):
            settings[param] = cls().model_dump()
    digest = hashlib.sha1(json.dumps({"settings": settings, "models": models}, sort_keys=True, default=str).encode())
    return f"{PIPELINE_VERSION}-{digest.hexdigest()[:10]}"


def blocked_by(video: VideoLayout, stage: str) -> StageStatus | None:
    """The outcome this stage takes without running when a stage it requires has no result."""
    for upstream in REQUIRES[stage]:
        status = read_status(video, upstream)
        if status is None:
            return StageStatus(stage, SKIPPED, 0.0, f"upstream stage {upstream} has not run for this video")
        if status.status == SKIPPED:  # name the root cause, not the chain
            return StageStatus(stage, SKIPPED, 0.0, status.error)
        if status.status == FAILED:
            return StageStatus(stage, SKIPPED, 0.0, f"upstream stage {upstream} failed: {status.error}")
        if status.status in (DISABLED, UNAVAILABLE):
            return StageStatus(stage, UNAVAILABLE, 0.0, f"needs {upstream}, which is {status.status}")
    return None


def check_evaluation(asset_key: dg.AssetKey, key: str, status: StageStatus) -> dg.AssetCheckEvaluation:
    """Passed when the stage did its work in full (or is switched off); a WARN when it is unavailable
    or did its work only in part (``warning``, e.g. a partly corrupt file); an ERROR otherwise."""
    done = status.status in DONE or status.status == DISABLED
    passed = done and not status.warning
    warn = status.status == UNAVAILABLE or (done and status.warning)
    description = None if passed else f"partial: {status.warning}" if done else f"{status.status}: {status.error}"
    return dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=VIDEO_CHECK,
        partition=key,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"outcome": status.status, "error": status.error or "", "warning": status.warning or ""},
    )


def run_partitions(
    context: dg.AssetExecutionContext,
    layout: DataLayout,
    stage: str,
    fn: StageFn,
    unavailable: str | None = None,
    model_families: tuple[str, ...] = (),
) -> Iterator[StageEvent]:
    """Run ``fn(key, video)`` (returns UI metadata, with ``status`` when not ok) for every video of the
    run, record each outcome, and yield the materialization and the per-partition check results.

    ``unavailable``: why this stage cannot run in this run (a missing model): every video gets that
    outcome without trying. A model that turns out unavailable while loading does the same for the
    rest of the batch, and is reported once."""
    outcomes: dict[str, StageStatus] = {}
    if unavailable:
        context.log.warning(f"{stage} unavailable in this run: {unavailable}")
    keys = list(context.partition_keys)
    for position, key in enumerate(keys, 1):
        try:
            video = layout.video(key)
        except InvalidKeyError as exc:  # e.g. "../../x" added from the UI: nothing is written anywhere
            context.log.error(f"{stage} [{key!r}] refused: {exc}")
            outcomes[key] = StageStatus(stage, FAILED, 0.0, str(exc))
            continue
        status = blocked_by(video, stage) or (
            StageStatus(stage, UNAVAILABLE, 0.0, unavailable) if unavailable else None)
        result: Mapping[str, Any] | None = None
        if status is not None:
            write_status(video, status)
        else:
            try:
                status, result = run_stage(video, stage, lambda k=key, v=video: fn(k, v))
            except ModelUnavailableError as exc:
                unavailable = describe_error(exc)
                context.log.warning(f"{stage} unavailable in this run: {unavailable}")
                status = StageStatus(stage, UNAVAILABLE, 0.0, unavailable)
                write_status(video, status)
        if status.status == FAILED:
            context.log.error(f"{stage} [{key}] failed: {status.error}")
        elif status.warning:
            context.log.warning(f"{stage} [{key}] {status.status} in part: {status.warning}")
        else:  # progress of the batch, video by video
            context.log.info(f"{stage} [{key}] {status.status} in {status.seconds:.1f}s ({position}/{len(keys)})")
        outcomes[key] = status
        table_dataset.mark_changed(layout, [key])  # its table row is rebuilt by the next table update
        shown = {k: v for k, v in (result or {}).items() if k not in ("status", "warning")}
        context.add_asset_metadata(
            {**shown, "outcome": status.status, "error": status.error or "", "warning": status.warning or "",
             "seconds": status.seconds},
            partition_key=key,
        )
    counts = Counter(s.status for s in outcomes.values())
    loads = {str(r.key): {"loads": r.loads, "load_seconds": r.seconds}
             for r in MODEL_CACHE.records() if isinstance(r.key, tuple) and r.key[0] in model_families}
    yield dg.MaterializeResult(
        asset_key=context.asset_key,
        metadata={"videos": len(outcomes), "outcomes": dg.MetadataValue.json(dict(counts)),
                  **({"model_loads": dg.MetadataValue.json(loads)} if loads else {})},
    )
    for key, status in outcomes.items():
        yield check_evaluation(context.asset_key, key, status)
