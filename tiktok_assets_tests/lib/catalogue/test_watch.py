"""The incremental folder scan: a folder is listed again only when its modification time moved, when it
still had a file waiting (new, or being written), when its time was too recent to trust, or when its
clean record is older than the relist interval; the sub-folders of an unchanged folder are still walked."""

import os
import time
from pathlib import Path

from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.catalogue.watch import UNSETTLED, FolderRecord, Scan, scan_folder
from tiktok_assets.lib.layout import DataLayout


def _age(path: Path, seconds: float = 120) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def _write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 8)
    _age(path)
    return path


def _age_folders(root: Path) -> None:
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        _age(folder)


class Catalogue:
    """What the sensor's known_in answers: the files registered as partitions, and which folders it was asked for."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}
        self.asked: list[list[str]] = []

    def known_in(self, folders: list[str]) -> dict[str, str]:
        self.asked.append(sorted(folders))
        return {p: k for p, k in self.known.items() if os.path.dirname(p) in folders}

    def take(self, scan: Scan) -> None:
        self.known.update({v.path: v.key for v in scan.new})


def test_only_changed_folders_are_listed_and_unchanged_ones_still_walked(tmp_path):
    root = tmp_path / "videos"
    for name in ("a/x.mp4", "a/deep/y.mp4", "b/z.mp4"):
        _write(root / name)
    _age_folders(root)
    catalogue = Catalogue()
    first = scan_folder(root, settle_seconds=60, known_in=catalogue.known_in)
    assert first.listed == 4 and [Path(v.path).name for v in first.new] == ["y.mp4", "x.mp4", "z.mp4"]
    unsettled = {Path(p).relative_to(root).as_posix() for p, r in first.folders.items() if r.mtime_ns == UNSETTLED}
    assert unsettled == {"a", "a/deep", "b"}  # new files: listed again next time; the root holds none
    assert catalogue.asked[0] == sorted(str(root / f) for f in ("a", "a/deep", "b"))  # not the root: no videos in it
    catalogue.take(first)  # the daemon added the partitions

    second = scan_folder(root, settle_seconds=60, known_in=catalogue.known_in, previous=first.folders)
    assert second.listed == 3 and not second.new  # every file known now: every folder clean
    assert all(r.mtime_ns >= 0 for r in second.folders.values())

    third = scan_folder(root, settle_seconds=60, known_in=catalogue.known_in, previous=second.folders)
    assert third.listed == 0 and not third.new and catalogue.asked[-1] == []
    assert third.folders == second.folders

    _write(root / "a" / "deep" / "new.mp4")  # only a/deep changes; a and the root are unchanged
    _age(root / "a" / "deep")
    fourth = scan_folder(root, settle_seconds=60, known_in=catalogue.known_in, previous=third.folders)
    assert fourth.listed == 1 and catalogue.asked[-1] == [str(root / "a" / "deep")]
    assert [Path(v.path).name for v in fourth.new] == ["new.mp4"]


def test_a_file_still_being_written_keeps_its_folder_listed(tmp_path):
    root = tmp_path / "videos"
    _write(root / "drop" / "done.mp4")
    (root / "drop" / "copying.mp4").write_bytes(b"\x00")  # written just now
    _age_folders(root)
    catalogue = Catalogue()
    catalogue.take(first := scan_folder(root, settle_seconds=60, known_in=catalogue.known_in))
    assert first.growing == 1
    second = scan_folder(root, settle_seconds=60, known_in=catalogue.known_in, previous=first.folders)
    assert second.folders[str(root / "drop")].mtime_ns == UNSETTLED and second.growing == 1
    assert second.folders[str(root)].mtime_ns >= 0  # the root is clean, its sub-folder is not
    _age(root / "drop" / "copying.mp4")  # the copy finished: no folder time moved
    third = scan_folder(root, settle_seconds=60, known_in=catalogue.known_in, previous=second.folders)
    assert third.listed == 1 and [Path(v.path).name for v in third.new] == ["copying.mp4"]


def test_a_recent_folder_time_and_an_old_record_are_not_trusted(tmp_path):
    root = tmp_path / "videos"
    _write(root / "x.mp4")
    catalogue = Catalogue()
    catalogue.known[str(root / "x.mp4")] = "x"
    os.utime(root, (time.time(), time.time()))  # changed just now: a file may still land within its clock tick
    first = scan_folder(root, settle_seconds=60, known_in=catalogue.known_in)
    assert first.folders[str(root)].mtime_ns == UNSETTLED
    _age(root)
    second = scan_folder(root, settle_seconds=60, known_in=catalogue.known_in, previous=first.folders)
    assert second.listed == 1 and second.folders[str(root)].mtime_ns >= 0
    # A filesystem that keeps no folder times (an object-store mount): a file appears, the time stays.
    mtime_ns = root.stat().st_mtime_ns
    _write(root / "late.mp4")
    os.utime(root, ns=(mtime_ns, mtime_ns))
    later = time.time()
    assert not scan_folder(root, 60, catalogue.known_in, second.folders, relist_seconds=600, now=later).new
    relisted = scan_folder(root, 60, catalogue.known_in, second.folders, relist_seconds=600, now=later + 601)
    assert [Path(v.path).name for v in relisted.new] == ["late.mp4"]


def test_a_removed_folder_leaves_the_record(tmp_path):
    root = tmp_path / "videos"
    _write(root / "gone" / "x.mp4")
    _write(root / "kept" / "y.mp4")
    _age_folders(root)
    previous = {str(root / "gone"): FolderRecord(1, time.time()), str(root): FolderRecord(1, time.time())}
    (root / "gone" / "x.mp4").unlink()
    (root / "gone").rmdir()
    _age(root)
    scan = scan_folder(root, settle_seconds=60, previous=previous)
    assert sorted(scan.folders) == [str(root), str(root / "kept")]
    assert [Path(v.path).name for v in scan.new] == ["y.mp4"]


def test_registry_files_in_answers_for_exactly_those_folders(tmp_path):
    layout = DataLayout(tmp_path / "data")
    videos = layout.videos_dir
    paths = [_write(videos / name) for name in ("a/x.mp4", "a/b/y.mp4", "ab/z.mp4", "a0.mp4", "top.mp4")]
    entries = registry.register_many(layout, paths)
    by_path = {e.source_path: e.key for e in entries}
    assert registry.files_in(layout, [str(videos / "a")]) == {str(videos / "a" / "x.mp4"): by_path[str(paths[0])]}
    assert set(registry.files_in(layout, [str(videos), str(videos / "ab")])) == {
        str(videos / "ab" / "z.mp4"), str(videos / "a0.mp4"), str(videos / "top.mp4")}
    page = registry.files_page(layout, after=0, limit=2)
    rest = registry.files_page(layout, after=page[-1][0], limit=10)
    assert [row[2] for row in page + rest] == [e.source_path for e in entries]  # each row once, in order
