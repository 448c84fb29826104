"""How per-video stages batch partitions in backfills: one run covers up to N videos, so model stages
load each model once per run. Every partitioned asset loops over context.partition_keys."""

import os

import dagster as dg

MODEL_BATCH = int(os.environ.get("TIKTOK_ASSETS_MODEL_BATCH", "8"))
video_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=MODEL_BATCH)
GPU_POOL = "gpu"
