"""Project-level checks: definitions load and validate, README documents the real schema, the CLI
registers partitions that `dagster asset materialize` can run."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tiktok_assets.lib.table.schema import CLIP_EMBEDDING_DIM, COLUMNS, markdown_table
from tiktok_assets_tests.conftest import copy_clip

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=300, check=False)


def test_readme_documents_the_schema():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "run scripts/update_readme_schema.py"


def test_the_table_schema_is_on_the_asset_definition():
    """The UI shows the declared columns and types before anything is materialized."""
    import dagster as dg

    from tiktok_assets.defs.assets.table import video_features

    schema = video_features.specs_by_key[dg.AssetKey("video_features")].metadata["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchema)
    assert [(c.name, c.type) for c in schema.columns] == [(c.name, c.type_name) for c in COLUMNS]
    types = {c.name: c.type for c in schema.columns}
    assert types["clip_embedding"] == f"fixed_size_list<float32, {CLIP_EMBEDDING_DIM}>"
    assert types["kept_frame_timestamps"] == "list<float64>" and types["width"] == "int64"
    assert not types["video_key"].startswith("list") and schema.columns[0].constraints.unique


def test_definitions_validate_and_dg_check():
    result = _run(str(BIN / "dagster"), "definitions", "validate", "-m", "tiktok_assets.definitions")
    assert result.returncode == 0, result.stderr
    result = _run(str(BIN / "dg"), "check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "loaded successfully" in result.stdout + result.stderr


@pytest.mark.slow  # the whole graph for one clip through the dagster CLI (~65 s); .ci/run does it too
def test_cli_add_then_dagster_asset_materialize(sample_dir, model_env, tmp_path):
    data, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    clip = copy_clip(sample_dir / "silent_cuts.mp4", tmp_path / "elsewhere" / "My Clip.mp4")
    env = {"DAGSTER_HOME": str(home), "TIKTOK_ASSETS_DATA_DIR": str(data), **model_env}
    added = _run(str(BIN / "tiktok-assets"), "add", str(clip), env=env)
    assert added.returncode == 0, added.stderr
    key = added.stdout.split("\t")[0]
    assert key.startswith("my_clip-h")
    result = _run(str(BIN / "dagster"), "asset", "materialize", "-m", "tiktok_assets.definitions",
                  "--select", "*", "--partition", key, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_parquet(data / "video_features_results.parquet")
    assert list(table["video_key"]) == [key]
    assert table.loc[0, "file_name"] == "My Clip.mp4" and table.loc[0, "source_path"] == str(clip.resolve())
    assert table.loc[0, "status"] == "ok" and table.loc[0, "kept_frame_count"] >= 3
    assert table.loc[0, "transcript_status"] == "no_audio" and table.loc[0, "representative_frame_count"] >= 2


def test_loading_the_definitions_imports_no_model_library():
    """Every code server, run worker and `dagster` command loads the definitions: torch, transformers and
    ultralytics load lazily, in the stages that use them (each costs seconds to import)."""
    code = ("import sys; from tiktok_assets.definitions import defs; defs(); "
            "print(sorted(m for m in ('torch', 'transformers', 'ultralytics', 'open_clip') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
