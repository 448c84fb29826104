"""The Dagster path vs the in-process CLI on the same 8 sample videos, in one invocation.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_dagster_path.py [--videos 8] [--timeout 900]

Every path starts from a fresh DAGSTER_HOME (a copy of the project's dagster.yaml) and a fresh data
folder holding the same N clips (the 5 sample specs, copied under distinct names to reach N), with the
same model environment: the real packaged Whisper tiny.en and tiny random CLIP / YOLO-World / BLIP /
Qwen2.5-VL built once by scripts/make_test_models.py (separation off).

A. baseline: ``tiktok-assets --data-dir D1 run`` (register, one in-process run per batch of up to
   TIKTOK_ASSETS_MODEL_BATCH videos, the feature table), wall time until the process exits.
B. the sensor path, as users run it: a ``dagster api grpc`` code server and ``dagster-daemon run``
   (workspace.yaml pointing at the server), TIKTOK_ASSETS_SETTLE_SECONDS=1 and
   TIKTOK_ASSETS_TABLE_INTERVAL_SECONDS=5. Once the daemon's first ``new_video_sensor`` tick is
   recorded, the clips are copied into D2/tiktok_videos (with old mtimes) and the clock runs until
   D2/video_features_results.parquet has N rows, none ``incomplete``. The sensor ticks every 30 s at
   least, so the drop -> first run latency (up to ~30 s + the run queue's dequeue) is reported apart
   from the processing time: first run launched (RUN_STARTING, read from the instance) -> table written
   (the parquet's mtime). That processing time is what is compared with A.
C. the Dagster CLI over the N partitions in one run: ``tiktok-assets add`` of the clips, then
   ``dagster job execute -j video_pipeline`` with the partition range tags, then ``dagster job execute
   -j feature_table``. First it checks that ``dagster asset materialize --partition-range`` refuses the
   stages' multi_run backfill policy (it requires single_run), and records what it said.

For every path the ``model_loads`` metadata of the model stages' materializations is read from that
path's instance and checked: each model loaded once per run (the per-process model cache's count).
Also measured: definition import time (``python -X importtime -c 'import tiktok_assets.definitions'``)
and the wall time of ``python -c 'from tiktok_assets.definitions import defs; defs()'``.
Results: a table on stdout and JSON in benchmarks/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg
import pandas as pd
import yaml

BIN = Path(sys.executable).parent
CODE = ROOT  # the snapshot of the project every process runs (see snapshot())
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
MODEL_STAGES = ["audio_stems", "transcript", "audio_events", "frame_objects", "representative_frames",
                "frame_features", "video_understanding"]
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
TABLE = "video_features_results.parquet"


# --- processes -----------------------------------------------------------------------------------

class Procs:
    """Background processes, each in its own process group; stopped (group SIGTERM, then SIGKILL) on exit."""

    def __init__(self, logs: Path) -> None:
        self.logs, self.procs, self.files = logs, [], []

    def spawn(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("w")
        self.files.append(log)
        proc = subprocess.Popen(args, cwd=CODE, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            stop_group(proc)
        for f in self.files:
            f.close()


def stop_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def run_cmd(args: list[str], env: dict, log: Path, timeout: float) -> tuple[int, float]:
    """Run to completion in its own process group (killed as a group on timeout); (returncode, seconds)."""
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=CODE, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            raise TimeoutError(f"{shlex.join(args)} ran over {timeout:.0f}s; log: {log}\n{tail(log)}") from None
        finally:
            if proc.poll() is None:
                stop_group(proc)
    return rc, time.perf_counter() - started


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def wait_for(what: str, check, timeout: float, logs: Path, every: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := check():
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n"
                       + "\n".join(f"--- {p.name}\n{tail(p)}" for p in sorted(logs.glob("*.log"))))


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- setup ---------------------------------------------------------------------------------------

def snapshot(code: Path, source: str) -> str:
    """Copy the project (``head``: the last commit; ``worktree``: tracked + untracked files as they are
    now) to ``code``, so that edits made to the checkout while the benchmark runs change nothing.
    Every process runs from there (cwd and PYTHONPATH); returns a description of what was copied."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    code.mkdir(parents=True)
    if source == "head":
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
        return f"HEAD {commit}"
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (code / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, code / rel)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True,
                           check=True).stdout.split("\n")
    return f"worktree at {commit} ({len([d for d in dirty if d.strip()])} changed / untracked files)"


