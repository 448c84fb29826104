"""Shared model plumbing: where weights come from, which device, and load-once-per-process.

Weights resolve in this order: an explicit local path; ``models/<name>`` in the project; the
Hugging Face cache (offline). When none has them, :class:`ModelUnavailableError` says which model
is missing and the command that fetches it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tiktok_assets.lib.errors import ModelUnavailableError

log = logging.getLogger("tiktok_assets.models")
T = TypeVar("T")

DEFAULT_MODELS_DIR = Path(os.environ.get("TIKTOK_ASSETS_MODELS_DIR", "models"))


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is present, else ``cpu``; anything else as given."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device.startswith("cuda") and not cuda_available():
        raise ModelUnavailableError(f"device {device!r} was asked for but no CUDA device is available")
    return device


def nvidia_gpu_present() -> bool:
    """An NVIDIA GPU and driver on this machine, told without importing torch (which takes seconds):
    presets are resolved when the code location loads, in every code server and run worker."""
    if "torch" in sys.modules:
        return cuda_available()
    return Path("/proc/driver/nvidia/version").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


def resolve_preset(preset: str | None = None) -> str:
    """``cpu`` or ``gpu``: from the argument, else TIKTOK_ASSETS_PRESET, else by hardware."""
    choice = (preset or os.environ.get("TIKTOK_ASSETS_PRESET", "auto")).lower()
    if choice == "auto":
        return "gpu" if nvidia_gpu_present() else "cpu"
    if choice not in ("cpu", "gpu"):
        raise ValueError(f"unknown preset {choice!r}: use cpu, gpu or auto")
    return choice


def pull_hint(name: str) -> str:
    return f"tiktok-assets models pull {name}"


def resolve_weights(name: str, model: str, models_dir: Path | None = None) -> Path:
    """Local folder (or file) holding the weights of ``model`` for the manifest entry ``name``.

    ``model`` is a local path or a hub id. Looked up: the path itself, ``models_dir/<name>``,
    ``models_dir/<hub id with / replaced by __>``, then the Hugging Face cache without network.
    """
    models_dir = models_dir or DEFAULT_MODELS_DIR
    candidates = [Path(model).expanduser(), models_dir / name, models_dir / model.replace("/", "__")]
    for path in candidates:
        if path.exists() and (path.is_file() or any(path.iterdir())):
            return path
    if "/" in model and not model.startswith((".", "/")) and _in_hub_cache(model):
        from huggingface_hub import snapshot_download

        with contextlib.suppress(Exception):  # any miss in the cache means "not available"
            return Path(snapshot_download(model, local_files_only=True))
    raise ModelUnavailableError(
        f"Model '{name}' ({model}) is not available locally (looked in {(models_dir / name).resolve()} and the "
        f"Hugging Face cache). Fetch it with `{pull_hint(name)}`, or set the resource's `model` to a "
        f"local folder."
    )


def _in_hub_cache(model: str) -> bool:
    """The hub cache has a folder for ``model`` (checked before importing huggingface_hub, which
    takes most of a second: definitions load resolves every model)."""
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub")
    return (Path(hub) / f"models--{model.replace('/', '--')}").is_dir()


@dataclass
class LoadRecord:
    key: Hashable
    loads: int
    seconds: float


class ModelCache:
    """Process-wide cache: each distinct (family, weights, device, dtype) key loads once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[Hashable, Any] = {}
        self._records: dict[Hashable, LoadRecord] = {}

    def get(self, key: Hashable, loader: Callable[[], T]) -> T:
        with self._lock:
            if key in self._models:
                return self._models[key]
            started = time.perf_counter()
            model = loader()
            seconds = time.perf_counter() - started
            self._models[key] = model
            record = self._records.setdefault(key, LoadRecord(key, 0, 0.0))
            record.loads += 1
            record.seconds = round(seconds, 3)
            log.info("loaded model %s in %.2fs (load #%d in this process)", key, seconds, record.loads)
            return model

    def load_count(self, family: str | None = None) -> int:
        return sum(r.loads for k, r in self._records.items() if family is None or _family(k) == family)

    def records(self) -> list[LoadRecord]:
        return list(self._records.values())

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    def release(self, family: str) -> None:
        """Drop the loaded models of ``family`` (their memory is freed once nothing else holds them)."""
        with self._lock:
            for key in [k for k in self._models if _family(k) == family]:
                del self._models[key]


def _family(key: Hashable) -> str | None:
    return key[0] if isinstance(key, tuple) and key else None


MODEL_CACHE = ModelCache()
