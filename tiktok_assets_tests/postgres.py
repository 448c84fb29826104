"""A throwaway PostgreSQL cluster for tests: initdb into a temporary folder, a server on a free loopback
port (and a Unix socket in the same folder), password authentication, stopped and deleted at the end.

Uses the server binaries of the Debian ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``,
which ``.ci/run`` installs) or ``$TIKTOK_ASSETS_PG_BIN``. ``initdb`` refuses to run as root: as root,
the cluster belongs to the ``postgres`` system user the package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_BIN_ENV = "TIKTOK_ASSETS_PG_BIN"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    username: str
    password: str
    db_name: str
    folder: Path  # data directory, socket and log

    def storage_config(self) -> dict:
        """The ``storage:`` block of a dagster.yaml: run, event-log and schedule storage in this database.
        ``postgresql+psycopg2``: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, while
        dagster-postgres installs (and catches the errors of) psycopg2, as docker/dagster.yaml says too."""
        return {
            "postgres": {
                "postgres_db": {
                    "hostname": self.host,
                    "port": self.port,
                    "username": self.username,
                    "password": self.password,
                    "db_name": self.db_name,
                    "scheme": "postgresql+psycopg2",
                }
            }
        }

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def postgres_bin_dir() -> Path | None:
    """The folder with ``initdb``, ``pg_ctl`` and ``postgres``, or None when PostgreSQL is not installed."""
    candidates = [Path(os.environ[PG_BIN_ENV])] if os.environ.get(PG_BIN_ENV) else []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    if which := shutil.which("initdb"):
        candidates.append(Path(which).resolve().parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(
    username: str = "dagster", password: str = "dagster-test", db_name: str = "dagster"
) -> Iterator[PostgresServer]:
    """Start a fresh cluster with database ``db_name``; yield how to reach it; stop and delete it."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql"
        )
    as_root = os.geteuid() == 0
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="tiktok-assets-pg-"))
    prefix: list[str] = []
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    if as_root:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
    port = _free_port()
    server = PostgresServer("127.0.0.1", port, username, password, db_name, folder)

    def run(*args: str) -> None:
        result = subprocess.run([*prefix, *args], check=False, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"{server.log()}"
            )

    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            username,
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--no-sync",
        )
        # Loopback only, a socket in the throwaway folder (not /var/run/postgresql), no durability needed.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        try:
            env = {**os.environ, "PGPASSWORD": password}
            createdb = bin_dir / "createdb"
            command = [str(createdb)] if createdb.exists() else ["createdb"]
            subprocess.run(
                [*command, "-h", "127.0.0.1", "-p", str(port), "-U", username, db_name],
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            yield server
        finally:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