def models_env(folder: Path, env: dict) -> dict[str, str]:
    out = subprocess.run([sys.executable, str(CODE / "scripts" / "make_test_models.py"), str(folder)], cwd=CODE,
                         env=env, capture_output=True, text=True, timeout=900, check=True).stdout
    env = {"TIKTOK_ASSETS_SEPARATION": "0"}  # separation off, as in the recorded runs
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
    return env


def make_clips(folder: Path, n: int) -> list[Path]:
    """N distinct files: the sample clips copied under numbered names (keys come from names)."""
    from tiktok_assets.lib.samples import generate_samples, pattern_specs

    specs = [c.name for c, _, _ in pattern_specs()]  # the clips of the recorded runs
    generate_samples(folder / "samples", specs)
    clips = []
    for i in range(n):
        name = specs[i % len(specs)]
        dst = folder / "clips" / f"v{i + 1:02d}_{name}.mp4"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "samples" / f"{name}.mp4", dst)
        clips.append(dst)
    return clips


def fresh_home(path: Path, settings: dict | None = None) -> Path:
    path.mkdir(parents=True)
    if settings is None:
        shutil.copy(CODE / "dagster.yaml", path / "dagster.yaml")
    else:
        (path / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return path


def drop(clips: list[Path], videos_dir: Path, age_s: float = 600) -> None:
    videos_dir.mkdir(parents=True, exist_ok=True)
    old = time.time() - age_s
    for clip in clips:
        dst = videos_dir / clip.name
        shutil.copy(clip, dst)
        os.utime(dst, (old, old))


def table_summary(data_dir: Path) -> dict:
    from tiktok_assets.lib.table.schema import STAGES

    table = pd.read_parquet(data_dir / TABLE)
    stage_seconds = {s: float(table[f"{s}_seconds"].fillna(0).sum()) for s in STAGES}
    return {"rows": len(table), "status": table["status"].value_counts().to_dict(),
            "stage_seconds_sum": round(sum(stage_seconds.values()), 2),
            "stage_seconds": {k: round(v, 2) for k, v in stage_seconds.items()},
            "written_at": (data_dir / TABLE).stat().st_mtime}


def require_healthy(name: str, home: Path, data_dir: Path, n: int, logs: Path) -> None:
    """A benchmark of a broken pipeline measures nothing: every run succeeded, every row is complete."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        bad = [f"{r.dagster_run.job_name} {r.dagster_run.status.value}" for r in instance.get_run_records()
               if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
    if bad or not table_complete(data_dir, n):
        raise RuntimeError(f"path {name}: runs not successful ({bad}) or the table is incomplete; logs in {logs}")


def failed_runs(home: Path) -> list[str]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [r.dagster_run.run_id for r in instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]))]


def table_complete(data_dir: Path, n: int) -> bool:
    path = data_dir / TABLE
    if not path.exists():
        return False
    try:
        table = pd.read_parquet(path, columns=["status"])
    except Exception:  # noqa: BLE001 - being replaced right now: try again
        return False
    return len(table) == n and not (table["status"] == "incomplete").any()


# --- the instance --------------------------------------------------------------------------------

def runs_and_loads(home: Path) -> dict:
    """Per run of the instance: job, status, timestamps and model_loads of the model stages.
    ``loads`` is the run process's model cache count; once per run = every count is 1."""
    out = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for record in sorted(instance.get_run_records(), key=lambda r: r.create_timestamp):
            run = record.dagster_run
            starting = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_STARTING)
            loads: dict[str, dict[str, int]] = {}
            videos: dict[str, int] = {}
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
                mat = entry.asset_materialization
                stage = mat.asset_key.to_user_string()
                if stage not in MODEL_STAGES:
                    continue
                videos[stage] = videos.get(stage, 0) + 1
                meta = mat.metadata.get("model_loads")
                if meta is not None:
                    loads[stage] = {k: v["loads"] for k, v in meta.value.items()}
            out.append({
                "run_id": run.run_id, "job": run.job_name,
                # the sensor's runs are asset selections (job __ASSET_JOB): what matters is the range
                "kind": "table" if run.job_name == "feature_table" else "pipeline" if run.tags.get(RANGE_START)
                else "other", "status": run.status.value,
                "range": [run.tags.get(RANGE_START), run.tags.get(RANGE_END)],
                "created": record.create_timestamp.timestamp(),
                "launched": starting[0].timestamp if starting else None,
                "started": record.start_time, "ended": record.end_time,
                "model_loads": loads, "materialized_partitions": videos,
            })
    return {"runs": out}


