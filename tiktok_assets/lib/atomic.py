"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Temp files and folders of writes in progress in this process. A signal turned into an exception (the
# CLI's SIGINT / SIGTERM) can land between any two bytecodes, also between creating a temp file and the
# `finally` that removes it: after an interrupt, remove_unfinished() deletes whatever is still here.
_unfinished: set[Path] = set()


def remove_unfinished() -> None:
    """Delete the temp files and folders of writes an interrupt cut short (their targets are untouched)."""
    for path in list(_unfinished):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        _unfinished.discard(path)


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    _unfinished.add(tmp)  # before the file exists: no moment where it exists unrecorded
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # 0o666 less the umask
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        _unfinished.discard(tmp)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces the folder ``target`` as a whole."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*target.parent.glob(f".{target.name}.*.tmp"), *target.parent.glob(f".{target.name}.*.old")]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed while writing
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    _unfinished.add(tmp)
    try:
        tmp.mkdir()
        yield tmp
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        _unfinished.discard(tmp)


def _replace_with_symlink(link: Path, target: str) -> None:
    tmp = link.parent / f".{link.name}.{uuid.uuid4().hex[:8]}.link"
    os.symlink(target, tmp)
    os.replace(tmp, link)


@contextmanager
def atomic_file_set(folder: str | Path, set_name: str, names: list[str]) -> Iterator[Path]:
    """Write several files that must change together (e.g. a table as CSV and Parquet).

    Yields a fresh folder to write ``names`` into. On success ``folder/set_name`` (a symlink) is
    switched to it in one rename, and each ``folder/<name>`` is a stable symlink through it: a reader,
    or a crash at any moment, sees either all the old files or all the new ones, never a mix."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    version = folder / f".{set_name}.{uuid.uuid4().hex[:12]}"
    current = folder / set_name
    _unfinished.add(version)
    try:
        version.mkdir()
        yield version
        for name in names:
            with open(version / name, "rb") as fh:
                os.fsync(fh.fileno())
        previous = os.readlink(current) if current.is_symlink() else None
        _unfinished.discard(version)  # from here on it may be the live version: never swept
        _replace_with_symlink(current, version.name)
        for name in names:
            link = folder / name
            if not (link.is_symlink() and os.readlink(link) == f"{set_name}/{name}"):
                _replace_with_symlink(link, f"{set_name}/{name}")
        if previous and previous != version.name:
            shutil.rmtree(folder / previous, ignore_errors=True)
    except BaseException:
        if not (current.is_symlink() and os.readlink(current) == version.name):  # not live yet: roll back
            shutil.rmtree(version, ignore_errors=True)
        raise
    finally:
        _unfinished.discard(version)
