"""One truth through Dagster: a batched run of {good, corrupt, no-audio} videos, what the UI reads for
each partition (materialization metadata and the per-partition ``video_ok`` check), the table rows
written in the same run, and optional stages that degrade instead of blocking."""

import os
import shutil

import dagster as dg
import pandas as pd
import pytest

from tiktok_assets.definitions import defs as load_defs
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.sensors import RANGE_END, RANGE_START
from tiktok_assets.defs.video_stage import VIDEO_CHECK
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.models.manifest import CODE_MANIFEST
from tiktok_assets.lib.status import read_status
from tiktok_assets.lib.table.schema import STAGES
from tiktok_assets_tests.conftest import copy_clip, ffmpeg
from tiktok_assets_tests.lib.audio_fixtures import build_packaged_whisper

MANIFEST = CODE_MANIFEST
VISION = ["frame_objects", "representative_frames", "frame_features", "onscreen_text", "video_understanding"]


@pytest.fixture(scope="module")
def batch_run(sample_dir, tmp_path_factory):
    """Three videos in ONE run over a partition range (what a sensor or UI backfill batch launches),
    the whole graph selected as `dagster asset materialize --select '*'` does, with the packaged Whisper
    and no other weights (separation and vision unavailable, as on a fresh offline install)."""
    root = tmp_path_factory.mktemp("outcomes")
    layout = DataLayout(root / "data")
    models = root / "models"
    models.mkdir()
    shutil.copy(MANIFEST, models / "manifest.yaml")
    env = {"TIKTOK_ASSETS_DATA_DIR": str(layout.root), "TIKTOK_ASSETS_MODELS_DIR": str(models),
           "TIKTOK_ASSETS_WHISPER_MODEL": str(build_packaged_whisper(root, "tiny.en"))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        copy_clip(sample_dir / "product_talk.mp4", layout.videos_dir / "a_good.mp4")
        (layout.videos_dir / "b_corrupt.mp4").write_bytes(os.urandom(40_000))
        copy_clip(sample_dir / "silent_cuts.mp4", layout.videos_dir / "c_no_audio.mp4")
        # An upload cut off half-way (moov at the start): the container still declares 12 s.
        whole = root / "faststart.mp4"
        ffmpeg("-i", str(sample_dir / "product_talk.mp4"), "-c", "copy", "-movflags", "+faststart", str(whole))
        data = whole.read_bytes()
        (layout.videos_dir / "d_truncated.mp4").write_bytes(data[: len(data) // 2])
        keys = [registry.register(layout, layout.videos_dir / n).key
                for n in ("a_good.mp4", "b_corrupt.mp4", "c_no_audio.mp4", "d_truncated.mp4")]
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(VIDEOS_PARTITION, keys)
            job = load_defs().resolve_implicit_global_asset_job_def()
            result = job.execute_in_process(instance=instance, raise_on_error=False,
                                            tags={RANGE_START: keys[0], RANGE_END: keys[-1]})
            logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
            yield layout, dict(zip(("good", "corrupt", "no_audio", "truncated"), keys, strict=True)), result, logs
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _checks(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return {(c.asset_key.to_user_string(), c.partition): c for c in evaluations if c.check_name == VIDEO_CHECK}


def _materializations(result) -> dict[tuple[str, str], dict]:
    return {(e.asset_key.to_user_string(), e.partition): e.event_specific_data.materialization.metadata
            for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION" and e.partition}


def test_the_run_finishes_and_writes_the_table_despite_a_bad_video(batch_run):
    layout, keys, result, _ = batch_run
    assert result.success
    table = pd.read_parquet(layout.table_parquet)
    assert sorted(table.video_key) == sorted(keys.values())
    assert set(pd.read_csv(layout.table_csv).video_key) == set(keys.values())


def test_each_partition_says_what_happened_to_it(batch_run):
    _, keys, result, _ = batch_run
    checks, mats = _checks(result), _materializations(result)
    for stage in STAGES:
        assert (stage, keys["good"]) in checks and (stage, keys["corrupt"]) in checks
    # The good video passes every stage that could run here.
    for stage in ["video_metadata", "audio_wav", "speech_segments", "candidate_frames", "filtered_frames",
                  "transcript", "audio_events", "music_recognition", "audio_analysis"]:
        assert checks[(stage, keys["good"])].passed, (stage, checks[(stage, keys["good"])].description)
        assert mats[(stage, keys["good"])]["outcome"].value == "ok"
    assert mats[("transcript", keys["good"])]["source"].value == "mix"  # separation unavailable: the mix
    # The corrupt video fails at video_metadata with its error; everything after it says why it skipped.
    bad = checks[("video_metadata", keys["corrupt"])]
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    assert bad.description.startswith("failed: ") and "VideoInputError" in bad.description
    assert mats[("video_metadata", keys["corrupt"])]["outcome"].value == "failed"
    for stage in STAGES[1:]:
        skipped = checks[(stage, keys["corrupt"])]
        assert not skipped.passed and skipped.description.startswith("skipped: upstream stage"), stage
    # No audio track is an outcome, not an error.
    assert checks[("transcript", keys["no_audio"])].passed
    assert mats[("transcript", keys["no_audio"])]["outcome"].value == "no_audio"
    # Stages without their weights are unavailable: a warning, not a data error.
    for stage in ["audio_stems", *VISION]:
        check = checks[(stage, keys["good"])]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN, stage
        assert check.description.startswith("unavailable: ")


def test_table_rows_agree_with_dagster(batch_run):
    layout, keys, result, _ = batch_run
    checks = _checks(result)
    table = pd.read_parquet(layout.table_parquet).set_index("video_key")
    for key in keys.values():
        for stage in STAGES:
            outcome = table.loc[key, f"{stage}_status"]
            in_full = not read_status(layout.video(key), stage).warning  # e.g. a truncated file's decode
            assert checks[(stage, key)].passed == (outcome in ("ok", "no_audio", "disabled") and in_full), (key, stage)
    good, bad, silent = (table.loc[keys[k]] for k in ("good", "corrupt", "no_audio"))
    assert bad["status"] == "failed" and bad["error"].startswith("video_metadata: ")
    assert good["status"] == "partial" and pd.isna(good["error"])  # missing weights are not row errors
    assert "audio_stems: unavailable" in good["partial_reason"] and "frame_objects: unavailable" in good["partial_reason"]
    assert good["separation"] == "unavailable"
    assert good["language"] == "en" and good["word_count"] > 10
    assert silent["status"] == "partial" and pd.isna(silent["speech_ratio"]) and pd.isna(silent["music_ratio"])
    assert pd.isna(silent["separation"])
    assert pd.isna(silent["audio_track"]) and silent["audio_track_count"] == 0
    assert (good["decode_errors"], good["audio_track"], good["audio_track_count"]) == (0, 0, 1)
    assert good["decoded_seconds"] == pytest.approx(good["duration_s"], abs=0.05)


def test_a_truncated_upload_is_partial_with_what_decoded(batch_run):
    """The container declares 12 s; half the file's bytes decode to well under that (the early, static
    seconds take fewer bytes, so not exactly half): the row is partial and says so,
    and the UI shows a WARN check on the stages that decoded in part."""
    layout, keys, result, _ = batch_run
    row = pd.read_parquet(layout.table_parquet).set_index("video_key").loc[keys["truncated"]]
    assert row["status"] == "partial" and pd.isna(row["error"])
    assert row["duration_s"] == pytest.approx(12.0, abs=0.05)
    assert 2.0 < row["decoded_seconds"] < 11.0 and row["decode_errors"] > 0
    assert "candidate_frames: decode: video " in row["partial_reason"]
    assert "of 12.0 s decoded" in row["partial_reason"]
    assert "audio_wav: decode: audio " in row["partial_reason"]
    check = _checks(result)[("candidate_frames", keys["truncated"])]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description.startswith("partial: decode: video ")
    meta = _materializations(result)[("candidate_frames", keys["truncated"])]
    assert meta["outcome"].value == "ok" and meta["warning"].value.startswith("decode: video")


def test_event_log_stays_light(batch_run):
    """Per partition and stage, what the UI loads (materialization + check event) is at most ~50 kB."""
    _, keys, result, _ = batch_run
    sizes: dict[tuple[str, str], int] = {}
    for event in result.all_events:
        if event.event_type_value in ("ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION") and event.partition:
            key = (event.step_key, event.partition)
            sizes[key] = sizes.get(key, 0) + len(dg.serialize_value(event))
    assert len(sizes) >= len(STAGES) * len(keys)
    largest = max(sizes.items(), key=lambda kv: kv[1])
    print("largest event payload per partition and stage:", largest)
    assert largest[1] <= 50_000, largest


def test_the_run_says_once_what_it_can_do(batch_run):
    """System problems are reported once per run, not copied into each video: one preflight line at the
    start, one warning per unavailable stage."""
    _, _, _, logs = batch_run
    preflight = [m for m in logs if m.startswith("preflight:")]
    assert len(preflight) == 1 and "unavailable: audio_stems (transcribing the mix)" in preflight[0]
    for stage in ("audio_stems", "frame_objects"):
        assert len([m for m in logs if m.startswith(f"{stage} unavailable in this run")]) == 1, stage
