"""The feature table's schema: one row per video. The single source for the Parquet schema (declared,
never inferred from the rows), the CSV's types, the README table, the Dagster column schema and the
validation check.

Scalar columns are ``string``, ``int64``, ``float64`` or ``bool`` (pandas: ``string``, ``Int64``,
``Float64``, ``boolean``); lists and records are Arrow list / struct columns in Parquet and JSON text in
the CSV (which has no lists). A missing value is null everywhere (pandas ``<NA>``); a string column never
holds ``""`` and an empty list means "ran, found nothing".
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

# The width of the mean CLIP embedding. Declared, not taken from the rows, so the Parquet schema is the
# same when no video has an embedding yet: 512 is CLIP ViT-B-32's width, the model the project ships, and
# the width YOLO-World's class prompts need from the same text encoder (see DESIGN.md). A CLIP model of
# another width is refused when the table is built (the row says so).
CLIP_EMBEDDING_DIM = 512

SCALAR_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(), "Int64": pa.int64(), "Float64": pa.float64(), "boolean": pa.bool_(),
}
SPEECH_SEGMENT = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("confidence", pa.float64())])
OBJECT_COUNT = pa.struct([("label", pa.string()), ("frames", pa.int64())])
BOX = pa.struct([("x", pa.int64()), ("y", pa.int64()), ("w", pa.int64()), ("h", pa.int64())])
SECONDS_LIST = pa.list_(pa.float64())
EMBEDDING = pa.list_(pa.float32(), CLIP_EMBEDDING_DIM)


def type_name(arrow_type: pa.DataType) -> str:
    """A short, exact name: ``float64``, ``list<float64>``, ``struct<x: int64, ...>``,
    ``fixed_size_list<float32, 512>``."""
    if pa.types.is_fixed_size_list(arrow_type):
        return f"fixed_size_list<{type_name(arrow_type.value_type)}, {arrow_type.list_size}>"
    if pa.types.is_list(arrow_type):
        return f"list<{type_name(arrow_type.value_type)}>"
    if pa.types.is_struct(arrow_type):
        return "struct<" + ", ".join(f"{f.name}: {type_name(f.type)}" for f in arrow_type) + ">"
    return {"double": "float64", "float": "float32"}.get(str(arrow_type), str(arrow_type))


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str | pa.DataType  # a scalar's pandas dtype (string, Int64, Float64, boolean), or a list/struct type
    description: str
    csv: bool = True  # False: Parquet only (e.g. embeddings)

    @property
    def nested(self) -> bool:
        """A list or struct: Arrow-typed in Parquet, JSON text in the CSV."""
        return isinstance(self.dtype, pa.DataType)

    @property
    def arrow_type(self) -> pa.DataType:
        return self.dtype if isinstance(self.dtype, pa.DataType) else SCALAR_TYPES[self.dtype]

    @property
    def pandas_dtype(self) -> str | pd.ArrowDtype:
        return pd.ArrowDtype(self.dtype) if isinstance(self.dtype, pa.DataType) else self.dtype

    @property
    def type_name(self) -> str:
        return type_name(self.arrow_type)


STAGES: list[str] = [
    "video_metadata", "audio_wav", "speech_segments", "candidate_frames", "filtered_frames",
    "audio_stems", "transcript", "audio_events", "music_recognition", "audio_analysis",
    "frame_objects", "representative_frames", "frame_features", "onscreen_text", "video_understanding",
    "video_similarity",
]


# Provenance: which model produced a stage's values (read from that stage's status record).
MODEL_COLUMNS: dict[str, str] = {
    "whisper_model": "transcript",
    "separator_model": "audio_stems",
    "clip_model": "representative_frames",
    "detector_model": "frame_objects",
    "captioner_model": "frame_features",
    "ocr_model": "onscreen_text",
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
    Column("separation", "string", "Vocal separation before transcription: on (the transcript used the vocals stem; "
           "separator_model names the model), off (switched off) or unavailable (weights not installed: the "
           "transcript used the mix)."),
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
    Column("speech_segments", pa.list_(SPEECH_SEGMENT), "Voice-activity segments, seconds, with the VAD's "
           "confidence."),
    Column("candidate_frame_count", "Int64", "Candidate frames extracted (I-frames, 1/s, speech highlights)."),
    Column("kept_frame_count", "Int64", "Frames kept after filtering."),
    Column("dropped_black_count", "Int64", "Frames dropped as black."),
    Column("dropped_blur_count", "Int64", "Frames dropped as blurred (relative to the video)."),
    Column("dropped_duplicate_count", "Int64", "Frames dropped as near-duplicates (SSIM above threshold)."),
    Column("kept_frame_timestamps", SECONDS_LIST, "Timestamps of the kept frames, seconds."),
    # frames: content box and shots (candidate_frames: frames_index.json and shots.json)
    Column("content_box", BOX, "Picture inside letterbox / pillarbox bars, in display pixels."),
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
    Column("objects_top", pa.list_(OBJECT_COUNT), "Most frequent detected objects (up to 5) with the number "
           "of kept frames each label is in."),
    Column("product_frame_ratio", "Float64", "Share of kept frames with a product detection above the confidence."),
    Column("representative_frame_count", "Int64", "Representative frames picked: clamp(round(sqrt(kept)), 2, 5)."),
    Column("representative_timestamps", SECONDS_LIST, "Timestamps of the representative frames, seconds."),
    Column("captions", pa.list_(pa.string()), "BLIP captions of the representative frames, in time order."),
    Column("ocr_text", "string", "On-screen text read by OCR (RapidOCR PP-OCRv4) on the filtered frames: each "
           "caption once (the same text over consecutive frames merged), in time order, joined by ` | `; null "
           "when none was read."),
    Column("ocr_line_count", "Int64", "On-screen text lines after merging (0: OCR ran and read no text)."),
    Column("clip_embedding", EMBEDDING, "Mean CLIP image embedding of the kept frames (CLIP ViT-B-32 width; "
           "DuckDB reads it as FLOAT[]).", csv=False),
    Column("duplicate_group", "string", "Near-duplicate / re-upload group (video_similarity: matching frame "
           "hashes, or the same soundtrack with partly matching frames or CLIP): the key of the group's first "
           "video; the video's own key when it has no duplicate; null when the stage has not run."),
    Column("video_description", "string", "Vision-language model description of the video."),
    Column("category_l1", "string", "Product category, taxonomy level 1."),
    Column("category_l2", "string", "Product category, taxonomy level 2."),
    Column("category_l3", "string", "Product category, taxonomy level 3."),
    Column("category_source", "string", "model (valid path as answered) or mapped (nearest valid path)."),
    Column("category_similarity", "Float64", "Text similarity of the model's answer to the chosen taxonomy path."),
    Column("content_type", "string", "Kind of video (review, unboxing, tutorial, ad, vlog, ...): a value of "
           "tiktok_assets/data/content_labels.yaml, the model's answer kept or mapped from a synonym; null when the "
           "VLM did not run or its answer fits no value."),
    Column("target_audience", "string", "Whom the video addresses (women, teens, parents, ...): a value of "
           "tiktok_assets/data/content_labels.yaml, kept or mapped as content_type; null when not run or not answered."),
    Column("pipeline_version", "string", "Version of tiktok-assets that produced the row."),
    Column("processed_at", "string", "When the latest stage of this video finished (UTC, ISO 8601)."),
    *[Column(name, "string", f"Model {stage} used (manifest name or folder), when it ran.")
      for name, stage in MODEL_COLUMNS.items()],
    *[c for stage in STAGES for c in _stage_columns(stage)],
]


REQUIRED = ("video_key", "status")  # never null
UNIQUE = "video_key"


def column_names(csv_only: bool = False) -> list[str]:
    return [c.name for c in COLUMNS if c.csv or not csv_only]


def arrow_schema(csv_only: bool = False) -> pa.Schema:
    """The table's declared Arrow schema: what the Parquet file always holds, whatever the rows."""
    return pa.schema([pa.field(c.name, c.arrow_type, nullable=True) for c in COLUMNS if c.csv or not csv_only])


def _where(column: Column) -> str:
    if not column.csv:
        return " (Parquet only)"
    return " (JSON in the CSV)" if column.nested else ""


def _cell(text: str) -> str:
    """``text`` in a Markdown table cell: a ``|`` is escaped (in a code span too, as GitHub reads tables)."""
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The schema as a Markdown table (kept in README.md; a test checks they agree)."""
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{c.name}` | `{c.type_name}`{_where(c)} | {_cell(c.description)} |" for c in COLUMNS]
    return "\n".join(lines)
