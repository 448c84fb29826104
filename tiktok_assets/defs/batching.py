"""How model stages batch partitions: one run covers up to N videos (models load once per run)."""

import os

import dagster as dg

MODEL_BATCH = int(os.environ.get("TIKTOK_ASSETS_MODEL_BATCH", "8"))
model_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=MODEL_BATCH)
GPU_POOL = "gpu"
