"""Sample vertical clips generated with FFmpeg and espeak-ng, with their ground truth.

Used by `tiktok-assets demo`, the benchmark and the tests. Every clip is H.264 (+ AAC where it has
sound). The ground truth written to ``samples.json`` is derived from how each clip is built; speech
intervals are measured on the espeak-ng output itself (not typed in), then offset by their delay.

Two sets: the *pattern* clips (FFmpeg test sources: black lead-in, still, blurred and soft shots,
cuts, music; what the frame, shot and audio tests measure) and the *photo* clips (real photographs
that ship with installed packages, slowly zoomed, with a narration naming what is shown; each
segment lists the COCO objects visible in it, so a real detector's output can be checked).
"""

from __future__ import annotations

import importlib.util
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.audio.audio import load_wav

SPEECH_EN = "Check out this new wireless headphone. The sound is amazing and the battery lasts all day."
SPEECH_EN_SHORT = "This serum makes your skin glow in one week."
MUSIC_EXPR = (
    # A minor arpeggio with harmonics and a decaying envelope on every 0.25 s note: music-like.
    "0.25*exp(-6*mod(t,0.25))*(sin(2*PI*t*F)+0.5*sin(4*PI*t*F)+0.25*sin(6*PI*t*F))"
)
ARPEGGIO = "220*pow(2,(3*mod(floor(t*4),4)+3*eq(mod(floor(t*4),4),3))/12)"


@dataclass
class Segment:
    start: float
    end: float
    kind: str  # black | still | moving | blurred | soft | photo
    source: str  # an FFmpeg lavfi source, or for a photo `package/path/in/package` (see photo_file)
    objects: list[str] = field(default_factory=list)  # COCO classes visible in the segment (photos)


@dataclass
class SampleClip:
    name: str
    width: int
    height: int
    fps: int
    duration: float
    has_audio: bool
    segments: list[Segment]
    cuts: list[float]
    speech: list[tuple[float, float]] = field(default_factory=list)
    speech_text: str = ""
    music: list[tuple[float, float]] = field(default_factory=list)


def photo_file(source: str) -> Path:
    """The file a photo segment shows: ``package/path`` inside that installed package, found without
    importing it (``skimage/data/coffee.png``, ``ultralytics/assets/bus.jpg``)."""
    package, _, relative = source.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"photo {source}: the package {package!r} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"photo {source}: no {relative} in {path.parent}")
    return path


def missing_photos(clip: SampleClip) -> list[str]:
    """The clip's photo sources whose package is not installed (the photos come with scikit-image, a
    `dev` extra, and ultralytics, a `vision` extra)."""
    missing = []
    for seg in clip.segments:
        if seg.kind == "photo":
            try:
                photo_file(seg.source)
            except FileNotFoundError:
                missing.append(seg.source)
    return missing


def _input(seg: Segment, w: int, h: int, fps: int, d: float) -> list[str]:
    if seg.kind == "photo":
        return ["-loop", "1", "-framerate", str(fps), "-t", str(d), "-i", str(photo_file(seg.source))]
    size = f"s={w}x{h}:r={fps}"
    if seg.source == "black":
        return ["-f", "lavfi", "-i", f"color=c=black:{size}:d={d}"]
    return ["-f", "lavfi", "-i", f"{seg.source}={size},trim=duration={d},setpts=PTS-STARTPTS"]


def _filter(seg: Segment, w: int, h: int, fps: int, d: float) -> str:
    if seg.kind == "photo":
        # The whole photo fitted into the frame (bars where the aspect differs), zooming in 10 %
        # about its centre over the segment: a moving shot, as a phone pans over a product.
        frames = round(d * fps)
        return (f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,"
                f"zoompan=z='1+0.1*on/{frames}':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1:"
                f"s={w}x{h}:fps={fps}")
    return {"blurred": "gblur=sigma=25", "soft": "gblur=sigma=3"}.get(seg.kind, "null")


def _speech_wav(text: str, target: Path, voice: str = "en-us", rate: int = 150) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(target), text], check=True,
                   capture_output=True)