def check_loads(runs: list[dict]) -> tuple[bool, dict]:
    """Every model of every pipeline run loaded exactly once; and the loads summed per model stage."""
    ok, per_stage = True, {}
    for run in runs:
        if run["kind"] != "pipeline":
            continue
        for stage, models in run["model_loads"].items():
            for count in models.values():
                ok &= count == 1
            per_stage[stage] = per_stage.get(stage, 0) + sum(models.values())
    return ok, per_stage


# --- the paths -----------------------------------------------------------------------------------

def path_a(root: Path, clips: list[Path], env: dict, timeout: float) -> dict:
    home, data = fresh_home(root / "home_a"), root / "data_a"
    drop(clips, data / "tiktok_videos")
    env = {**env, "DAGSTER_HOME": str(home)}
    load0 = loadavg()
    rc, wall = run_cmd([str(BIN / "tiktok-assets"), "--data-dir", str(data), "run"], env, root / "logs" / "a_run.log",
                       timeout)
    if rc != 0:
        raise RuntimeError(f"tiktok-assets run exited {rc}\n{tail(root / 'logs' / 'a_run.log')}")
    require_healthy("A", home, data, len(clips), root / "logs")
    return {"path": "A", "what": "tiktok-assets run (in process)", "rc": rc, "wall_s": round(wall, 2),
            "table": table_summary(data), **runs_and_loads(home), "loadavg_before": load0,
            "loadavg_after": loadavg()}


