"""The registry's content hashes: the fast one sees a replaced file, the full one also an edit in the
middle of a large file that keeps its size and modification time."""

import os

from tiktok_assets.lib import registry
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
