"""video_similarity through Dagster, and the `similar` / `search` commands on what it recorded.

One run over a partition range takes four videos through the real asset definitions (metadata, audio,
frames, the packaged Whisper transcript, the Chromaprint, representative frames with a tiny CLIP, then
video_similarity): a photo clip, the same clip with another soundtrack, the clip trimmed by 1 s and an
unrelated clip. A second run adds a re-encoded copy on its own, compared through the saved index."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from tiktok_assets import cli
from tiktok_assets.defs.assets.audio import audio_wav
from tiktok_assets.defs.assets.audio_models import audio_stems, music_recognition, transcript
from tiktok_assets.defs.assets.frames import candidate_frames, filtered_frames
from tiktok_assets.defs.assets.metadata import video_metadata
from tiktok_assets.defs.assets.similarity import video_similarity
from tiktok_assets.defs.assets.table import video_features
from tiktok_assets.defs.assets.vision import frame_objects, representative_frames
from tiktok_assets.defs.model_resources import (
    ClipResource,
    DemucsResource,
    MusicRecognitionResource,
    WhisperResource,
    YoloWorldResource,
)
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.resources import CatalogueResource, ProjectPaths
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.samples import make_clip
from tiktok_assets_tests.lib.audio_fixtures import build_packaged_whisper
from tiktok_assets_tests.lib.catalogue.test_similarity import SIZE, make_copies
from tiktok_assets_tests.lib.vision_fixtures import _once, build_tiny_clip_dir

pytestmark = pytest.mark.slow  # clips, Whisper and a tiny CLIP through Dagster: ~1 min on 2 cores

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# audio_stems (separation off) and frame_objects (switched off) order the stages after them as in the full graph
ASSETS = [video_metadata, audio_wav, candidate_frames, filtered_frames, audio_stems, transcript, music_recognition,
          frame_objects, representative_frames, video_similarity]
NARRATION = "An astronaut gets ready for her mission."


def materialize(layout: DataLayout, instance: dg.DagsterInstance, keys: list[str], clip_dir: Path,
                whisper_dir: Path) -> dg.ExecuteInProcessResult:
    resources = {
        "paths": ProjectPaths(data_dir=str(layout.root)),
        "whisper": WhisperResource(model=str(whisper_dir), device="cpu", preset="cpu"),
        "music_recognition": MusicRecognitionResource(),
        "clip": ClipResource(model=str(clip_dir), device="cpu"),
        "demucs": DemucsResource(enabled=False),
        "yolo_world": YoloWorldResource(),
        "catalogue": CatalogueResource(),
    }
    result = dg.materialize(ASSETS, instance=instance, resources=resources,
                            run_config={"ops": {"frame_objects": {"config": {"enabled": False}}}},
                            tags={RANGE_START: min(keys), RANGE_END: max(keys)})
    table = dg.materialize([video_features], instance=instance, resources={"paths": resources["paths"]})
    assert result.success and table.success
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("similarity_stage")
    layout = DataLayout(root / "data")
    layout.videos_dir.mkdir(parents=True)
    clip_dir = _once(tmp_path_factory.getbasetemp(), "clip_dir", build_tiny_clip_dir)
    whisper_dir = build_packaged_whisper(root, "tiny.en")
    original = layout.videos_dir / "original.mp4"
    make_clip(original, source="skimage/data/astronaut.png", speech_text=NARRATION, **SIZE)
    copies = make_copies(original, root)
    (copies["new_soundtrack"]).rename(layout.videos_dir / "new_soundtrack.mp4")
    (copies["trimmed"]).rename(layout.videos_dir / "trimmed.mp4")
    make_clip(layout.videos_dir / "motorcycle.mp4", source="skimage/data/motorcycle_left.png",
              speech_text="This red motorcycle is ready for a ride.", **SIZE)
    names = ["original", "new_soundtrack", "trimmed", "motorcycle"]
    keys = {n: registry.register(layout, layout.videos_dir / f"{n}.mp4").key for n in names}
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VIDEOS_PARTITION, sorted(keys.values()))  # the range: first to last
    first = materialize(layout, instance, list(keys.values()), clip_dir, whisper_dir)
    first_table = pd.read_parquet(layout.table_parquet).set_index("video_key")
    # A later run: one new video, compared with the index the first run saved.
    (copies["reencoded"]).rename(layout.videos_dir / "reencoded.mp4")
    keys["reencoded"] = registry.register(layout, layout.videos_dir / "reencoded.mp4").key
    instance.add_dynamic_partitions(VIDEOS_PARTITION, [keys["reencoded"]])
    second = materialize(layout, instance, [keys["reencoded"]], clip_dir, whisper_dir)
    return layout, keys, first, first_table, second, clip_dir


def metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = result.asset_materializations_for_node("video_similarity")
    return {k: v.value for e in events if e.partition == key for k, v in e.metadata.items()}


def test_the_copies_share_the_originals_group_in_the_table(run):
    _, keys, _, table, _, _ = run
    assert (table["video_similarity_status"] == "ok").all(), table["video_similarity_error"]
    # The group is named by its first video in the run's partition order (sorted keys): new_soundtrack.
    first = keys["new_soundtrack"]
    assert table.loc[[keys["original"], first, keys["trimmed"]], "duplicate_group"].tolist() == [first] * 3
    assert table.loc[keys["motorcycle"], "duplicate_group"] == keys["motorcycle"]  # alone: its own key


def test_each_signal_is_used_where_its_stage_ran(run):
    _, keys, first, _, _, _ = run
    trimmed = metadata(first, keys["trimmed"])
    assert trimmed["signals"] == "frames, audio, clip"
    matched = {m["key"]: m for m in trimmed["duplicates"]}
    assert set(matched) == {keys["original"], keys["new_soundtrack"]}  # both ran before it
    assert matched[keys["original"]]["visual"] == 1.0 and matched[keys["original"]]["audio"] >= 0.8
    assert matched[keys["new_soundtrack"]]["audio"] < 0.5  # grouped by its frames alone


def test_a_later_run_compares_the_new_video_through_the_saved_index(run):
    layout, keys, _, _, second, _ = run
    reencoded = metadata(second, keys["reencoded"])
    assert reencoded["duplicate_group"] == keys["new_soundtrack"]
    found = {m["key"] for m in reencoded["duplicates"]}  # in the index the first run saved
    assert found == {keys[k] for k in ("original", "new_soundtrack", "trimmed")}
    table = pd.read_parquet(layout.table_parquet).set_index("video_key")
    assert table.loc[keys["reencoded"], "duplicate_group"] == keys["new_soundtrack"]


def test_similar_lists_the_copies_first_with_their_signals(run, dagster_home, monkeypatch, capsys):
    layout, keys, _, _, _, _ = run
    monkeypatch.setenv("TIKTOK_ASSETS_DATA_DIR", str(layout.root))
    assert cli.main(["--data-dir", str(layout.root), "similar", keys["original"], "-n", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{keys['original']}: duplicate group {keys['new_soundtrack']}"
    rows = [line.split() for line in lines[2:]]
    assert {r[0] for r in rows[:3]} == {keys[k] for k in ("new_soundtrack", "trimmed", "reencoded")}
    assert all(r[2] == "yes" for r in rows[:3]) and rows[3] == [keys["motorcycle"], *rows[3][1:]]
    assert rows[3][2] == "no"
    # A video removed from the registry is never listed again.
    registry.remove(layout, keys["trimmed"])
    try:
        assert cli.main(["--data-dir", str(layout.root), "similar", keys["original"]]) == 0
        assert keys["trimmed"] not in capsys.readouterr().out
    finally:
        registry.register(layout, layout.videos_dir / "trimmed.mp4")


def test_search_ranks_by_the_spoken_words_and_uses_clip_when_installed(run, dagster_home, monkeypatch, capsys):
    layout, keys, _, _, _, clip_dir = run
    monkeypatch.setenv("TIKTOK_ASSETS_DATA_DIR", str(layout.root))
    monkeypatch.setenv("TIKTOK_ASSETS_MODELS_DIR", str(layout.root / "no_models"))
    assert cli.main(["--data-dir", str(layout.root), "search", "red motorcycle"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("pictures: not used (")
    assert [line.split()[0] for line in out[2:]] == [keys["motorcycle"]]  # no other video says these words
    monkeypatch.setenv("TIKTOK_ASSETS_CLIP_MODEL", str(clip_dir))
    assert cli.main(["--data-dir", str(layout.root), "search", "astronaut mission", "-n", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"pictures: CLIP {clip_dir.name}"
    rows = {line.split()[0]: line.split() for line in out[2:]}
    assert set(rows) == set(keys.values())  # every video has CLIP-encoded representative frames
    assert all(r[3] != "-" for r in rows.values())
    spoken = {keys[k] for k in ("original", "trimmed", "reencoded")}  # the narration (the new soundtrack has none)
    assert {k for k, r in rows.items() if r[2] != "-"} == spoken