def speech_intervals(wav16k: Path, gap_s: float = 0.35, floor_db: float = -35.0) -> list[tuple[float, float]]:
    """Non-silent intervals of a 16 kHz mono WAV: 20 ms frames above ``floor_db`` relative to peak."""
    samples = load_wav(wav16k)
    hop = 320
    n = samples.size // hop
    frames = samples[: n * hop].reshape(n, hop)
    rms = np.sqrt(np.mean(frames**2, axis=1)) + 1e-9
    active = 20 * np.log10(rms / rms.max()) > floor_db
    intervals: list[tuple[float, float]] = []
    for i in np.flatnonzero(active):
        t0, t1 = i * hop / 16000, (i + 1) * hop / 16000
        if intervals and t0 - intervals[-1][1] <= gap_s:
            intervals[-1] = (intervals[-1][0], t1)
        else:
            intervals.append((t0, t1))
    return [(round(float(a), 2), round(float(b), 2)) for a, b in intervals]


def _to_16k(src: Path, dst: Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-ac", "1", "-ar", "16000",
                    "-c:a", "pcm_s16le", str(dst)], check=True)


def _build(clip: SampleClip, out: Path, speech_delay: float | None, music: bool, work: Path,
           voice: str = "en-us") -> SampleClip:
    """Write ``clip`` to ``out``; with a speech delay, its ``speech_text`` (else SPEECH_EN) is spoken."""
    w, h, fps = clip.width, clip.height, clip.fps
    inputs: list[str] = []
    chains: list[str] = []
    for i, seg in enumerate(clip.segments):
        d = round(seg.end - seg.start, 3)
        inputs += _input(seg, w, h, fps, d)
        chains.append(f"[{i}:v]{_filter(seg, w, h, fps, d)},setsar=1[v{i}]")
    n = len(clip.segments)
    graph = ";".join(chains) + ";" + "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0,format=yuv420p[v]"
    audio_maps: list[str] = []
    if clip.has_audio:
        mix: list[str] = []
        idx = n
        if speech_delay is not None:
            speech_text = clip.speech_text or SPEECH_EN
            raw = work / f"{clip.name}_speech.wav"
            _speech_wav(speech_text, raw, voice=voice)
            speech16 = work / f"{clip.name}_speech16k.wav"
            _to_16k(raw, speech16)
            clip.speech = [(round(float(a) + speech_delay, 2), round(float(b) + speech_delay, 2))
                           for a, b in speech_intervals(speech16)]
            clip.speech_text = speech_text
            inputs += ["-i", str(speech16)]
            ms = int(speech_delay * 1000)
            graph += f";[{idx}:a]adelay={ms}|{ms},apad[sp]"
            mix.append("[sp]")
            idx += 1
        if music:
            inputs += ["-f", "lavfi", "-i", f"aevalsrc='{MUSIC_EXPR.replace('F', ARPEGGIO)}':s=16000:d={clip.duration}"]
            graph += f";[{idx}:a]volume=0.8[mu]"
            mix.append("[mu]")
            clip.music = [(0.0, clip.duration)]
            idx += 1
        else:  # a quiet 150 Hz hum so the track is never digital silence
            inputs += ["-f", "lavfi", "-i", f"sine=f=150:d={clip.duration}:sample_rate=16000"]
            graph += f";[{idx}:a]volume=0.01[mu]"
            mix.append("[mu]")
            idx += 1
        graph += f";{''.join(mix)}amix=inputs={len(mix)}:duration=longest:normalize=0,atrim=0:{clip.duration}[a]"
        audio_maps = ["-map", "[a]", "-c:a", "aac", "-b:a", "128k", "-ar", "44100"]
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]",
           *audio_maps, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-t", str(clip.duration),
           "-movflags", "+faststart", str(out)]
    with atomic.atomic_path(out) as tmp:
        subprocess.run([*cmd[:-1], "-f", "mp4", str(tmp)], check=True, capture_output=True)
    return clip


def _seg(start: float, end: float, kind: str, source: str, objects: list[str] | None = None) -> Segment:
    return Segment(start, end, kind, source, objects or [])


