"""Per-video, per-stage status records: what ran, how long it took, and the error if any."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TypeVar

from tiktok_assets.lib import atomic
from tiktok_assets.lib.layout import VideoLayout

T = TypeVar("T")

OK = "ok"
FAILED = "failed"


@dataclass(frozen=True)
class StageStatus:
    stage: str
    status: str  # "ok", "failed", or a stage-specific outcome such as "no_audio"
    seconds: float
    error: str | None = None
    finished_at: str = ""


def write_status(video: VideoLayout, status: StageStatus) -> None:
    atomic.write_json(video.status_json(status.stage), asdict(status))


def read_status(video: VideoLayout, stage: str) -> StageStatus | None:
    path = video.status_json(stage)
    if not path.exists():
        return None
    return StageStatus(**atomic.read_json(path))


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if not text.startswith(exc.__class__.__name__) else text


def run_stage(
    video: VideoLayout, stage: str, fn: Callable[[], T], outcome: Callable[[T], str] | None = None
) -> T:
    """Run one stage for one video, record its status and timing, and re-raise any error."""
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:
        write_status(
            video,
            StageStatus(
                stage=stage,
                status=FAILED,
                seconds=round(time.perf_counter() - started, 3),
                error=describe_error(exc),
                finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )
        raise
    write_status(
        video,
        StageStatus(
            stage=stage,
            status=outcome(result) if outcome else OK,
            seconds=round(time.perf_counter() - started, 3),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
    )
    return result
