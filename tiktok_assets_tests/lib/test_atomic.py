"""Atomic writes under interrupts: a signal turned into an exception can land anywhere, also inside the
cleanup of a temp file; remove_unfinished() (called by the CLI after an interrupt) removes what is left,
and never the live version of a file set that was already switched to."""

from pathlib import Path

import pytest

from tiktok_assets.lib import atomic


def test_an_interrupt_inside_the_cleanup_leaves_a_temp_file_that_remove_unfinished_deletes(tmp_path, monkeypatch):
    target = tmp_path / "filtered_frames.json"
    real_unlink = Path.unlink

    def second_signal(self: Path, missing_ok: bool = False) -> None:  # lands in the `finally`
        monkeypatch.setattr(Path, "unlink", real_unlink)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), atomic.atomic_path(target) as tmp:
        tmp.write_text("half written")
        monkeypatch.setattr(Path, "unlink", second_signal)
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == [tmp.name]  # left behind
    atomic.remove_unfinished()
    assert list(tmp_path.iterdir()) == [] and not target.exists()


def test_an_interrupt_after_a_file_set_switched_keeps_the_new_version(tmp_path, monkeypatch):
    with atomic.atomic_file_set(tmp_path, "table", ["a.csv"]) as version:
        (version / "a.csv").write_text("old")
    real_replace = atomic._replace_with_symlink
    calls: list[Path] = []

    def signal_after_the_switch(link: Path, target: str) -> None:
        calls.append(link)
        real_replace(link, target)
        raise KeyboardInterrupt  # right after `table` points to the new version

    monkeypatch.setattr(atomic, "_replace_with_symlink", signal_after_the_switch)
    with pytest.raises(KeyboardInterrupt), atomic.atomic_file_set(tmp_path, "table", ["a.csv"]) as version:
        (version / "a.csv").write_text("new")
    atomic.remove_unfinished()
    assert calls == [tmp_path / "table"]
    assert (tmp_path / "a.csv").read_text() == "new"  # the live version was neither rolled back nor swept
