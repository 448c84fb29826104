"""Long-running Dagster processes for tests (a gRPC code server, dagster-daemon, CLI commands): each in its
own process group logging to a file, all stopped at the end; waiting with a timeout that shows the logs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process's group (for a code server: its run workers too), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


class Services:
    """Processes started in ``cwd`` with ``env``, logging to ``logs/<name>.log``; stopped on exit."""

    def __init__(self, cwd: Path, logs: Path, env: Mapping[str, str]) -> None:
        self.cwd, self.logs, self.env = cwd, logs, dict(env)
        self.logs.mkdir(parents=True, exist_ok=True)
        self._procs: list[subprocess.Popen] = []
        self._services: list[subprocess.Popen] = []  # must keep running
        self._files = contextlib.ExitStack()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in reversed(self._procs):
            stop_group(proc)
        self._files.close()

    def spawn(self, name: str, *args: str, service: bool = True) -> subprocess.Popen:
        """Start ``args`` (a tool of this virtual environment when it is a bare name) in its own group;
        a ``service`` that exits makes :meth:`wait_for` fail at once."""
        tool = BIN / args[0]
        command = [str(tool) if tool.exists() else args[0], *args[1:]]
        log = self._files.enter_context((self.logs / f"{name}.log").open("w"))
        proc = subprocess.Popen(
            command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._procs.append(proc)
        if service:
            self._services.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        """Stop one process (and its group) now."""
        stop_group(proc)
        if proc in self._services:
            self._services.remove(proc)

    def run(self, name: str, *args: str, timeout: float = 120) -> None:
        """Run a command to its end; fail with the logs when it fails."""
        proc = self.spawn(name, *args, service=False)
        assert proc.wait(timeout=timeout) == 0, f"{' '.join(args)} failed\n{self.tail()}"

    def tail(self, n: int = 60) -> str:
        out = []
        for log in sorted(self.logs.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-n:]
            out.append(f"--- {log.name} (last {len(lines)} lines)\n" + "\n".join(lines))
        return "\n".join(out)

    def wait_for(self, what: str, check: Callable[[], object], timeout: float) -> object:
        """Poll ``check`` until it returns something true; fail with the logs after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if value := check():
                return value
            for proc in self._services:  # a service that died will not make it happen
                if proc.poll() is not None:
                    raise AssertionError(f"{' '.join(proc.args)} exited {proc.returncode}\n{self.tail()}")
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.tail()}")
