"""Where every per-video artifact lives on disk. One place, so assets and the table agree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tiktok_assets.lib.catalogue.keys import InvalidKeyError, validate_key


@dataclass(frozen=True)
class DataLayout:
    """The project's data folder: inputs, per-video outputs, frames and the feature table."""

    root: Path

    @property
    def videos_dir(self) -> Path:
        return self.root / "tiktok_videos"

    @property
    def frames_root(self) -> Path:
        return self.root / "tiktok_frames"

    @property
    def outputs_root(self) -> Path:
        return self.root / "outputs"

    @property
    def registry_db(self) -> Path:
        return self.root / "registry.sqlite3"

    @property
    def legacy_registry_dir(self) -> Path:
        """One JSON file per video: the registry of earlier versions, imported into :attr:`registry_db`."""
        return self.root / "registry"

    @property
    def table_dataset(self) -> Path:
        """The feature table's shards (lib/table/table_dataset.py): what a run updates."""
        return self.root / "video_features_dataset"

    @property
    def similarity_dir(self) -> Path:
        """video_similarity's store: signatures, duplicate pairs and groups, the nearest-neighbour indexes."""
        return self.root / "similarity"

    @property
    def table_csv(self) -> Path:
        return self.root / "video_features_results.csv"

    @property
    def table_parquet(self) -> Path:
        return self.root / "video_features_results.parquet"

    def video(self, key: str) -> VideoLayout:
        """The artifacts of the video ``key``; InvalidKeyError for a key that could leave the data folder."""
        validate_key(key)
        video = VideoLayout(key=key, out_dir=self.outputs_root / key, frames_dir=self.frames_root / key)
        for folder, root in ((video.out_dir, self.outputs_root), (video.frames_dir, self.frames_root)):
            if not folder.resolve().is_relative_to(root.resolve()):
                raise InvalidKeyError(f"partition key {key!r} leads outside {root}")
        return video


@dataclass(frozen=True)
class VideoLayout:
    """Artifacts of one video (one partition)."""

    key: str
    out_dir: Path
    frames_dir: Path

    @property
    def status_dir(self) -> Path:
        return self.out_dir / "status"

    @property
    def metadata_json(self) -> Path:
        return self.out_dir / "metadata.json"

    @property
    def audio_wav(self) -> Path:
        return self.out_dir / "audio_16k_mono.wav"

    @property
    def audio_json(self) -> Path:
        return self.out_dir / "audio.json"

    @property
    def speech_segments_json(self) -> Path:
        return self.out_dir / "speech_segments.json"

    @property
    def speech_segments_csv(self) -> Path:
        return self.out_dir / "speech_segments.csv"

    @property
    def transcript_json(self) -> Path:
        return self.out_dir / "transcript.json"

    @property
    def stems_dir(self) -> Path:
        return self.out_dir / "stems"

    @property
    def stems_json(self) -> Path:
        return self.out_dir / "stems.json"

    @property
    def transcript_txt(self) -> Path:
        return self.out_dir / "speech_transcription.txt"

    @property
    def transcript_csv(self) -> Path:
        return self.out_dir / "transcript_segments.csv"

    @property
    def audio_events_json(self) -> Path:
        return self.out_dir / "audio_events.json"

    @property
    def audio_events_csv(self) -> Path:
        return self.out_dir / "audio_events.csv"

    @property
    def music_json(self) -> Path:
        return self.out_dir / "music_recognition.json"

    @property
    def audio_analysis_json(self) -> Path:
        return self.out_dir / "audio_analysis_results.json"

    @property
    def vision_dir(self) -> Path:
        return self.out_dir / "vision"

    @property
    def frame_objects_json(self) -> Path:
        return self.vision_dir / "frame_objects.json"

    @property
    def representative_dir(self) -> Path:
        """representative_<t>s.jpg and representative_timestamps.json sit in the video's frame folder."""
        return self.frames_dir

    @property
    def frame_features_json(self) -> Path:
        return self.vision_dir / "frame_features.json"

    @property
    def understanding_json(self) -> Path:
        return self.vision_dir / "video_understanding.json"

    @property
    def onscreen_text_json(self) -> Path:
        return self.vision_dir / "onscreen_text.json"

    @property
    def similarity_json(self) -> Path:
        """The video's duplicate group (kept current when its group merges) and what its run matched."""
        return self.out_dir / "similarity.json"

    @property
    def frames_index_json(self) -> Path:
        return self.frames_dir / "frames_index.json"

    @property
    def shots_json(self) -> Path:
        """Shots and transitions found in candidate_frames' decode pass."""
        return self.out_dir / "shots.json"

    @property
    def filtered_frames_json(self) -> Path:
        return self.out_dir / "filtered_frames.json"

    def status_json(self, stage: str) -> Path:
        return self.status_dir / f"{stage}.json"