def path_b(root: Path, clips: list[Path], env: dict, timeout: float) -> dict:
    home, data = fresh_home(root / "home_b"), root / "data_b"
    logs = root / "logs"
    (data / "tiktok_videos").mkdir(parents=True)
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    workspace = root / "workspace_b.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
        "host": "localhost", "port": port, "location_name": "tiktok_assets"}}]}))
    env = {**env, "DAGSTER_HOME": str(home), "TIKTOK_ASSETS_DATA_DIR": str(data),
           "TIKTOK_ASSETS_SETTLE_SECONDS": "1", "TIKTOK_ASSETS_TABLE_INTERVAL_SECONDS": "5"}

    def serving() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("localhost", port)) == 0

    def first_tick() -> bool:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            origin = [s for s in instance.all_instigator_state() if s.instigator_name == "new_video_sensor"]
            return bool(origin) and bool(instance.get_ticks(origin[0].instigator_origin_id,
                                                            origin[0].selector_id, limit=1))

    with Procs(logs) as procs:
        t_server = time.perf_counter()
        procs.spawn("b_code_server", [str(BIN / "dagster"), "api", "grpc", "-m", "tiktok_assets.definitions",
                                      "-h", "localhost", "-p", str(port), "--location-name", "tiktok_assets"], env)
        wait_for("the code server", serving, 300, logs)
        server_up = time.perf_counter() - t_server
        procs.spawn("b_daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env)
        wait_for("the daemon's first new_video_sensor tick", first_tick, 300, logs, every=1)
        load0 = loadavg()
        dropped = time.time()
        drop(clips, data / "tiktok_videos")
        polls = iter(range(10**9))

        def done() -> bool:
            if next(polls) % 10 == 9 and (failed := failed_runs(home)):
                raise RuntimeError(f"path B: runs failed: {failed}; logs in {logs}\n{tail(logs / 'b_code_server.log')}")
            return table_complete(data, len(clips))

        wait_for(f"{TABLE} with {len(clips)} complete rows", done, timeout, logs)
        detected = time.time()
        time.sleep(1)  # let the table run's end be recorded
    require_healthy("B", home, data, len(clips), logs)
    table = table_summary(data)
    runs = runs_and_loads(home)
    pipeline = [r for r in runs["runs"] if r["kind"] == "pipeline"]
    tables = [r for r in runs["runs"] if r["kind"] == "table"]
    first_created = min(r["created"] for r in pipeline)
    first_launched = min(r["launched"] for r in pipeline if r["launched"])
    first_started = min(r["started"] for r in pipeline if r["started"])
    last_ended = max(r["ended"] or 0 for r in pipeline)
    written = table["written_at"]
    return {
        "path": "B", "what": "sensor + daemon + code server", "wall_s": round(written - dropped, 2),
        "processing_s": round(written - first_launched, 2),
        "from_run_start_s": round(written - first_started, 2),
        "breakdown": {
            "drop_to_run_created_s": round(first_created - dropped, 2),
            "created_to_launched_s": round(first_launched - first_created, 2),
            "launched_to_run_start_s": round(first_started - first_launched, 2),
            "pipeline_runs_start_to_end_s": round(last_ended - first_started, 2),
            "last_run_end_to_table_written_s": round(written - last_ended, 2),
            "table_runs": [{k: r[k] for k in ("status", "created", "launched", "started", "ended")} for r in tables],
            "table_seen_by_poll_s": round(detected - written, 2),
        },
        "code_server_up_s": round(server_up, 2), "pipeline_runs": len(pipeline), "table": table, **runs,
        "loadavg_before": load0, "loadavg_after": loadavg(),
    }


def path_c(root: Path, clips: list[Path], env: dict, timeout: float) -> dict:
    home, data = fresh_home(root / "home_c"), root / "data_c"
    logs = root / "logs"
    drop(clips, data / "tiktok_videos")
    env = {**env, "DAGSTER_HOME": str(home), "TIKTOK_ASSETS_DATA_DIR": str(data)}
    from tiktok_assets.lib.catalogue.keys import partition_key_for
    from tiktok_assets.lib.table.schema import STAGES

    keys = [partition_key_for(c.name) for c in sorted(clips)]
    # Does `dagster asset materialize --partition-range` take the per-video stages? (Not timed.)
    rc, _ = run_cmd([str(BIN / "dagster"), "asset", "materialize", "-m", "tiktok_assets.definitions",
                     "--select", ",".join(STAGES), "--partition-range", f"{keys[0]}...{keys[-1]}"], env,
                    logs / "c_asset_materialize_range.log", 300)
    said = [ln for ln in tail(logs / "c_asset_materialize_range.log", 400).splitlines()
            if "single_run" in ln or "Error" in ln]
    refusal = {"rc": rc, "message": said[-1].strip() if said else tail(logs / "c_asset_materialize_range.log", 5)}
    load0 = loadavg()
    steps = {}
    rc, steps["add_s"] = run_cmd([str(BIN / "tiktok-assets"), "--data-dir", str(data), "add",
                                  str(data / "tiktok_videos")], env, logs / "c_add.log", 300)
    assert rc == 0, tail(logs / "c_add.log")
    tags = json.dumps({RANGE_START: keys[0], RANGE_END: keys[-1]})
    rc, steps["video_pipeline_s"] = run_cmd(
        [str(BIN / "dagster"), "job", "execute", "-m", "tiktok_assets.definitions", "-j", "video_pipeline",
         "--tags", tags], env, logs / "c_video_pipeline.log", timeout)
    assert rc == 0, tail(logs / "c_video_pipeline.log")
    rc, steps["feature_table_s"] = run_cmd(
        [str(BIN / "dagster"), "job", "execute", "-m", "tiktok_assets.definitions", "-j", "feature_table"], env,
        logs / "c_feature_table.log", 600)
    assert rc == 0, tail(logs / "c_feature_table.log")
    require_healthy("C", home, data, len(clips), logs)
    return {"path": "C", "what": "tiktok-assets add + dagster job execute (range tags) + feature_table",
            "wall_s": round(sum(steps.values()), 2), "steps": {k: round(v, 2) for k, v in steps.items()},
            "asset_materialize_partition_range": refusal, "table": table_summary(data), **runs_and_loads(home),
            "loadavg_before": load0, "loadavg_after": loadavg()}


# --- import time ---------------------------------------------------------------------------------

def import_times(env: dict, repeats: int) -> dict:
    imports, defs_walls = [], []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import tiktok_assets.definitions"],
                             cwd=CODE, env=env, capture_output=True, text=True, timeout=300, check=True).stderr
        line = [ln for ln in out.splitlines() if re.search(r"\|\s*tiktok_assets\.definitions$", ln)][-1]
        imports.append(int(line.split("|")[1]) / 1e6)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from tiktok_assets.definitions import defs; defs()"], cwd=CODE,
                       env=env, check=True, timeout=300, capture_output=True)
        defs_walls.append(time.perf_counter() - started)
    return {"import_definitions_cumulative_s": [round(x, 3) for x in imports],
            "defs_load_wall_s": [round(x, 3) for x in defs_walls],
            "median_import_s": round(statistics.median(imports), 3),
            "median_defs_wall_s": round(statistics.median(defs_walls), 3)}


