"""The path users' CI takes: `dagster asset materialize --select '*'` for a good and a corrupt video,
each in a throwaway instance. Both runs finish (a bad video is data, not a broken pipeline), write the
table, and the instance records the corrupt video's failed check with its error."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd

from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.models.manifest import CODE_MANIFEST
from tiktok_assets_tests.conftest import copy_clip

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent


def _dagster(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dagster"), *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=600)


def test_dagster_asset_materialize_on_good_and_corrupt_videos(sample_dir, tmp_path):
    layout = DataLayout(tmp_path / "data")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(CODE_MANIFEST, models / "manifest.yaml")  # no weights at all
    env = {**os.environ, "DAGSTER_HOME": str(home), "TIKTOK_ASSETS_DATA_DIR": str(layout.root),
           "TIKTOK_ASSETS_MODELS_DIR": str(models), "HF_HUB_OFFLINE": "1"}
    copy_clip(sample_dir / "silent_cuts.mp4", layout.videos_dir / "good.mp4")
    (layout.videos_dir / "corrupt.mp4").write_bytes(os.urandom(30_000))
    added = subprocess.run([str(BIN / "tiktok-assets"), "add", str(layout.videos_dir)], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=300, check=False)
    assert added.returncode == 0, added.stderr
    assert sorted(line.split("\t")[0] for line in added.stdout.splitlines()) == ["corrupt", "good"]

    for key in ("good", "corrupt"):
        run = _dagster(env, "asset", "materialize", "-m", "tiktok_assets.definitions", "--select", "*",
                       "--partition", key)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    table = pd.read_parquet(layout.table_parquet).set_index("video_key")
    assert table.loc["corrupt", "status"] == "failed"
    assert table.loc["corrupt", "error"].startswith("video_metadata: ")
    assert table.loc["good", "status"] == "partial"  # no weights: transcript and vision unavailable
    assert pd.isna(table.loc["good", "error"])
    assert table.loc["good", "kept_frame_count"] > 0

    os.environ["DAGSTER_HOME"], saved = str(home), os.environ.get("DAGSTER_HOME")
    try:
        with dg.DagsterInstance.get() as instance:
            failed = instance.get_latest_materialization_event(dg.AssetKey("video_metadata"))
            assert failed is not None and failed.asset_materialization.partition == "corrupt"
            outcome = failed.asset_materialization.metadata["outcome"].value
            error = failed.asset_materialization.metadata["error"].value
            assert outcome == "failed" and "VideoInputError" in error
    finally:
        os.environ.pop("DAGSTER_HOME") if saved is None else os.environ.__setitem__("DAGSTER_HOME", saved)
