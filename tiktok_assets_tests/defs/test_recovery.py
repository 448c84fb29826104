"""A run worker killed (SIGKILL) inside a `gpu`-pool step must not hold the pool slot forever.

A tiny code location of its own (a slow and a quick asset in the `gpu` pool, in-process executor)
is served by a gRPC code server, as in docker/, next to a real `dagster-daemon`, on an instance with
the settings of the project's dagster.yaml. Run 1 sleeps in its pool step, run 2 waits for the slot,
run 1's worker is SIGKILLed: run 1 must end FAILURE, and the run monitoring daemon must give its slot
back so that run 2, and a run 3 launched after the kill, succeed. Only the daemon's intervals are
shortened here, to keep the test quick.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import yaml

from tiktok_assets_tests.services import free_port, port_open, stop_group

PROJECT_YAML = Path(__file__).parents[2] / "dagster.yaml"
BIN = Path(sys.executable).parent
DEADLINE_S = 90  # "within about a minute", with slack for a loaded machine
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}

CODE = """
import os
import time
from pathlib import Path

import dagster as dg

MARKERS = Path({markers!r})


@dg.asset(pool="gpu")
def slow_gpu(context: dg.AssetExecutionContext) -> None:
    (MARKERS / f"{{context.run_id}}.pid").write_text(str(os.getpid()))
    time.sleep(300)


@dg.asset
def prep() -> int:
    # No pool, like the pipeline's decode stages, so the queue starts the run at once. It waits for
    # the slow run to be in its pool step, so that run gets the slot whichever run starts first.
    for _ in range(1200):
        if any(MARKERS.glob("*.pid")):
            return 1
        time.sleep(0.1)
    raise TimeoutError("the slow run never reached its pool step")


@dg.asset(pool="gpu")
def quick_gpu(context: dg.AssetExecutionContext, prep: int) -> None:
    (MARKERS / f"{{context.run_id}}.done").write_text(str(os.getpid()))


