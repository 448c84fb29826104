"""Choosing the separation backend: Spleeter 2-stems on the cpu preset, htdemucs on the gpu preset,
TIKTOK_ASSETS_SEPARATOR (the resource's ``separator``) to choose either, a local folder used as what it
holds, and what the stage plan says when the weights are missing."""

import shutil
from pathlib import Path

import pytest

from tiktok_assets.defs.model_resources import DemucsResource, model_resources, stage_plan
from tiktok_assets.defs.video_stage import stage_code_version
from tiktok_assets.lib.models.manifest import CODE_MANIFEST
from tiktok_assets_tests.lib.audio_fixtures import *

MANIFEST = CODE_MANIFEST


@pytest.fixture()
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder with the project's manifest and no weights (and an empty torch hub cache)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(MANIFEST, folder / "manifest.yaml")
    return folder


def _spleeter_folder(folder: Path) -> Path:
    """A folder laid out as `models pull spleeter-2stems` leaves it (contents not read here)."""
    folder.mkdir(parents=True)
    for name in ("vocals.ckpt", "accompaniment.ckpt"):
        (folder / name).write_bytes(b"")
    return folder


def test_the_cpu_preset_separates_with_spleeter_and_the_gpu_preset_with_demucs(models: Path):
    cpu = DemucsResource(models_dir=str(models), preset="cpu")
    assert cpu.model_name() == "spleeter-2stems" and cpu.backend() == "spleeter"
    assert "tiktok-assets models pull spleeter-2stems" in cpu.missing()
    plan = stage_plan({"demucs": cpu})
    assert plan.state("audio_stems") == "unavailable" and "spleeter-2stems" in plan.reasons["audio_stems"]
    gpu = DemucsResource(models_dir=str(models), preset="gpu")
    assert gpu.model_name() == "htdemucs" and gpu.backend() == "demucs"
    assert "tiktok-assets models pull htdemucs" in gpu.missing()
    _spleeter_folder(models / "spleeter-2stems")
    assert cpu.missing() is None and stage_plan({"demucs": cpu}).state("audio_stems") == "active"


def test_the_separator_setting_chooses_the_backend_whatever_the_preset(models: Path):
    on_cpu = DemucsResource(models_dir=str(models), preset="cpu", separator="demucs")
    assert on_cpu.model_name() == "htdemucs" and on_cpu.backend() == "demucs"
    on_gpu = DemucsResource(models_dir=str(models), preset="gpu", separator="spleeter")
    assert on_gpu.model_name() == "spleeter-2stems" and on_gpu.backend() == "spleeter"
    with pytest.raises(ValueError, match="unknown separator 'umx': use one of spleeter, demucs"):
        DemucsResource(models_dir=str(models), separator="umx").model_name()


def test_an_installed_backend_stands_in_for_the_presets_missing_one(models: Path, tiny_demucs: Path):
    (models / "htdemucs").mkdir()
    (th,) = tiny_demucs.glob("*.th")
    shutil.copy(th, models / "htdemucs" / th.name)
    resource = DemucsResource(models_dir=str(models), preset="cpu")
    assert resource.model_name() == "htdemucs" and resource.backend() == "demucs" and resource.missing() is None
    assert resource._ref().note == "separator: spleeter-2stems is not installed; using htdemucs"
    chosen = DemucsResource(models_dir=str(models), preset="cpu", separator="spleeter")
    assert chosen.model_name() == "spleeter-2stems" and chosen.missing()  # a choice is never replaced


def test_a_local_folder_is_separated_with_what_it_holds(models: Path, tiny_demucs: Path, tmp_path: Path):
    spleeter = DemucsResource(model=str(_spleeter_folder(tmp_path / "my-spleeter")), models_dir=str(models))
    assert spleeter.backend() == "spleeter" and spleeter.model_name() == "my-spleeter" and spleeter.missing() is None
    demucs = DemucsResource(model=str(tiny_demucs), models_dir=str(models), preset="cpu")
    assert demucs.backend() == "demucs" and demucs.missing() is None
    with pytest.raises(ValueError, match="is a demucs model, but separator is 'spleeter'"):
        DemucsResource(model=str(tiny_demucs), models_dir=str(models), separator="spleeter").backend()


def test_environment_variables_choose_the_separator(monkeypatch: pytest.MonkeyPatch):
    def stems_like(context, demucs: DemucsResource): ...

    monkeypatch.setenv("TIKTOK_ASSETS_PRESET", "cpu")
    monkeypatch.delenv("TIKTOK_ASSETS_SEPARATOR", raising=False)
    monkeypatch.delenv("TIKTOK_ASSETS_DEMUCS_MODEL", raising=False)
    default = model_resources()["demucs"]
    assert default.separator == "" and default.model_name() == "spleeter-2stems"
    before = stage_code_version(stems_like)
    monkeypatch.setenv("TIKTOK_ASSETS_SEPARATOR", "demucs")
    chosen = model_resources()["demucs"]
    assert chosen.separator == "demucs" and chosen.model_name() == "htdemucs"
    assert stage_code_version(stems_like) != before  # materialized stems show as changed code
