"""The bookkeeping around the per-video partitions at catalogue scale (issue #14, item 4).

    python benchmarks/bench_scale.py [--sizes 1000 10000 50000] [--drop 1000] [--sensor-only]

For each catalogue size N: one tiny 1 s clip hard-linked N times into a fresh data folder, registered
(``registry.register_many``) and added as partitions in chunks, the table built once in full; then, each in
a FRESH Python process that reports its time and peak RSS (``ru_maxrss``):

- ``sensor_first``: the first ``new_video_sensor`` tick over the registered catalogue (no record of clean
  folders yet: every folder is listed);
- ``sensor_idle``: a tick with nothing new (the common tick: folders unchanged since they were found clean
  are only stat-ed; the replaced check stats a page of registered files);
- ``sensor_drop``: a tick that finds ``--drop`` new files on top of the N registered ones (one page);
- ``table_batch``: ``video_metadata`` materialized for a batch of 8 videos (one run, as the sensor asks),
  then the table update the ``feature_table_sensor`` asks for (the ``video_features`` asset: rows of those 8
  rebuilt, their shards rewritten; no compaction past ``COMPACT_MAX_ROWS``), timed as the asset's function
  and as the whole ``dg.materialize`` call.

``--sensor-only`` skips the table (its full build dominates the set-up past 50,000 videos). Prints one
table and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BATCH = 8


def _env(data: Path, home: Path) -> dict[str, str]:
    return {**os.environ, "TIKTOK_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(home), "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(ROOT)}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- set-up ------------------------------------------------------------------------------------------
def setup(work: Path, n: int, table: bool = True) -> dict[str, float]:
    """N hard links of one clip, registered and added as partitions; the table built in full."""
    import dagster as dg

    from tiktok_assets.defs.partitions import VIDEOS_PARTITION
    from tiktok_assets.lib.catalogue import registry
    from tiktok_assets.lib.layout import DataLayout
    from tiktok_assets.lib.samples import make_clip
    from tiktok_assets.lib.table import table_dataset

    layout = DataLayout(work / "data")
    layout.videos_dir.mkdir(parents=True)
    clip = work / "clip.mp4"
    make_clip(clip, width=64, height=64, duration=1.0, source="testsrc2")
    old = time.time() - 600  # settled long ago
    os.utime(clip, (old, old))
    copies = [clip]  # ext4 allows 65,000 links to one file: one copy of the clip per 60,000 videos
    for c in range(1, -(-n // 60_000)):
        copies.append(work / f"clip_{c}.mp4")
        shutil.copy2(clip, copies[-1])
    for i in range(n):
        target = layout.videos_dir / f"v{i // 1000:03d}" / f"clip_{i:06d}.mp4"
        target.parent.mkdir(exist_ok=True)
        os.link(copies[i // 60_000], target)
    figures = {}
    started = time.perf_counter()
    entries = registry.register_many(layout, sorted(layout.videos_dir.rglob("*.mp4")))
    figures["register_s"] = time.perf_counter() - started
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        keys = [e.key for e in entries]
        for i in range(0, len(keys), 10_000):
            instance.add_dynamic_partitions(VIDEOS_PARTITION, keys[i:i + 10_000])
        figures["add_partitions_s"] = time.perf_counter() - started
    if table:
        started = time.perf_counter()
        table_dataset.update_dataset(layout, keys, full=True)
        figures["full_table_s"] = time.perf_counter() - started
        figures["full_table_peak_mib"] = _peak_mib()
    return figures


# --- measurements, each in its own process ----------------------------------------------------------
def measure_sensor(drop: int) -> dict[str, Any]:
    import dagster as dg

    from tiktok_assets.definitions import defs
    from tiktok_assets.defs.model_resources import model_resources
    from tiktok_assets.defs.resources import ProjectPaths
    from tiktok_assets.defs.sensors import new_video_sensor
    from tiktok_assets.lib.layout import DataLayout

    data = Path(os.environ["TIKTOK_ASSETS_DATA_DIR"])
    layout = DataLayout(data)
    if drop:
        clip = next(layout.videos_dir.rglob("*.mp4"))
        folder = layout.videos_dir / "drop"
        folder.mkdir()
        for i in range(drop):
            os.link(clip, folder / f"new_{i:06d}.mp4")
    definitions = defs()
    resources = {**model_resources(), "paths": ProjectPaths(data_dir=str(data), settle_seconds=1)}
    with dg.DagsterInstance.get() as instance, \
            dg.build_sensor_context(instance=instance, definitions=definitions, resources=resources) as context:
        before = _peak_mib()
        started = time.perf_counter()
        result = new_video_sensor(context)
        seconds = time.perf_counter() - started
    added = len(result.dynamic_partitions_requests[0].partition_keys) if isinstance(result, dg.SensorResult) else 0
    runs = len(result.run_requests) if isinstance(result, dg.SensorResult) else 0
    listed = result.skip_message.split(" folders listed")[0].rsplit(" ", 1)[-1] if not added else "-"
    return {"seconds": seconds, "peak_mib": _peak_mib(), "peak_before_mib": before, "added": added, "runs": runs,
            "folders_listed": listed}


def measure_table() -> dict[str, Any]:
    import dagster as dg

    from tiktok_assets.defs.assets.metadata import video_metadata
    from tiktok_assets.defs.assets.table import video_features
    from tiktok_assets.defs.partitions import VIDEOS_PARTITION
    from tiktok_assets.defs.resources import ProjectPaths
    from tiktok_assets.lib.table import table_dataset

    data = Path(os.environ["TIKTOK_ASSETS_DATA_DIR"])
    paths = ProjectPaths(data_dir=str(data))
    with dg.DagsterInstance.get() as instance:
        keys = instance.get_dynamic_partitions(VIDEOS_PARTITION)[:BATCH]
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        run = dg.materialize([video_metadata], instance=instance, tags=tags, resources={"paths": paths})
        assert run.success
        marked = len(table_dataset.pending(paths.layout()))
        before = _peak_mib()
        started = time.perf_counter()
        update = table_dataset.update_dataset(paths.layout(), instance.get_dynamic_partitions(VIDEOS_PARTITION))
        function_s = time.perf_counter() - started
        for key in keys:  # the same rows again, through Dagster as the feature_table_sensor's run does it
            table_dataset.mark_changed(paths.layout(), [key])
        started = time.perf_counter()
        table_run = dg.materialize([video_features], instance=instance, resources={"paths": paths})
        materialize_s = time.perf_counter() - started
        meta = table_run.asset_materializations_for_node("video_features")[0].metadata
    return {"seconds": function_s, "materialize_s": materialize_s, "peak_mib": _peak_mib(),
            "peak_before_mib": before, "marked": marked, "rebuilt": update.rebuilt,
            "shards_written": update.shards_written, "rows": update.rows,
            "compacted": meta["compacted"].value, "metadata_bytes": len(json.dumps(
                {k: str(v.value) for k, v in meta.items()}))}


def _child(what: str, data: Path, home: Path, drop: int = 0) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", what, "--drop", str(drop)], env=_env(data, home),
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{what} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(sizes: list[int], drop: int, work_root: Path, table: bool = True) -> list[dict[str, Any]]:
    results = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix=f"scale{n}-", dir=work_root))
        home, data = work / "dagster_home", work / "data"
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        setup_out = subprocess.run([sys.executable, __file__, "--child", "setup", "--n", str(n), "--work", str(work),
                                    *([] if table else ["--sensor-only"])],
                                   env=_env(data, home), capture_output=True, text=True, check=False)
        if setup_out.returncode:
            raise RuntimeError(setup_out.stderr[-4000:])
        row: dict[str, Any] = {"n": n, **json.loads(setup_out.stdout.strip().splitlines()[-1])}
        row["sensor_first"] = _child("sensor", data, home)
        idle = [_child("sensor", data, home) for _ in range(3)]
        row["sensor_idle"] = sorted(idle, key=lambda r: r["seconds"])[1]  # median of 3
        row["sensor_drop"] = _child("sensor", data, home, drop)
        if table:
            row["table_batch"] = _child("table", data, home)
        results.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--drop", type=int, default=1000)
    parser.add_argument("--work", default=None)
    parser.add_argument("--child", default=None)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--sensor-only", action="store_true")
    args = parser.parse_args()
    if args.child == "setup":
        print(json.dumps(setup(Path(args.work), args.n, table=not args.sensor_only)))
        return
    if args.child == "sensor":
        print(json.dumps(measure_sensor(args.drop)))
        return
    if args.child == "table":
        print(json.dumps(measure_table()))
        return
    work_root = Path(args.work or tempfile.mkdtemp(prefix="bench_scale-"))
    work_root.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    results = run(args.sizes, args.drop, work_root, table=not args.sensor_only)
    print(f"\nmachine: {platform.node()}, {os.cpu_count()} cores, load average at start {load[0]:.1f}\n")
    print(f"| N registered | first tick (every folder listed) | sensor tick, idle | sensor tick, +{args.drop} new | "
          "table update after 8 videos (function / dg.materialize) | peak RSS sensor / table | full table build | "
          "register N |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        f, s, d = r["sensor_first"], r["sensor_idle"], r["sensor_drop"]
        t = r.get("table_batch")
        table = (f"{t['seconds']:.2f} s / {t['materialize_s']:.2f} s ({t['rebuilt']} rows, {t['shards_written']} shards)"
                 if t else "-")
        full = f"{r['full_table_s']:.1f} s" if "full_table_s" in r else "-"
        print(f"| {r['n']:,} | {f['seconds']:.2f} s ({f['folders_listed']} listed) | "
              f"{s['seconds']:.2f} s ({s['folders_listed']} listed) | "
              f"{d['seconds']:.2f} s ({d['added']} added, {d['runs']} runs) | {table} | "
              f"{s['peak_mib']:.0f} / {t['peak_mib'] if t else 0:.0f} MiB | {full} | {r['register_s']:.1f} s |")
    out = ROOT / "benchmarks" / "results" / f"bench_scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"load_average": load, "results": results}, indent=1))
    print(f"\n{out}")


if __name__ == "__main__":
    main()
