"""Peak memory of the model-free stages against video duration and resolution (issue #10, item 5).

    python benchmarks/bench_memory.py [--durations 60 600] [--sizes 64x64 720x1280] [--pipeline]

Generates vertical test videos (H.264 + AAC, 30 fps) with shots, a black gap, speech (espeak-ng),
speech over music and music: a 20 s unit encoded once and looped without re-encoding to each duration.
Every stage's plain library function then runs alone in a FRESH Python process, which reports its peak
RSS (``ru_maxrss``) after importing what it needs ("import") and at the end ("peak"), and the peak of
the tools it ran as subprocesses (ffmpeg, ffprobe, fpcalc). ``--pipeline`` also materializes the
model-free Dagster assets for one video in one process (``dg.materialize``, ephemeral instance).

The table shows, per stage and video, the stage's peak (the larger of the Python process and its
subprocesses) in MiB, and the ratio of the longest to the shortest duration at each size: flat
memory is a ratio near 1.0. Generated videos are kept in ``--work`` (default: a temp folder under
/tmp reused between runs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
UNIT_S = 20  # the looped unit: 5 shots, a black second, two sentences, a music bed
STAGES = ["baseline", "probe", "audio_wav", "vad_file", "audio_events", "fingerprint", "shots", "extract",
          "filter"]
LIMIT_MIB = 500
SPEECH = "Check out this new wireless headphone. The sound is amazing and the battery lasts all day."
MUSIC = ("0.25*exp(-6*mod(t,0.25))*(sin(2*PI*t*F)+0.5*sin(4*PI*t*F)+0.25*sin(6*PI*t*F))"
         .replace("F", "220*pow(2,(3*mod(floor(t*4),4)+3*eq(mod(floor(t*4),4),3))/12)"))


# --- videos ----------------------------------------------------------------------------------------


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_unit(target: Path, width: int, height: int, work: Path) -> None:
    """20 s: testsrc2 5 s, mandelbrot 5 s, smptebars 5 s (still), black 1 s, cellauto 4 s; speech at
    0.5 s (alone) and at 12 s (over the music bed that runs from 8 s), quiet noise throughout."""
    size = f"s={width}x{height}:r=30"
    scenes = [("testsrc2", 5), ("mandelbrot", 5), ("smptebars", 5), ("black", 1), ("cellauto", 4)]
    inputs: list[str] = []
    for source, seconds in scenes:
        spec = f"color=c=black:{size}:d={seconds}" if source == "black" else (
            f"{source}={size},trim=duration={seconds},setpts=PTS-STARTPTS")
        inputs += ["-f", "lavfi", "-i", spec]
    speech = work / "speech.wav"
    if not speech.exists():
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(speech), SPEECH], check=True,
                       capture_output=True)
    inputs += ["-i", str(speech), "-i", str(speech),
               "-f", "lavfi", "-i", f"aevalsrc='{MUSIC}':s=16000:d=12",
               "-f", "lavfi", "-i", f"anoisesrc=c=pink:a=0.003:r=16000:d={UNIT_S}"]
    graph = ("".join(f"[{i}:v]" for i in range(5)) + "concat=n=5:v=1:a=0,format=yuv420p[v];"
             "[5:a]aresample=16000,adelay=500|500,apad[s1];[6:a]aresample=16000,adelay=12000|12000,apad[s2];"
             "[7:a]volume=0.6,adelay=8000|8000,apad[mu];"
             f"[s1][s2][mu][8:a]amix=inputs=4:duration=longest:normalize=0,atrim=0:{UNIT_S}[a]")
    _ffmpeg(*inputs, "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset",
            "veryfast", "-crf", "23", "-g", "60", "-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-t", str(UNIT_S),
            str(target))


def make_video(work: Path, width: int, height: int, seconds: int) -> Path:
    target = work / f"memory_{width}x{height}_{seconds}s.mp4"
    if target.exists():
        return target
    unit = work / f"unit_{width}x{height}.mp4"
    if not unit.exists():
        make_unit(unit, width, height, work)
    loops = -(-seconds // UNIT_S) - 1
    _ffmpeg("-stream_loop", str(loops), "-i", str(unit), "-c", "copy", "-t", str(seconds), "-movflags",
            "+faststart", str(target))
    return target


# --- one stage in this (child) process -----------------------------------------------------------


def _peaks() -> dict[str, float]:
    return {"self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def run_stage(stage: str, video: Path, work: Path) -> dict[str, Any]:
    """Run ``stage`` on ``video``; prepared inputs (the WAV, the frames) are in ``work``."""
    wav, frames_dir, index = work / "audio.wav", work / "frames", work / "frames.json"
    info: dict[str, Any] = {}
    if stage == "baseline":  # what every stage imports: numpy, OpenCV, PyAV and the package
        import av
        import cv2  # noqa: F401
        import numpy  # noqa: F401

        import tiktok_assets.lib.media.frame_filter
        import tiktok_assets.lib.media.frames  # noqa: F401
        started = time.perf_counter()
    elif stage == "probe":
        from tiktok_assets.lib.media.probe import probe_video
        imported, started = _peaks(), time.perf_counter()
        info["frames"] = probe_video(video).frame_count
    elif stage == "audio_wav":
        from tiktok_assets.lib.audio.audio import extract_wav
        imported, started = _peaks(), time.perf_counter()
        info["audio_s"] = extract_wav(video, wav).duration_s
    elif stage == "vad_file":
        from tiktok_assets.lib.audio.vad import detect_speech
        from tiktok_assets.lib.audio.vad import speech_probabilities as _  # noqa: F401
        imported, started = _peaks(), time.perf_counter()
        segments = detect_speech(wav)  # the WAV read block by block, as the speech_segments asset does
        info["segments"] = len(segments)
        json.dump([(s.start, s.end) for s in segments], (work / "speech.json").open("w"))
    elif stage == "audio_events":
        from tiktok_assets.lib.audio.audio_events import detect_events
        imported, started = _peaks(), time.perf_counter()
        events = detect_events(wav)
        info.update(segments=len(events.segments), speech_ratio=events.speech_ratio, music_ratio=events.music_ratio)
    elif stage == "fingerprint":
        from tiktok_assets.lib.audio.music import fingerprint
        imported, started = _peaks(), time.perf_counter()
        fp = fingerprint(wav)
        info.update(items=len(fp.chromaprint), shazam_samples=fp.shazam_samples)
    elif stage == "shots":  # the shot tracker alone, fed as extract_video feeds it (every frame's luma)
        import av

        from tiktok_assets.lib.media.frames import _luma, _small_luma
        from tiktok_assets.lib.media.shots import ShotTracker
        imported, started = _peaks(), time.perf_counter()
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tracker = ShotTracker(float(stream.average_rate or 30))
            for frame in container.decode(stream):
                luma, limited = _luma(frame)
                tracker.add(float(frame.time), _small_luma(luma, limited))
        result = tracker.result()
        info.update(shots=len(result.shots), frames=len(tracker.times))
    elif stage == "extract":
        from dataclasses import asdict

        from tiktok_assets.lib.media.frames import extract_video
        imported, started = _peaks(), time.perf_counter()
        speech = json.loads((work / "speech.json").read_text()) if (work / "speech.json").exists() else []
        shutil.rmtree(frames_dir, ignore_errors=True)
        frames_dir.mkdir()
        ex = extract_video(video, frames_dir, [round((a + b) / 2, 3) for a, b in speech])
        index.write_text(json.dumps({"frames": [asdict(f) for f in ex.frames], "box": ex.content_box.to_json(),
                                     "shots": ex.shots.to_json()}))
        info.update(candidates=len(ex.frames), shots=len(ex.shots.shots))
    elif stage == "filter":
        from tiktok_assets.lib.media.bars import ContentBox
        from tiktok_assets.lib.media.frame_filter import filter_frames
        from tiktok_assets.lib.media.frames import CandidateFrame
        from tiktok_assets.lib.media.shots import ShotResult
        imported, started = _peaks(), time.perf_counter()
        data = json.loads(index.read_text())
        result = filter_frames([CandidateFrame(**f) for f in data["frames"]], frames_dir,
                               content_box=ContentBox.from_json(data["box"]),
                               shots=ShotResult.from_json(data["shots"]).shots)
        info.update(kept=len(result.kept), candidates=result.counts["candidates"])
    elif stage == "pipeline":
        imported, started = _peaks(), time.perf_counter()
        info.update(run_pipeline(video, work))
    else:
        raise SystemExit(f"unknown stage {stage}")
    if stage == "baseline":
        imported = _peaks()
    return {"stage": stage, "seconds": round(time.perf_counter() - started, 2), "import_mib": imported["self_mib"],
            **_peaks(), **info}


def run_pipeline(video: Path, work: Path) -> dict[str, Any]:
    """The model-free assets for one video in one Dagster run: metadata, WAV, voice activity, audio events,
    local music fingerprint (separation off, Shazam off), candidate frames + shots, filtered frames."""
    import dagster as dg

    from tiktok_assets.defs.assets.audio import audio_wav, speech_segments
    from tiktok_assets.defs.assets.audio_models import audio_events, audio_stems, music_recognition
    from tiktok_assets.defs.assets.frames import candidate_frames, filtered_frames
    from tiktok_assets.defs.assets.metadata import video_metadata
    from tiktok_assets.defs.model_resources import DemucsResource, MusicRecognitionResource
    from tiktok_assets.defs.partitions import VIDEOS_PARTITION
    from tiktok_assets.defs.resources import ProjectPaths
    from tiktok_assets.lib.catalogue import registry
    from tiktok_assets.lib.layout import DataLayout
    from tiktok_assets.lib.status import read_status

    data = work / "pipeline_data"
    shutil.rmtree(data, ignore_errors=True)
    layout = DataLayout(data)
    layout.videos_dir.mkdir(parents=True)
    source = layout.videos_dir / video.name
    os.link(video, source) if video.stat().st_dev == work.stat().st_dev else shutil.copy(video, source)
    key = registry.register(layout, source).key
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VIDEOS_PARTITION, [key])
    stages = [video_metadata, audio_wav, speech_segments, audio_events, audio_stems, music_recognition,
              candidate_frames, filtered_frames]  # audio_stems switched off: the fingerprint reads the mix
    result = dg.materialize(stages, instance=instance, partition_key=key, raise_on_error=False,
                            resources={"paths": ProjectPaths(data_dir=str(data)),
                                       "music_recognition": MusicRecognitionResource(),
                                       "demucs": DemucsResource(enabled=False)})
    statuses = {s.key.to_user_string(): getattr(read_status(layout.video(key), s.key.to_user_string()), "status", None)
                for s in stages}
    return {"success": result.success, "statuses": statuses}


# --- the parent: one fresh process per stage and video -------------------------------------------


def measure(stage: str, video: Path, work: Path) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, __file__, "--child", stage, "--video", str(video), "--work", str(work)],
                          check=False, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"{stage} on {video.name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1])
    if proc.returncode != 0:  # measured, then died at interpreter exit (seen with shazamio_core: SIGABRT)
        result["exit_code"] = proc.returncode
    # The tools a stage runs (ffmpeg, ffprobe, fpcalc) are separate processes: the stage's peak is the larger
    # of the two. Not for the Dagster run: its subprocesses are forked from a large process, and a forked
    # child's ru_maxrss starts at its parent's RSS, so only the run's own process counts there.
    big = stage.startswith("pipeline")
    result["peak_mib"] = result["self_mib"] if big else max(result["self_mib"], result["children_mib"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--durations", type=int, nargs="+", default=[60, 600])
    parser.add_argument("--sizes", nargs="+", default=["64x64", "720x1280"])
    parser.add_argument("--stages", nargs="+", default=STAGES)
    parser.add_argument("--pipeline", action="store_true", help="also the model-free Dagster assets in one run")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tiktok_bench_memory")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_stage(args.child, args.video, args.work)), flush=True)
        return

    args.work.mkdir(parents=True, exist_ok=True)
    stages = args.stages + (["pipeline"] if args.pipeline else [])
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for size in args.sizes:
        width, height = (int(x) for x in size.split("x"))
        for seconds in args.durations:
            video = make_video(args.work, width, height, seconds)
            work = args.work / video.stem
            work.mkdir(exist_ok=True)
            for stage in stages:
                r = measure(stage, video, work)
                rows[(stage, size, seconds)] = r
                extra = {k: v for k, v in r.items()
                         if k not in ("stage", "import_mib", "self_mib", "children_mib", "peak_mib")}
                print(f"{size:>9} {seconds:>4} s  {stage:<13} peak {r['peak_mib']:7.0f} MiB  (python {r['self_mib']:.0f}, "
                      f"after import {r['import_mib']:.0f}, subprocesses {r['children_mib']:.0f})  {extra}",
                      flush=True)
    print_table(rows, stages, args.sizes, args.durations)
    if args.json:
        args.json.write_text(json.dumps([{"stage": k[0], "size": k[1], "duration_s": k[2], **v}
                                         for k, v in rows.items()], indent=1))


def _label(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def print_table(rows: dict[tuple[str, str, int], dict[str, Any]], stages: list[str], sizes: list[str],
                durations: list[int]) -> None:
    """Markdown: peak MiB per stage and video, then per size the ratio of each longer duration to the shortest."""
    short = min(durations)
    longer = [d for d in durations if d != short]
    header = ["stage"] + [f"{s} {_label(d)}" for s in sizes for d in durations]
    header += [f"{s} {_label(d)} / {_label(short)}" for s in sizes for d in longer]
    print()
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    worst = 0.0
    for stage in stages:
        cells = [stage]
        for size in sizes:
            for d in durations:
                peak = rows[(stage, size, d)]["peak_mib"]
                worst = worst if stage.startswith("pipeline") else max(worst, peak)
                cells.append(f"{peak:.0f}")
        cells += [f"{rows[(stage, s, d)]['peak_mib'] / rows[(stage, s, short)]['peak_mib']:.2f}"
                  for s in sizes for d in longer]
        print("| " + " | ".join(cells) + " |")
    print(f"\nlargest stage peak: {worst:.0f} MiB (limit {LIMIT_MIB} MiB). Peak = max(Python process, the tools it "
          "ran), each stage in a fresh process; pipeline = the Dagster run's own process.")


if __name__ == "__main__":
    main()
