"""The feature table's schema: one row per video. The single source for the README table, the
Dagster column schema and the validation check."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # pandas dtype: string, Int64, Float64, boolean, object (lists; Parquet only)
    description: str
    csv: bool = True  # False: Parquet only (e.g. embeddings)


STAGES: list[str] = [
    "video_metadata", "audio_wav", "speech_segments", "candidate_frames", "filtered_frames",
    "audio_stems", "transcript", "audio_events", "music_recognition", "audio_analysis",
    "frame_objects", "representative_frames", "frame_features", "video_understanding",
]


# Provenance: which model produced a stage's values (read from that stage's status record).
MODEL_COLUMNS: dict[str, str] = {
    "whisper_model": "transcript",
    "separator_model": "audio_stems",
    "clip_model": "representative_frames",
    "detector_model": "frame_objects",
    "captioner_model": "frame_features",
    "vlm_model": "video_understanding",
}


def _stage_columns(stage: str) -> list[Column]:
    return [
        Column(f"{stage}_status", "string",
               f"Outcome of {stage}: ok, failed, skipped, not_run, unavailable, or no_audio / disabled where they apply."),
        Column(f"{stage}_error", "string", f"Error of {stage} when it failed or was skipped."),
        Column(f"{stage}_seconds", "Float64", f"Wall time of {stage} for this video, seconds."),
    ]


COLUMNS: list[Column] = [
    Column("video_key", "string", "Partition key (stable, unique, derived from the file name)."),
    Column("file_name", "string", "Source file name."),
    Column("source_path", "string", "Absolute path of the source video."),
    Column("status", "string", "ok (every stage ran), failed (a data error in a stage), partial (stages disabled "
           "or unavailable here, or a decode that fell short or hit corrupt data: see partial_reason), incomplete (stages not run yet) or source_missing (the file is "
           "gone; its results are kept)."),
    Column("error", "string", "First data error for this video, `stage: message` (system problems are not row errors)."),
    Column("partial_reason", "string", "Stages disabled or unavailable for this video, `stage: state (why); ...`, "
           "and incomplete decodes, `candidate_frames: decode: video 2.9 s of 6.0 s decoded, 5 video decoder errors`."),
    Column("separation", "string", "Vocal separation before transcription: demucs, off (switched off) or unavailable "
           "(weights not installed: the transcript used the mix)."),
    Column("duration_s", "Float64", "Container duration, seconds."),
    Column("width", "Int64", "Display width in pixels (rotation applied)."),
    Column("height", "Int64", "Display height in pixels (rotation applied)."),
    Column("rotation", "Int64", "Clockwise display rotation in degrees (0, 90, 180, 270)."),
    Column("avg_frame_rate", "Float64", "Average frame rate (frames / duration)."),
    Column("nominal_frame_rate", "Float64", "Nominal (container) frame rate."),
    Column("variable_frame_rate", "boolean", "Average and nominal frame rates differ by more than 1 %."),
    Column("frame_count", "Int64", "Number of video frames (as the container declares)."),
    Column("decoded_seconds", "Float64", "Video seconds actually decoded (end of the last decoded frame)."),
    Column("decode_errors", "Int64", "Corrupt packets skipped and errors FFmpeg reported decoding video and audio."),
    Column("video_codec", "string", "Video codec name (FFmpeg)."),
    Column("pixel_format", "string", "Pixel format (FFmpeg)."),
    Column("bit_rate", "Int64", "Overall bit rate, bits per second."),
    Column("file_size_bytes", "Int64", "File size in bytes."),
    Column("has_audio", "boolean", "The file has an audio stream."),
    Column("audio_codec", "string", "Audio codec name, when there is audio."),
    Column("sample_rate", "Int64", "Source audio sample rate, Hz."),
    Column("channels", "Int64", "Source audio channels (first audio track)."),
    Column("audio_track", "Int64", "Audio track used, 0-based: of several, the one with the most speech, else the "
           "loudest."),
    Column("audio_track_count", "Int64", "Audio tracks in the file."),
    Column("audio_rms_dbfs", "Float64", "Loudness of the 16 kHz mono track, RMS dBFS."),
    Column("speech_segment_count", "Int64", "Number of voice-activity segments."),
    Column("speech_seconds", "Float64", "Total duration of voice-activity segments, seconds."),
    Column("speech_segments", "string", "Voice-activity segments as JSON [[start, end, confidence], ...]."),
    Column("candidate_frame_count", "Int64", "Candidate frames extracted (I-frames, 1/s, speech highlights)."),
    Column("kept_frame_count", "Int64", "Frames kept after filtering."),
    Column("dropped_black_count", "Int64", "Frames dropped as black."),
    Column("dropped_blur_count", "Int64", "Frames dropped as blurred (relative to the video)."),
    Column("dropped_duplicate_count", "Int64", "Frames dropped as near-duplicates (SSIM above threshold)."),
    Column("kept_frame_timestamps", "string", "Timestamps of kept frames as a JSON list, seconds."),
    # frames: content box and shots (candidate_frames: frames_index.json and shots.json)
    Column("content_box", "string", "Picture inside letterbox / pillarbox bars, `x,y,w,h` in display pixels."),
    Column("shot_count", "Int64", "Shots (hard cuts, fades and dissolves between them)."),
    Column("mean_shot_seconds", "Float64", "Mean shot length, seconds (duration / shots)."),
    Column("cuts_per_minute", "Float64", "Shot changes (cuts, fades, dissolves) per minute."),
    Column("has_speech", "boolean", "Whisper transcribed some speech."),
    Column("language", "string", "Spoken language (ISO 639-1) detected by Whisper, when there is speech."),
    Column("language_probability", "Float64", "Whisper's probability of that language."),
    Column("speech_text", "string", "Full transcript text (also in speech_transcription.txt)."),
    Column("word_count", "Int64", "Words in the transcript."),
    Column("speech_rate_wpm", "Float64", "Words per minute of transcribed speech time."),
    Column("speech_ratio", "Float64", "Fraction of the audio with speech (audio events; includes speech over music)."),
    Column("music_ratio", "Float64", "Fraction of the audio with music or singing (audio events)."),
    Column("silence_ratio", "Float64", "Fraction of the audio that is silence (loudness below threshold)."),
    Column("music_status", "string", "Shazam: disabled, matched, no_match, unreachable, error, or no_audio."),
    Column("music_title", "string", "Song title when Shazam matched."),
    Column("music_artist", "string", "Artist when Shazam matched."),
    Column("audio_fingerprint", "string", "Short id of the Chromaprint fingerprint: equal ids = identical soundtrack."),
    Column("objects_top", "string", "Most frequent YOLO-World objects as `label:frames;...` (frames a label is in)."),
    Column("product_frame_ratio", "Float64", "Share of kept frames with a product detection above the confidence."),
    Column("representative_frame_count", "Int64", "Representative frames picked: clamp(round(sqrt(kept)), 2, 5)."),
    Column("representative_timestamps", "string", "Timestamps of the representative frames as a JSON list, seconds."),
    Column("captions", "string", "BLIP captions of the representative frames as a JSON list."),
    Column("clip_embedding", "object", "Mean CLIP image embedding of the kept frames (list of floats).", csv=False),
    Column("video_description", "string", "Vision-language model description of the video."),
    Column("category_l1", "string", "Product category, taxonomy level 1."),
    Column("category_l2", "string", "Product category, taxonomy level 2."),
    Column("category_l3", "string", "Product category, taxonomy level 3."),
    Column("category_source", "string", "model (valid path as answered) or mapped (nearest valid path)."),
    Column("category_similarity", "Float64", "Text similarity of the model's answer to the chosen taxonomy path."),
    Column("pipeline_version", "string", "Version of tiktok-assets that produced the row."),
    Column("processed_at", "string", "When the latest stage of this video finished (UTC, ISO 8601)."),
    *[Column(name, "string", f"Model {stage} used (manifest name or folder), when it ran.")
      for name, stage in MODEL_COLUMNS.items()],
    *[c for stage in STAGES for c in _stage_columns(stage)],
]


def column_names(csv_only: bool = False) -> list[str]:
    return [c.name for c in COLUMNS if c.csv or not csv_only]


def markdown_table() -> str:
    """The schema as a Markdown table (kept in README.md; a test checks they agree)."""
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{c.name}` | {c.dtype}{'' if c.csv else ' (Parquet only)'} | {c.description} |" for c in COLUMNS]
    return "\n".join(lines)
