"""The registry: content hashes (the fast one sees a replaced file, the full one also an edit in the
middle of a large file that keeps its size and modification time), batched registration, and the
import of an earlier version's JSON entries."""

import json
import os
from dataclasses import asdict

from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout


def _edit_middle(path, mtime):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, (mtime + 5, mtime + 5))  # a new mtime: the registry looks at the content again


def test_fast_hash_misses_a_middle_edit_the_full_hash_sees(tmp_path, monkeypatch):
    layout = DataLayout(tmp_path / "data")
    layout.videos_dir.mkdir(parents=True)
    fast, full = layout.videos_dir / "fast.mp4", layout.videos_dir / "full.mp4"
    content = os.urandom(5 * registry.HASH_BLOCK)
    for path in (fast, full):
        path.write_bytes(content)
    fast_entry = registry.register(layout, fast)
    monkeypatch.setenv("TIKTOK_ASSETS_FULL_HASH", "1")
    full_entry = registry.register(layout, full)
    assert full_entry.content_hash.startswith(registry.FULL_PREFIX)
    assert not fast_entry.content_hash.startswith(registry.FULL_PREFIX)
    monkeypatch.delenv("TIKTOK_ASSETS_FULL_HASH")  # an entry keeps the kind of hash it was made with
    for path, entry in ((fast, fast_entry), (full, full_entry)):
        _edit_middle(path, entry.mtime)
    assert not registry.changed(fast_entry)  # head, tail and size unchanged
    assert registry.changed(full_entry)
    assert registry.register(layout, full).content_hash != full_entry.content_hash


def test_a_replaced_file_changes_the_fast_hash(tmp_path):
    layout = DataLayout(tmp_path / "data")
    layout.videos_dir.mkdir(parents=True)
    video = layout.videos_dir / "clip.mp4"
    video.write_bytes(os.urandom(3 * registry.HASH_BLOCK))
    entry = registry.register(layout, video)
    video.write_bytes(os.urandom(3 * registry.HASH_BLOCK))
    assert registry.changed(entry)
    assert registry.register(layout, video).content_hash != entry.content_hash


def test_many_files_register_in_one_transaction_with_collisions_and_lookups(tmp_path):
    layout = DataLayout(tmp_path / "data")
    (layout.videos_dir / "sub").mkdir(parents=True)
    paths = []
    for i in range(1200):  # more than one IN (...) chunk
        path = layout.videos_dir / f"v{i:04d}.mp4"
        path.write_bytes(i.to_bytes(4, "little"))
        paths.append(path)
    outside = tmp_path / "elsewhere" / "v0001.mp4"  # same key as a file of the folder
    outside.parent.mkdir()
    outside.write_bytes(b"other")
    entries = registry.register_many(layout, [*paths, outside, paths[0]])
    assert [e.key for e in entries[:3]] == ["v0000", "v0001", "v0002"]
    assert entries[-2].key.startswith("v0001-") and entries[-2].source_path == str(outside)  # never repointed
    assert entries[-1] == entries[0]  # the same file again keeps its entry
    assert len(registry.registered(layout)) == 1201
    found = registry.lookup_many(layout, ["v0005", "v1199", "nope"])
    assert sorted(found) == ["v0005", "v1199"] and found["v1199"].size == 4
    registry.remove(layout, "v0005")
    assert "v0005" not in registry.lookup_many(layout, ["v0005"])


def test_a_data_folder_of_json_entries_is_imported_once(tmp_path):
    layout = DataLayout(tmp_path / "data")
    layout.videos_dir.mkdir(parents=True)
    video = layout.videos_dir / "old.mp4"
    video.write_bytes(b"old video")
    legacy = registry.describe(video, "old")
    layout.legacy_registry_dir.mkdir()
    (layout.legacy_registry_dir / "old.json").write_text(json.dumps(asdict(legacy)))
    assert registry.lookup(layout, "old") == legacy  # the earlier version's entry, registered_at kept
    assert registry.register(layout, video) == legacy
    (layout.legacy_registry_dir / "late.json").write_text(json.dumps({**asdict(legacy), "key": "late"}))
    assert "late" not in registry.lookup_many(layout, ["late"])  # imported when the database was created only
