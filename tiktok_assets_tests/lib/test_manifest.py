"""The model manifest, presets and weight resolution."""

from pathlib import Path

import pytest

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import resolve_device, resolve_preset, resolve_weights
from tiktok_assets.lib.models.manifest import FAMILIES, default_model, load_manifest

MANIFEST = Path(__file__).parents[2] / "models" / "manifest.yaml"


def test_every_family_has_a_cpu_and_a_gpu_model():
    entries = load_manifest(MANIFEST)
    for family in FAMILIES:
        cpu, gpu = default_model(family, "cpu", entries), default_model(family, "gpu", entries)
        assert cpu.family == gpu.family == family
    assert default_model("whisper", "cpu", entries).name == "whisper-small"
    assert default_model("whisper", "gpu", entries).name == "whisper-large-v3"
    assert default_model("vlm", "cpu", entries).source == "Qwen/Qwen2.5-VL-3B-Instruct"
    for e in entries:
        assert e.license and e.size_mb > 0 and e.revision


def test_auto_preset_and_device_follow_the_hardware(monkeypatch):
    monkeypatch.setattr("tiktok_assets.lib.models.base.cuda_available", lambda: False)
    assert resolve_preset("auto") == "cpu" and resolve_device("auto") == "cpu"
    monkeypatch.setattr("tiktok_assets.lib.models.base.cuda_available", lambda: True)
    assert resolve_preset("auto") == "gpu" and resolve_device("auto") == "cuda"
    monkeypatch.setenv("TIKTOK_ASSETS_PRESET", "cpu")
    assert resolve_preset(None) == "cpu"
    with pytest.raises(ValueError):
        resolve_preset("tpu")


def test_weights_resolve_from_models_dir_first(tmp_path):
    (tmp_path / "blip-base").mkdir()
    (tmp_path / "blip-base" / "config.json").write_text("{}")
    assert resolve_weights("blip-base", "Salesforce/blip-image-captioning-base", tmp_path) == tmp_path / "blip-base"


def test_missing_weights_name_the_model_and_the_pull_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as err:
        resolve_weights("blip-base", "Salesforce/blip-image-captioning-base", tmp_path)
    message = str(err.value)
    assert "blip-base" in message and "Salesforce/blip-image-captioning-base" in message
    assert "tiktok-assets models pull blip-base" in message


def test_broken_manifest_is_rejected(tmp_path):
    bad = tmp_path / "manifest.yaml"
    bad.write_text("models:\n  - {name: x, family: lidar, source: a, format: b, revision: c, license: d, "
                   "size_mb: 1, presets: [cpu]}\n")
    with pytest.raises(ValueError, match="unknown family"):
        load_manifest(bad)