defs = dg.Definitions(
    assets=[slow_gpu, prep, quick_gpu],
    jobs=[dg.define_asset_job("slow_job", [slow_gpu]), dg.define_asset_job("quick_job", [prep, quick_gpu])],
    executor=dg.in_process_executor,
)
"""


def _wait_for(what: str, check: Callable[[], object], timeout: float, logs: Path) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := check():
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{_tail(logs)}")


def _tail(logs: Path, n: int = 60) -> str:
    out = []
    for log in sorted(logs.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-n:]
        out.append(f"--- {log.name} (last {len(lines)} lines)\n" + "\n".join(lines))
    return "\n".join(out)


def test_killed_run_frees_its_gpu_slot(tmp_path: Path) -> None:
    settings = yaml.safe_load(PROJECT_YAML.read_text())
    monitoring = settings["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring.get("max_resume_run_attempts", 0) == 0  # the DefaultRunLauncher cannot resume
    # a dead run's slots come back within one poll after free_slots_after_run_end_seconds
    assert monitoring["free_slots_after_run_end_seconds"] + monitoring["poll_interval_seconds"] <= 60
    assert settings["concurrency"]["pools"]["default_limit"] == 1  # one `gpu` step at a time

    # Same instance settings, quicker daemon: poll every 1 s and free slots 5 s after the run ends
    # (long enough for this test to see the leaked slot before the daemon frees it).
    settings["run_monitoring"] = {
        **monitoring,
        "poll_interval_seconds": 1,
        "free_slots_after_run_end_seconds": 5,
    }
    settings["run_queue"] = {"dequeue_interval_seconds": 1}
    home, markers, logs = tmp_path / "home", tmp_path / "markers", tmp_path / "logs"
    for d in (home, markers, logs):
        d.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    (tmp_path / "recovery_defs.py").write_text(textwrap.dedent(CODE.format(markers=str(markers))))
    port = free_port()
    server = {"host": "localhost", "port": port, "location_name": "recovery"}
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": server}]}))
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    procs: list[subprocess.Popen] = []
    stack = contextlib.ExitStack()

    def spawn(name: str, *args: str) -> subprocess.Popen:
        """Start a process in its own process group (stopped as one at the end), logging to logs/."""
        log = stack.enter_context((logs / f"{name}.log").open("w"))
        proc = subprocess.Popen(
            args, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        return proc

    def launch(*jobs: str) -> list[str]:
        """Submit one run of each job to the queue, all at once; return their run ids."""
        run_ids = [str(uuid.uuid4()) for _ in jobs]
        launchers = []
        for job, run_id in zip(jobs, run_ids, strict=True):
            args = ["job", "launch", "-w", str(workspace), "-j", job, "--run-id", run_id]
            launchers.append(spawn(f"launch-{run_id[:8]}", str(BIN / "dagster"), *args))
        for proc in launchers:
            assert proc.wait(timeout=120) == 0, _tail(logs)
        return run_ids

    def serving() -> bool:
        return port_open(port, "localhost")

    with dg.DagsterInstance.from_config(str(home)) as instance:

        def status(run_id: str) -> dg.DagsterRunStatus | None:
            run = instance.get_run_by_id(run_id)
            return run.status if run else None

        def gpu():
            return instance.event_log_storage.get_concurrency_info("gpu")

        try:
            # The run workers are children of this code server, which reports a dead one FAILURE.
            args = ["api", "grpc", "-f", "recovery_defs.py", "-d", str(tmp_path), "-p", str(port)]
            spawn(
                "code-server", str(BIN / "dagster"), *args, "-h", "localhost", "--location-name", "recovery"
            )
            _wait_for("the code server", serving, 120, logs)
            spawn("daemon", str(BIN / "dagster-daemon"), "run", "-w", str(workspace))

            # run 1 takes the slot and sleeps in its step; run 2 starts and waits for the slot
            run1, run2 = launch("slow_job", "quick_job")
            pid_file = markers / f"{run1}.pid"
            _wait_for("run 1 to enter its gpu step", pid_file.exists, 120, logs)
            worker = int(_wait_for("run 1's worker pid", lambda: pid_file.read_text().strip(), 10, logs))
            assert status(run1) == dg.DagsterRunStatus.STARTED
            assert [s.run_id for s in gpu().claimed_slots] == [run1]
            waiting = lambda: run2 in {s.run_id for s in gpu().pending_steps}
            _wait_for("run 2 to wait for the gpu slot", waiting, 60, logs)
            assert status(run2) == dg.DagsterRunStatus.STARTED
            assert not (markers / f"{run2}.done").exists()

            killed_at = time.monotonic()
            os.kill(worker, signal.SIGKILL)
            failed = lambda: status(run1) == dg.DagsterRunStatus.FAILURE
            _wait_for("run 1 to be marked FAILURE", failed, DEADLINE_S, logs)
            failed_after = time.monotonic() - killed_at
            # the dead run still holds the slot: only run monitoring gives it back
            assert run1 in {s.run_id for s in gpu().claimed_slots}

            (run3,) = launch("quick_job")  # a run launched after the kill must get the slot too
            for run_id in (run2, run3):
                _wait_for(f"run {run_id} to finish", lambda r=run_id: status(r) in FINISHED, DEADLINE_S, logs)
                assert status(run_id) == dg.DagsterRunStatus.SUCCESS, _tail(logs)
                assert (markers / f"{run_id}.done").exists()
            done_after = time.monotonic() - killed_at
            print(f"run 1 FAILURE {failed_after:.1f}s, runs 2 and 3 SUCCESS {done_after:.1f}s after the kill")
            empty = lambda: not gpu().claimed_slots and not gpu().pending_steps
            _wait_for("the gpu pool to be empty", empty, 30, logs)
        finally:
            for proc in reversed(procs):
                stop_group(proc)
            stack.close()
