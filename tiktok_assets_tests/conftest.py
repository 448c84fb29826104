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

from tiktok_assets.lib.samples import (
    SampleClip,
    Segment,
    generate_samples,
    pattern_specs,
    photo_specs,
)


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
    """The pattern sample clips (ffmpeg + espeak-ng), generated once per session (the photo clips have
    their own tests: lib/test_photo_samples.py)."""
    folder = tmp_path_factory.mktemp("samples")
    generate_samples(folder, [c.name for c, _, _ in pattern_specs()])
    return folder


@pytest.fixture(scope="session")
def photo_sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The photo sample clips (real photographs + espeak-ng narration), generated once per session."""
    folder = tmp_path_factory.mktemp("photo_samples")
    generate_samples(folder, [c.name for c, _, _ in photo_specs()])
    return folder


@pytest.fixture(scope="session")
def photo_samples(photo_sample_dir: Path) -> dict[str, SampleClip]:
    return _load_manifest(photo_sample_dir)


@pytest.fixture(scope="session")
def spleeter_2stems() -> Path:
    """The real Spleeter 2-stems weights in the project's models folder (scripts/install.sh pulls them);
    the tests that need them are skipped, saying how to get them, where they are missing."""
    from tiktok_assets.lib.models.spleeter import is_spleeter_folder

    models = Path(os.environ.get("TIKTOK_ASSETS_MODELS_DIR") or Path(__file__).parents[1] / "models")
    folder = models / "spleeter-2stems"
    if not is_spleeter_folder(folder):
        pytest.skip(f"no Spleeter weights in {folder}: `tiktok-assets models pull spleeter-2stems`")
    return folder.resolve()


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


@pytest.fixture(scope="session")
def model_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment that points every model resource at real-format weights the tests build: real
    packaged Whisper tiny.en, the real RapidOCR models out of their package, tiny random CLIP / YOLO-World /
    BLIP / Qwen2.5-VL. Separation off
    (the random Demucs would garble the speech; Demucs is tested through its asset separately)."""
    from tiktok_assets.lib.vision.ocr import install_packaged_ocr
    from tiktok_assets_tests.lib import audio_fixtures, vision_fixtures

    root = tmp_path_factory.getbasetemp()
    config = root / "yolo_config"
    config.mkdir(exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config))
    os.environ["YOLO_OFFLINE"] = "1"

    def once(name, build):
        return vision_fixtures._once(root, name, build)

    return {
        "TIKTOK_ASSETS_WHISPER_MODEL": str(audio_fixtures.build_packaged_whisper(root, "tiny.en")),
        "TIKTOK_ASSETS_SEPARATION": "0",
        "TIKTOK_ASSETS_CLIP_MODEL": str(once("clip_dir", vision_fixtures.build_tiny_clip_dir)),
        "TIKTOK_ASSETS_YOLO_WORLD_MODEL": str(once("yolo_world", vision_fixtures.build_tiny_yolo_world)),
        "TIKTOK_ASSETS_BLIP_MODEL": str(once("blip", vision_fixtures.build_tiny_blip)),
        "TIKTOK_ASSETS_VLM_MODEL": str(once("vlm", vision_fixtures.build_tiny_vlm)),
        "TIKTOK_ASSETS_OCR_MODEL": str(once("rapidocr-ppocrv4", install_packaged_ocr)),
    }
