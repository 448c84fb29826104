"""What runs: the stages, what each one needs, and which of them a run can do with the models and
settings it has. One resolution shared by every entry point (the Dagster assets, the sensor, the CLI).

A stage is ``active``, ``disabled`` (switched off by a setting) or ``unavailable`` (a model it needs
is not installed, or a stage it requires cannot run). Optional inputs degrade instead of blocking:
without separation the transcript uses the mix, without detections the representative frames use
CLIP relevance alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tiktok_assets.lib.status import DISABLED, UNAVAILABLE
from tiktok_assets.lib.table.schema import STAGES

ACTIVE = "active"

# Stages a stage cannot run without, for the same video. Other upstream results are optional.
REQUIRES: dict[str, tuple[str, ...]] = {
    "video_metadata": (),
    "audio_wav": ("video_metadata",),
    "speech_segments": ("audio_wav",),
    "candidate_frames": ("video_metadata",),
    "filtered_frames": ("candidate_frames",),
    "audio_stems": ("audio_wav",),
    "transcript": ("audio_wav",),
    "audio_events": ("audio_wav",),
    "music_recognition": ("audio_wav",),
    "audio_analysis": ("audio_wav",),
    "frame_objects": ("filtered_frames",),
    "representative_frames": ("filtered_frames",),
    "frame_features": ("representative_frames",),
    "onscreen_text": ("filtered_frames",),
    "video_understanding": ("representative_frames",),
    "video_similarity": ("filtered_frames",),  # the audio fingerprint and CLIP are used when present
}

# Model families (and tools) each stage needs.
STAGE_MODELS: dict[str, tuple[str, ...]] = {
    "music_recognition": ("chromaprint",),
    "audio_stems": ("demucs",),
    "transcript": ("whisper",),
    "frame_objects": ("yolo_world", "clip"),  # the detector; CLIP encodes YOLO-World's prompts
    "representative_frames": ("clip",),
    "frame_features": ("blip",),
    "onscreen_text": ("ocr",),
    "video_understanding": ("vlm",),
}

# What the pipeline does instead when an optional stage cannot run.
DEGRADED: dict[str, str] = {
    "audio_stems": "transcribing the mix",
    "frame_objects": "representative frames by CLIP relevance alone",
}


@dataclass(frozen=True)
class StagePlan:
    """Per stage: ACTIVE, DISABLED or UNAVAILABLE, and why when not active."""

    states: dict[str, str]
    reasons: dict[str, str]
    notes: tuple[str, ...] = ()  # model choices worth saying, e.g. a fallback

    def state(self, stage: str) -> str:
        return self.states[stage]

    def summary(self) -> str:
        """One line for the active stages, then one per stage that will not run and why."""
        active = [s for s in STAGES if self.states[s] == ACTIVE]
        lines = [f"active stages: {', '.join(active) or 'none'}"]
        for stage in STAGES:
            if self.states[stage] != ACTIVE:
                instead = f" ({DEGRADED[stage]})" if stage in DEGRADED else ""
                lines.append(f"  {self.states[stage]}: {stage}{instead}: {self.reasons[stage]}")
        return "\n".join([*lines, *(f"  {note}" for note in self.notes)])


def plan_stages(
    missing_models: Mapping[str, str | None],
    disabled: Mapping[str, str] | None = None,
    notes: tuple[str, ...] = (),
    stage_models: Mapping[str, tuple[str, ...]] | None = None,
) -> StagePlan:
    """``missing_models``: family (or tool) -> why it is unavailable (None = present).
    ``disabled``: stage -> the setting that switched it off. ``stage_models``: stages whose model
    families differ from STAGE_MODELS in this configuration (a closed-set detector needs no CLIP)."""
    disabled = dict(disabled or {})
    needs = {**STAGE_MODELS, **(stage_models or {})}
    states: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for stage in STAGES:  # topological order
        if stage in disabled:
            states[stage], reasons[stage] = DISABLED, disabled[stage]
            continue
        missing = [m for f in needs.get(stage, ()) if (m := missing_models.get(f))]
        blocked = [r for r in REQUIRES[stage] if states[r] != ACTIVE]
        if missing:
            states[stage], reasons[stage] = UNAVAILABLE, missing[0]
        elif blocked:
            states[stage], reasons[stage] = UNAVAILABLE, f"needs {blocked[0]}, which is {states[blocked[0]]}"
        else:
            states[stage] = ACTIVE
    return StagePlan(states, reasons, notes)
