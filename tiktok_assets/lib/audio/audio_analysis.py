"""One video's audio results: ``audio_analysis_results.json``, the transcript files, the events CSV
and the feature-table columns. Every part may be missing (a video without audio track, a stage that
failed): the missing parts are ``None`` and the columns take their empty values.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tiktok_assets.lib import atomic
from tiktok_assets.lib.audio.audio_events import CSV_FIELDS, AudioEvents
from tiktok_assets.lib.models.whisper import Transcript

SCHEMA_VERSION = 1
SEGMENT_FIELDS = ("start", "end", "text", "avg_logprob", "no_speech_prob")
FEATURE_COLUMNS = (
    "has_speech",
    "language",
    "speech_text",
    "word_count",
    "speech_rate_wpm",
    "speech_ratio",
    "music_ratio",
    "music_title",
    "music_artist",
    "music_status",
    "audio_fingerprint",
)


def build_audio_analysis(
    transcript: dict[str, Any] | None,
    events: dict[str, Any] | None,
    music: dict[str, Any] | None,
    fingerprint: dict[str, Any] | None,
    stems: dict[str, Any] | None = None,
    has_audio: bool = True,
) -> dict[str, Any]:
    """The ``audio_analysis_results.json`` document from each stage's saved JSON result (``to_json()``
    of :class:`Transcript`, :class:`AudioEvents`, :class:`MusicMatch`, :class:`Fingerprint`,
    :class:`Stems`); None for a stage that produced nothing for this video."""
    duration = next((x["duration_s"] for x in (events, transcript, fingerprint) if x and x.get("duration_s")), 0.0)
    analysis: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "has_audio": has_audio,
        "duration_s": duration,
        "transcript": transcript,
        "events": events,
        "music": music,
        "fingerprint": fingerprint,
        "stems": stems,
    }
    analysis["features"] = feature_columns(analysis)
    return analysis


def feature_columns(analysis: dict[str, Any] | None) -> dict[str, Any]:
    """Feature-table columns from an ``audio_analysis_results.json`` document (or ``None``)."""
    analysis = analysis or {}
    transcript = analysis.get("transcript") or {}
    events = analysis.get("events") or {}
    music = analysis.get("music") or {}
    fingerprint = analysis.get("fingerprint") or {}
    text = (transcript.get("text") or "").strip()
    return {
        "has_speech": bool(text),
        "language": transcript.get("language") if text else None,
        "speech_text": text,
        "word_count": int(transcript.get("word_count") or 0),
        "speech_rate_wpm": float(transcript.get("speech_rate_wpm") or 0.0),
        "speech_ratio": float(events.get("speech_ratio") or 0.0),
        "music_ratio": float(events.get("music_ratio") or 0.0),
        "music_title": music.get("title"),
        "music_artist": music.get("artist"),
        "music_status": music.get("status") or ("no_audio" if analysis.get("has_audio") is False else None),
        "audio_fingerprint": fingerprint.get("id") or "",
    }


def write_analysis(path: str | Path, analysis: dict[str, Any]) -> None:
    atomic.write_json(path, analysis)


def write_transcript_txt(path: str | Path, transcript: Transcript | None) -> None:
    """``speech_transcription.txt``: the text, one segment a line; written (empty) even without speech."""
    lines = [s.text for s in transcript.segments if s.text] if transcript else []
    atomic.write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def write_segments_csv(path: str | Path, transcript: Transcript | None) -> None:
    """Transcript segments CSV (header only without speech)."""
    rows = [{k: getattr(s, k) for k in SEGMENT_FIELDS} for s in transcript.segments] if transcript else []
    _write_csv(path, SEGMENT_FIELDS, rows)


def write_events_csv(path: str | Path, events: AudioEvents | None) -> None:
    """``audio_events.csv``: start, end, label, confidence (header only without audio)."""
    _write_csv(path, CSV_FIELDS, events.csv_rows() if events else [])


def _write_csv(path: str | Path, fields: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, buf.getvalue())
