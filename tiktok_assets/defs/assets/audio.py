"""audio_wav and speech_segments: the 16 kHz mono track and where people speak in it."""


import csv
import io
from collections.abc import Iterator
from dataclasses import asdict

import dagster as dg

from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.video_stage import StageEvent, run_partitions, video_stage
from tiktok_assets.lib import atomic
from tiktok_assets.lib.audio.audio import extract_wav
from tiktok_assets.lib.audio.vad import VadConfig, detect_speech
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.media.decode_integrity import decode_warning
from tiktok_assets.lib.status import NO_AUDIO


class VadSettings(dg.Config):
    threshold: float = 0.5
    min_speech_s: float = 0.25
    min_silence_s: float = 0.5
    pad_s: float = 0.1


def _has_audio(video: VideoLayout) -> bool:
    return bool(atomic.read_json(video.metadata_json).get("has_audio"))


def has_audio_track(video: VideoLayout) -> bool:
    """audio_wav extracted a track for this video (the one check every audio stage uses)."""
    return video.audio_json.exists() and bool(atomic.read_json(video.audio_json).get("has_audio"))


@video_stage(
    "audio_wav",
    group="audio",
    deps=["video_metadata"],
    kinds={"ffmpeg", "wav"},
    description="The audio track as 16 kHz mono 16-bit PCM WAV: of several tracks, the one with the most "
    "speech (else the loudest). A video without audio is recorded as such (status no_audio), not as an error.",
)
def audio_wav(context: dg.AssetExecutionContext, paths: ProjectPaths) -> Iterator[StageEvent]:
    layout = paths.layout()

    def extract(key: str, video: VideoLayout) -> dict:
        if not _has_audio(video):
            video.audio_wav.unlink(missing_ok=True)
            atomic.write_json(video.audio_json, {"has_audio": False})
            return {"status": NO_AUDIO, "has_audio": False}
        meta = atomic.read_json(video.metadata_json)
        info = extract_wav(meta["source_path"], video.audio_wav, track_count=meta.get("audio_track_count", 1))
        atomic.write_json(video.audio_json, {"has_audio": True, **asdict(info)})
        declared = (meta.get("audio_durations_s") or [None] * info.track_count)[info.track]
        return {"warning": decode_warning("audio", info.duration_s, declared, info.decode_errors),
                "has_audio": True, "duration_s": info.duration_s, "rms_dbfs": info.rms_dbfs,
                "track": f"{info.track + 1} of {info.track_count}", "decode_errors": info.decode_errors,
                "path": dg.MetadataValue.path(info.path)}

    yield from run_partitions(context, layout, "audio_wav", extract)


@video_stage(
    "speech_segments",
    group="audio",
    deps=["audio_wav"],
    kinds={"onnx", "json"},
    description="Voice activity (Silero VAD, ONNX): speech segments as (start, end, confidence).",
)
def speech_segments(
    context: dg.AssetExecutionContext, paths: ProjectPaths, config: VadSettings
) -> Iterator[StageEvent]:
    layout = paths.layout()
    vad = VadConfig(config.threshold, config.min_speech_s, config.min_silence_s, config.pad_s)

    def detect(key: str, video: VideoLayout) -> dict:
        if not has_audio_track(video):
            segments = []
            has_audio = False
        else:
            segments = detect_speech(video.audio_wav, vad)  # read in blocks: memory flat in duration
            has_audio = True
        rows = [asdict(s) for s in segments]
        atomic.write_json(video.speech_segments_json, {"has_audio": has_audio, "config": asdict(vad),
                                                       "segments": rows})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["start", "end", "confidence"])
        writer.writeheader()
        writer.writerows(rows)
        atomic.write_text(video.speech_segments_csv, buf.getvalue())
        return {"status": "ok" if has_audio else NO_AUDIO, "segments": len(segments),
                "speech_seconds": round(sum(s.duration for s in segments), 2),
                "segments_json": dg.MetadataValue.json(rows)}

    yield from run_partitions(context, layout, "speech_segments", detect)