def pattern_specs() -> list[tuple[SampleClip, float | None, bool]]:
    """(clip, speech delay or None, music bed?) for the clips made of FFmpeg test patterns."""
    return [
        (SampleClip("product_talk", 1080, 1920, 30, 12.0, True,
                    [_seg(0, 2, "black", "black"), _seg(2, 5, "still", "smptebars"),
                     _seg(5, 8, "moving", "testsrc2"), _seg(8, 12, "moving", "mandelbrot")],
                    cuts=[2.0, 5.0, 8.0]), 2.5, False),
        (SampleClip("blur_and_cuts", 720, 1280, 25, 9.0, True,
                    [_seg(0, 3, "moving", "testsrc2"), _seg(3, 6, "blurred", "testsrc2"),
                     _seg(6, 9, "moving", "mandelbrot")], cuts=[3.0, 6.0]), None, True),
        (SampleClip("soft_focus_speech", 720, 1280, 30, 8.0, True,
                    [_seg(0, 8, "soft", "testsrc2")], cuts=[]), 1.0, False),
        (SampleClip("silent_cuts", 1080, 1920, 24, 6.0, False,
                    [_seg(0, 2, "moving", "testsrc2"), _seg(2, 4, "still", "smptehdbars"),
                     _seg(4, 6, "moving", "mandelbrot")], cuts=[2.0, 4.0]), None, False),
        (SampleClip("speech_over_music", 720, 1280, 30, 10.0, True,
                    [_seg(0, 5, "moving", "testsrc2"), _seg(5, 10, "moving", "rgbtestsrc")],
                    cuts=[5.0]), 2.0, True),
    ]


def photo_specs() -> list[tuple[SampleClip, float | None, bool]]:
    """(clip, speech delay, music bed?) for the clips made of real photographs: scikit-image's CC0 /
    public-domain coffee, chelsea, astronaut and rocket, the Middlebury 2014 motorcycle, ultralytics'
    bus.jpg. ``objects``: the COCO classes really in the photo that YOLO11n finds in every second of
    the clip at >= 0.5 confidence (COCO has no rocket: that shot has none)."""

    def photo(name: str, segments: list[Segment], cuts: list[float], text: str) -> SampleClip:
        return SampleClip(name, 720, 1280, 30, 6.0, True, segments, cuts=cuts, speech_text=text)

    return [
        (photo("coffee_review", [_seg(0, 6, "photo", "skimage/data/coffee.png", ["cup", "dining table"])], [],
               "This coffee cup is my favorite. The crema looks perfect."), 0.5, False),
        (photo("cat_vlog", [_seg(0, 6, "photo", "skimage/data/chelsea.png", ["cat"])], [],
               "Meet my cat Chelsea. She is a lazy cat who sleeps all day."), 0.5, False),
        (photo("bus_tour", [_seg(0, 6, "photo", "ultralytics/assets/bus.jpg", ["bus", "person"])], [],
               "People walk past a city bus. Our tour begins here."), 0.5, False),
        (photo("space_launch", [_seg(0, 3, "photo", "skimage/data/astronaut.png", ["person"]),
                                _seg(3, 6, "photo", "skimage/data/rocket.jpg")], [3.0],
               "An astronaut gets ready for her mission. Then the rocket launches."), 0.5, False),
        (photo("motorcycle_ride", [_seg(0, 6, "photo", "skimage/data/motorcycle_left.png", ["motorcycle"])],
               [], "This red motorcycle is parked in the garage, ready for a ride."), 0.5, False),
    ]


def sample_specs() -> list[tuple[SampleClip, float | None, bool]]:
    """(clip, speech delay or None, music bed?) for every sample clip: the patterns, then the photos."""
    return pattern_specs() + photo_specs()


def generate_samples(out_dir: str | Path, names: list[str] | None = None) -> list[SampleClip]:
    """Write the sample clips (and ``samples.json`` with their ground truth) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    with tempfile.TemporaryDirectory() as work:
        for clip, delay, music in sample_specs():
            if names and clip.name not in names:
                continue
            clips.append(_build(clip, out_dir / f"{clip.name}.mp4", delay, music, Path(work)))
    atomic.write_json(out_dir / "samples.json", [asdict(c) for c in clips])
    return clips


def make_clip(out: str | Path, *, width: int = 720, height: int = 1280, fps: int = 30, duration: float = 6.0,
              source: str = "testsrc2", speech_text: str | None = None, voice: str = "en-us",
              speech_delay: float = 0.5, music: bool = False, has_audio: bool = True) -> SampleClip:
    """One ad-hoc clip (tests use it for other languages, sizes and audio mixes). ``source``: an FFmpeg lavfi
    source, or a photo as ``package/path`` (see :func:`photo_file`), slowly zoomed."""
    out = Path(out)
    kind = "photo" if "/" in source else "moving"
    clip = SampleClip(out.stem, width, height, fps, duration, has_audio,
                      [_seg(0, duration, kind, source)], cuts=[], speech_text=speech_text or "")
    with tempfile.TemporaryDirectory() as work:
        return _build(clip, out, speech_delay if speech_text else None, music, Path(work), voice=voice)
