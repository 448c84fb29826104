"""Per-video, per-stage status records: what ran, how long it took, and the error if any."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TypeVar

from tiktok_assets.lib import atomic
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.layout import VideoLayout

T = TypeVar("T")

OK = "ok"
FAILED = "failed"  # a data error of this video (its row carries the error)
SKIPPED = "skipped"  # a required upstream stage failed (or never ran) for this video
NO_AUDIO = "no_audio"  # the video has no audio track: audio stages have nothing to do
DISABLED = "disabled"  # switched off by a setting
UNAVAILABLE = "unavailable"  # a model or tool this stage needs is not installed (a system problem)

# Outcomes in which the stage did its work; any other outcome leaves no result of the stage.
DONE = (OK, NO_AUDIO)


@dataclass(frozen=True)
class StageStatus:
    stage: str
    status: str  # one of OK, FAILED, SKIPPED, NO_AUDIO, DISABLED, UNAVAILABLE
    seconds: float
    error: str | None = None
    finished_at: str = ""
    model: str = ""  # the model a model stage used (manifest name or folder name)
    warning: str | None = None  # the stage did its work, but not in full (e.g. a partly corrupt file)


def write_status(video: VideoLayout, status: StageStatus) -> None:
    atomic.write_json(video.status_json(status.stage), asdict(status))


def read_status(video: VideoLayout, stage: str) -> StageStatus | None:
    path = video.status_json(stage)
    if not path.exists():
        return None
    return StageStatus(**atomic.read_json(path))


def stage_done(video: VideoLayout, stage: str) -> bool:
    """The stage produced its result for this video in its latest run (ok or no_audio)."""
    status = read_status(video, stage)
    return status is not None and status.status in DONE


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if not text.startswith(exc.__class__.__name__) else text


def finished(
    stage: str, status: str, started: float, error: str | None = None, model: str = "", warning: str | None = None
) -> StageStatus:
    return StageStatus(
        stage=stage,
        status=status,
        seconds=round(time.perf_counter() - started, 3),
        error=error,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model=model,
        warning=warning,
    )


def run_stage(video: VideoLayout, stage: str, fn: Callable[[], T]) -> tuple[StageStatus, T | None]:
    """Run one stage for one video and record its outcome: the result's ``status`` (default ok) and
    ``warning`` (work done, but not in full), or ``failed`` with the error. A :class:`ModelUnavailableError` is a system problem, not this video's:
    it is re-raised for the caller to handle once for the run."""
    started = time.perf_counter()
    try:
        result = fn()
    except ModelUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - a data error of this video, recorded in its row
        status = finished(stage, FAILED, started, describe_error(exc))
        write_status(video, status)
        return status, None
    fields = result if isinstance(result, Mapping) else {}
    warning = fields.get("warning")
    status = finished(stage, str(fields.get("status", OK)), started, model=str(fields.get("model", "")),
                      warning=str(warning) if warning else None)
    write_status(video, status)
    return status, result