# --- main ----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=900, help="per path, seconds")
    parser.add_argument("--import-repeats", type=int, default=3)
    parser.add_argument("--paths", default="ABC", help="which paths to run, in order (A is the baseline)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, instances)")
    parser.add_argument("--code", choices=["worktree", "head"], default="worktree",
                        help="what to benchmark: the checkout as it is now, or its last commit (copied first)")
    args = parser.parse_args()
    results_dir = ROOT / "benchmarks" / "results"
    results_dir.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_dagster_path_"))
    (tmp / "logs").mkdir()
    result: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "python": platform.python_version(), "dagster": dg.__version__},
                    "videos": args.videos, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "loadavg_start": loadavg(), "tmp": str(tmp)}
    global CODE
    try:
        t0 = time.perf_counter()
        CODE = tmp / "code"
        result["code"] = snapshot(CODE, args.code)
        sys.path.insert(0, str(CODE))
        for name in [m for m in sys.modules if m == "tiktok_assets" or m.startswith("tiktok_assets.")]:
            del sys.modules[name]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "YOLO_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join([str(CODE), *filter(None, [os.environ.get("PYTHONPATH")])])}
        where = subprocess.run([sys.executable, "-c", "import tiktok_assets; print(tiktok_assets.__file__)"],
                               cwd=CODE, env=env, capture_output=True, text=True, check=True).stdout.strip()
        assert Path(where).is_relative_to(CODE), f"the snapshot is not what runs: {where}"
        env.update(models_env(tmp / "models", env))
        env["TIKTOK_ASSETS_MODELS_DIR"] = str(tmp / "models")
        shutil.copy(CODE / "models" / "manifest.yaml", tmp / "models" / "manifest.yaml")
        env.pop("DAGSTER_HOME", None)
        env.pop("TIKTOK_ASSETS_DATA_DIR", None)
        clips = make_clips(tmp, args.videos)
        result["setup_s"] = round(time.perf_counter() - t0, 1)
        print(f"setup {result['setup_s']}s: code {result['code']}; models in {tmp / 'models'}, {len(clips)} clips; load {loadavg()}",
              flush=True)
        result["import"] = import_times(env, args.import_repeats)
        print(f"import tiktok_assets.definitions: {result['import']['median_import_s']:.2f}s cumulative; "
              f"defs() process wall: {result['import']['median_defs_wall_s']:.2f}s", flush=True)
        runners = {"A": path_a, "B": path_b, "C": path_c}
        for name in args.paths:
            print(f"path {name} ... (load {loadavg()})", flush=True)
            result[name] = runners[name](tmp, clips, env, args.timeout)
            print(f"path {name}: {result[name]['wall_s']:.1f}s", flush=True)
    finally:
        result["loadavg_end"] = loadavg()
        out = results_dir / f"bench_dagster_path-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(result, indent=1, default=str))
        print(f"results: {out}")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report(result)
    return 0


def report(result: dict) -> None:
    a = result["A"]["wall_s"] if "A" in result else float("nan")
    print(f"\n{result['videos']} videos, {result['machine']['cpus']} CPUs, load avg start {result['loadavg_start']} "
          f"end {result['loadavg_end']}")
    print(f"{'path':<48} {'wall s':>8} {'vs A':>6}  model loads once per run")
    rows = [("A  tiktok-assets run", a, result["A"])] if "A" in result else []
    if "B" in result:
        b = result["B"]
        rows += [("B  sensor: drop -> table (incl. sensor interval)", b["wall_s"], b),
                 ("B  sensor: first run launched -> table", b["processing_s"], b),
                 ("B  sensor: first run RUN_START -> table", b["from_run_start_s"], b)]
    if "C" in result:
        rows.append(("C  add + dagster job execute x2", result["C"]["wall_s"], result["C"]))
    for label, wall, data in rows:
        ok, per_stage = check_loads(data["runs"])
        print(f"{label:<48} {wall:8.1f} {wall / a:6.2f}  {'yes' if ok else 'NO'} {per_stage}")
    for name in ("A", "B", "C"):
        if name in result:
            t = result[name]["table"]
            print(f"{name}: table {t['rows']} rows {t['status']}, sum of *_seconds {t['stage_seconds_sum']:.1f}s, "
                  f"pipeline runs {sum(r['kind'] == 'pipeline' for r in result[name]['runs'])}, "
                  f"load {result[name]['loadavg_before']} -> {result[name]['loadavg_after']}")
    if "B" in result:
        print("B breakdown:", json.dumps({k: v for k, v in result["B"]["breakdown"].items() if k != "table_runs"}))
    if "C" in result:
        print("C steps:", result["C"]["steps"], "| asset materialize --partition-range:",
              result["C"]["asset_materialize_partition_range"])


if __name__ == "__main__":
    sys.exit(main())
