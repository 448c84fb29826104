"""The feature table's shards: an update rebuilds exactly the rows that changed and rewrites only their
shards; the compacted pair and the shards hold the same rows; a shard of an older schema is rebuilt."""

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.status import FAILED, StageStatus, write_status
from tiktok_assets.lib.table import table_dataset
from tiktok_assets.lib.table.table_io import load_features
from tiktok_assets.lib.table.table_validation import load_passed, save_passed, validate_dataset


def _catalogue(tmp_path, n=60):
    layout = DataLayout(tmp_path / "data")
    layout.videos_dir.mkdir(parents=True)
    paths = []
    for i in range(n):
        path = layout.videos_dir / f"v{i:02d}.mp4"
        path.write_bytes(i.to_bytes(2, "little"))
        paths.append(path)
    return layout, [e.key for e in registry.register_many(layout, paths)]


def _mtimes(layout):
    return {p.name: p.stat().st_mtime_ns for p in layout.table_dataset.glob("shard-*.parquet")}


def test_an_update_rebuilds_only_marked_rows_and_their_shards(tmp_path):
    layout, keys = _catalogue(tmp_path)
    first = table_dataset.update_dataset(layout, keys)
    assert (first.rows, first.rebuilt) == (60, 60)
    assert first.status_counts == {"incomplete": 60}  # registered, no stage has run
    check = validate_dataset(layout.table_dataset)
    assert (check.rows, check.problems, check.read) == (60, [], len(check.passed))
    before = _mtimes(layout)
    assert table_dataset.update_dataset(layout, keys).rebuilt == 0 and _mtimes(layout) == before

    write_status(layout.video("v07"), StageStatus("video_metadata", FAILED, 0.1, "moov atom not found"))
    table_dataset.mark_changed(layout, ["v07"])  # what the stage does after recording the outcome
    update = table_dataset.update_dataset(layout, keys)
    assert (update.rebuilt, update.shards_written, update.rows) == (1, 1, 60)
    assert update.failed == [("v07", "video_metadata: moov atom not found")]
    assert update.status_counts == {"incomplete": 59, "failed": 1}
    changed = [name for name, mtime in _mtimes(layout).items() if before[name] != mtime]
    assert changed == [table_dataset.shard_path(layout.table_dataset, table_dataset.shard_of("v07")).name]
    table = load_features(layout.table_dataset).set_index("video_key")
    assert table.loc["v07", "status"] == "failed" and table.loc["v07", "error"] == "video_metadata: moov atom not found"
    assert table_dataset.pending(layout) == {}


def test_removed_and_missing_sources_and_a_mark_made_during_an_update(tmp_path, monkeypatch):
    layout, keys = _catalogue(tmp_path)
    table_dataset.update_dataset(layout, keys)
    (layout.videos_dir / "v03.mp4").unlink()  # its results stay, its row says the source is gone
    kept = [k for k in keys if k != "v05"]  # no longer a partition: its row goes
    build_row = table_dataset.build_row

    def marking_build_row(layout_, entry):  # a stage records another video's outcome meanwhile
        table_dataset.mark_changed(layout_, ["v09"])
        return build_row(layout_, entry)

    monkeypatch.setattr(table_dataset, "build_row", marking_build_row)
    update = table_dataset.update_dataset(layout, kept)
    assert (update.rebuilt, update.dropped, update.rows) == (1, 1, 59)
    assert list(table_dataset.pending(layout)) == ["v09"]  # kept for the next update
    table = load_features(layout.table_dataset).set_index("video_key")
    assert "v05" not in table.index and table.loc["v03", "status"] == "source_missing"


