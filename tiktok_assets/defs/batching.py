"""How per-video stages batch partitions in backfills: one run covers up to N videos, so model stages
load each model once per run. Every partitioned asset loops over context.partition_keys."""

import os

import dagster as dg

MODEL_BATCH = int(os.environ.get("TIKTOK_ASSETS_MODEL_BATCH", "8"))
video_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=MODEL_BATCH)
GPU_POOL = "gpu"


def contiguous_batches(ordered_keys: list[str], selected: list[str], batch: int = MODEL_BATCH) -> list[list[str]]:
    """Split ``selected`` partition keys into runs of at most ``batch`` keys, each a range of keys that
    are adjacent in ``ordered_keys`` (the partitions definition's order), so a run over the range
    ``[first, last]`` covers exactly those keys."""
    index = {k: i for i, k in enumerate(ordered_keys)}
    missing = [k for k in selected if k not in index]
    if missing:
        raise KeyError(f"not partitions of videos: {', '.join(missing)}")
    batches: list[list[str]] = []
    for key in sorted(dict.fromkeys(selected), key=index.__getitem__):
        last = batches[-1] if batches else None
        if last and len(last) < batch and index[key] == index[last[-1]] + 1:
            last.append(key)
        else:
            batches.append([key])
    return batches
