"""The video_features asset through Dagster: a run's table update rebuilds the rows of the videos its
stages processed; past the compaction threshold only the shards are written, and `tiktok-assets table
--compact` (the feature_table job with config) writes the one-file pair on request."""

import dagster as dg
import pandas as pd

from tiktok_assets import cli
from tiktok_assets.defs import checks
from tiktok_assets.defs.assets import table as table_asset
from tiktok_assets.defs.assets.metadata import video_metadata
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.table.table_io import load_features


def _check_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "video_features_schema"]
    assert evaluation.passed
    return {k: v.value for k, v in evaluation.metadata.items()}


def _table_metadata(result: dg.ExecuteInProcessResult) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node("video_features")[0].metadata.items()}


def test_runs_update_their_rows_and_compaction_is_on_request(dagster_home, data_dir, sample_dir, monkeypatch):
    videos = data_dir / "tiktok_videos"
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (videos / name).write_bytes((sample_dir / "silent_cuts.mp4").read_bytes())
    (videos / "broken.mp4").write_bytes(b"not a video at all")
    assert cli.main(["--data-dir", str(data_dir), "add", str(videos)]) == 0
    layout, resources = DataLayout(data_dir), {"paths": ProjectPaths(data_dir=str(data_dir))}
    monkeypatch.setattr(table_asset, "COMPACT_MAX_ROWS", 2)  # a "large" catalogue of 4 videos
    monkeypatch.setattr(checks, "COMPACT_MAX_ROWS", 2)
    with dg.DagsterInstance.get() as instance:
        first = dg.materialize([table_asset.video_features, checks.video_features_schema], instance=instance,
                               resources=resources)
        assert {"dagster/row_count": 4, "rows_rebuilt": 4, "compacted": False}.items() <= _table_metadata(first).items()
        assert _check_metadata(first)["shards_read"] == len(list(layout.table_dataset.glob("shard-*.parquet")))
        assert not layout.table_parquet.exists()
        for key in ("a", "broken"):
            run = dg.materialize([video_metadata, table_asset.video_features, checks.video_features_schema],
                                 instance=instance, partition_key=key, resources=resources)
            meta = _table_metadata(run)
            assert (meta["rows_rebuilt"], meta["shards_written"]) == (1, 1)  # only this run's video
            assert _check_metadata(run) == {"rows": 4, "shards_read": 1, "problems": []}  # the shard rewritten
        assert meta["status_counts"] == {"incomplete": 3, "failed": 1}
        assert "broken" in meta["failed_videos"]
    rows = load_features(layout.table_dataset).set_index("video_key")
    assert rows.loc["a", "duration_s"] == 6.0 and pd.isna(rows.loc["b", "duration_s"])
    assert rows.loc["broken", "status"] == "failed" and rows.loc["broken", "error"]

    assert cli.main(["--data-dir", str(data_dir), "table", "--compact"]) == 0
    assert load_features(layout.table_parquet).equals(load_features(layout.table_dataset))