def test_missing_sources_are_found_per_folder_links_followed(tmp_path):
    """The update finds sources that went missing by listing each folder once instead of stat-ing every
    file; it must agree with os.path.exists: a dangling link and a removed folder are missing, a link to
    a file is not, and a source that comes back makes its row current again."""
    layout = DataLayout(tmp_path / "data")
    names = ["a/file.mp4", "a/link.mp4", "a/dangling.mp4", "a/deleted.mp4", "a/b/nested.mp4", "a/b0.mp4", "gone/lost.mp4"]
    paths = []
    for i, name in enumerate(names):
        path = layout.videos_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * 4)
        paths.append(path)
    keys = {Path(e.source_path).name: e.key for e in registry.register_many(layout, paths)}
    table_dataset.update_dataset(layout, list(keys.values()))
    videos = layout.videos_dir
    (videos / "a/link.mp4").unlink()
    (videos / "a/link.mp4").symlink_to(videos / "a/file.mp4")
    (videos / "a/dangling.mp4").unlink()
    (videos / "a/dangling.mp4").symlink_to(tmp_path / "nowhere.mp4")
    (videos / "a/deleted.mp4").unlink()
    (videos / "gone/lost.mp4").unlink()
    (videos / "gone").rmdir()
    update = table_dataset.update_dataset(layout, list(keys.values()))
    status = load_features(layout.table_dataset).set_index("video_key")["status"]
    missing = {name for name, key in keys.items() if status[key] == "source_missing"}
    assert missing == {p.name for p in paths if not os.path.exists(p)} == {"dangling.mp4", "deleted.mp4", "lost.mp4"}
    assert update.rebuilt == 3
    (videos / "a/deleted.mp4").write_bytes(b"back")
    back = table_dataset.update_dataset(layout, list(keys.values()))
    assert back.rebuilt == 1 and load_features(layout.table_dataset).set_index("video_key")["status"][
        keys["deleted.mp4"]] != "source_missing"


def test_compacted_pair_matches_the_shards_and_a_new_schema_or_a_lost_shard_is_rebuilt(tmp_path):
    layout, keys = _catalogue(tmp_path, n=20)
    table_dataset.update_dataset(layout, keys)
    assert table_dataset.compact(layout) == 20
    shards = load_features(layout.table_dataset)
    assert load_features(layout.table_parquet).equals(shards)
    assert list(load_features(layout.table_csv).video_key) == list(shards.video_key)

    shard = table_dataset.shard_path(layout.table_dataset, table_dataset.shard_of("v00"))
    in_shard = pq.read_table(shard).num_rows
    shard.unlink()  # deleted by hand: its rows are rebuilt
    lost = table_dataset.update_dataset(layout, keys)
    assert (lost.rebuilt, lost.shards_written, lost.rows) == (in_shard, 1, 20)

    pq.write_table(pq.read_table(shard).drop_columns(["partial_reason"]), shard)  # not the declared schema
    assert validate_dataset(layout.table_dataset).problems == [f"{shard.name}: not the declared schema"]
    with registry.database(layout) as conn:  # shards written by a version with another schema
        conn.execute("UPDATE table_meta SET value = 'an older schema' WHERE name = 'schema'")
    update = table_dataset.update_dataset(layout, keys)
    assert update.full and update.rebuilt == 20 and update.rows == 20
    check = validate_dataset(layout.table_dataset)
    assert (check.rows, check.problems) == (20, [])
    assert isinstance(pq.read_schema(shard).field("partial_reason").type, pa.DataType)


def test_the_check_reads_only_shards_changed_since_they_passed(tmp_path):
    """After a batch, the schema check reads the shards the update rewrote, not the whole dataset; a shard
    changed by hand (another mtime or size) is read again and its problem found."""
    layout, keys = _catalogue(tmp_path)
    table_dataset.update_dataset(layout, keys)
    first = validate_dataset(layout.table_dataset, load_passed(layout))
    save_passed(layout, first.passed)
    assert first.read == len(first.passed) > 40 and first.rows == 60

    write_status(layout.video("v07"), StageStatus("video_metadata", FAILED, 0.1, "moov atom not found"))
    table_dataset.mark_changed(layout, ["v07"])
    table_dataset.update_dataset(layout, keys)
    after_batch = validate_dataset(layout.table_dataset, load_passed(layout))
    assert (after_batch.read, after_batch.rows, after_batch.problems) == (1, 60, [])
    save_passed(layout, after_batch.passed)

    shard = table_dataset.shard_path(layout.table_dataset, table_dataset.shard_of("v07"))
    table = pq.read_table(shard)
    errors = pa.array([None] * table.num_rows, table.schema.field("error").type)
    pq.write_table(table.set_column(table.schema.get_field_index("error"), "error", errors), shard)  # by hand
    by_hand = validate_dataset(layout.table_dataset, load_passed(layout))
    assert by_hand.read == 1 and by_hand.problems == [f"{shard.name}: the failed video v07 has no error message"]
    assert shard.name not in by_hand.passed  # read again next time, until it is right
