"""Runs one pipeline stage over the partitions of a Dagster run, one video at a time.

Every partitioned asset is a thin wrapper around ``run_partitions``: it handles single-partition
runs and batched (multi-partition) runs alike, records each video's status and timing on disk
(``outputs/<key>/status/<stage>.json``), and never lets one bad video lose the others' work:
in a batch the failures are reported in metadata; the asset fails only when every video failed.
"""


from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from tiktok_assets.lib.layout import DataLayout, VideoLayout
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.status import FAILED, StageStatus, describe_error, read_status, run_stage, write_status

StageFn = Callable[[str, VideoLayout], Mapping[str, Any]]
SKIPPED = "skipped"


def blocked_by(video: VideoLayout, requires: list[str]) -> str | None:
    """Why this video cannot run the stage: a required upstream stage failed or never ran."""
    for stage in requires:
        status = read_status(video, stage)
        if status is None:
            return f"upstream stage {stage} has not run for this video"
        if status.status in (FAILED, SKIPPED):
            return f"upstream stage {stage} {status.status}: {status.error}"
    return None


def run_partitions(
    context: dg.AssetExecutionContext,
    layout: DataLayout,
    stage: str,
    fn: StageFn,
    requires: list[str] | None = None,
    outcome: Callable[[Mapping[str, Any]], str] | None = None,
    model_families: tuple[str, ...] = (),
) -> dg.MaterializeResult:
    """Run ``fn(key, video)`` for every partition key of the run; ``fn`` returns UI metadata.
    ``model_families``: models this stage uses; their load count and time in this process are
    added to the metadata (a run over many partitions should show one load each)."""
    keys = list(context.partition_keys)
    results: dict[str, Mapping[str, Any]] = {}
    failures: dict[str, str] = {}
    for key in keys:
        video = layout.video(key)
        reason = blocked_by(video, requires or [])
        if reason:
            write_status(video, StageStatus(stage=stage, status=SKIPPED, seconds=0.0, error=reason))
            failures[key] = reason
            context.log.warning(f"{stage} [{key}] skipped: {reason}")
            continue
        try:
            results[key] = run_stage(video, stage, lambda k=key, v=video: fn(k, v), outcome)
        except Exception as exc:  # noqa: BLE001 - recorded for this video; the others go on
            failures[key] = describe_error(exc)
            context.log.error(f"{stage} [{key}] failed: {failures[key]}")
    if failures and not results:
        detail = "; ".join(f"{k}: {v}" for k, v in failures.items())
        raise dg.Failure(description=f"{stage} failed for {detail}", metadata={"failures": failures})
    loads = {str(r.key): {"loads": r.loads, "load_seconds": r.seconds}
             for r in MODEL_CACHE.records() if isinstance(r.key, tuple) and r.key[0] in model_families}
    extra = {"model_loads": dg.MetadataValue.json(loads)} if loads else {}
    if len(keys) == 1:
        return dg.MaterializeResult(metadata={**results[keys[0]], **extra})
    return dg.MaterializeResult(
        metadata={
            "videos": len(keys),
            "succeeded": len(results),
            "failures": dg.MetadataValue.json(failures),
            **extra,
        }
    )
