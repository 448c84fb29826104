"""Shared fixtures: real sample clips generated once per test session, and a throwaway Dagster home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tiktok_assets.lib.samples import SampleClip, Segment, generate_samples  # noqa: E402


def _load_manifest(folder: Path) -> dict[str, SampleClip]:
    clips = {}
    for raw in json.loads((folder / "samples.json").read_text()):
        raw["segments"] = [Segment(**s) for s in raw["segments"]]
        raw["speech"] = [tuple(x) for x in raw["speech"]]
        raw["music"] = [tuple(x) for x in raw["music"]]
        clips[raw["name"]] = SampleClip(**raw)
    return clips


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample clips (ffmpeg + espeak-ng), generated once per session."""
    folder = tmp_path_factory.mktemp("samples")
    generate_samples(folder)
    return folder


@pytest.fixture(scope="session")
def samples(sample_dir: Path) -> dict[str, SampleClip]:
    return _load_manifest(sample_dir)


@pytest.fixture()
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(Path(__file__).parents[1] / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    (folder / "tiktok_videos").mkdir(parents=True)
    monkeypatch.setenv("TIKTOK_ASSETS_DATA_DIR", str(folder))
    return folder


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True)


def copy_clip(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    return dst
