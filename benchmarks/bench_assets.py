"""Overhead of the Dagster assets over bare model calls on the same inputs, in the same run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_assets.py [--videos 4] [--whisper base]

1. transcript asset (one multi-partition run over N videos, real packaged Whisper weights, cpu
   preset: int8, beam 5, VAD, word timestamps) vs bare ``faster_whisper.WhisperModel.transcribe``
   on the same 16 kHz WAVs, consuming every segment. Model load excluded from both.
2. vision assets (frame_objects + representative_frames + frame_features in one run) vs the same
   model calls made directly (YOLO-World detect, CLIP encode_images, BLIP caption on the same frames;
   the wrappers' own overhead over the libraries is measured in bench_vision.py). Tiny random
   models (no real weights offline): the model time is tiny, so the ratio here is an upper bound of
   what real models see; the absolute per-run cost in seconds is the figure that carries over.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg

from tiktok_assets.defs.assets.audio import audio_wav, speech_segments
from tiktok_assets.defs.assets.audio_models import audio_stems, transcript
from tiktok_assets.defs.assets.frames import candidate_frames, filtered_frames
from tiktok_assets.defs.assets.metadata import video_metadata
from tiktok_assets.defs.assets.vision import (
    frame_features,
    frame_objects,
    representative_frames,
)
from tiktok_assets.defs.model_resources import (
    BlipResource,
    ClipResource,
    DemucsResource,
    WhisperResource,
    YoloWorldResource,
)
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.resources import CatalogueResource, ProjectPaths
from tiktok_assets.lib import atomic
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.samples import generate_samples

RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
CLIPS = ["product_talk", "soft_focus_speech", "speech_over_music", "blur_and_cuts"]


def materialize(assets, instance, keys, resources) -> float:
    started = time.perf_counter()
    result = dg.materialize(assets, instance=instance, resources=resources,
                            tags={RANGE[0]: keys[0], RANGE[1]: keys[-1]})
    assert result.success
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--whisper", default="base", choices=["tiny.en", "base"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from tiktok_assets.lib.models.whisper import install_packaged_whisper
    from tiktok_assets_tests.lib import vision_fixtures

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ.setdefault("YOLO_CONFIG_DIR", str(root / "yolo"))
        layout = DataLayout(root / "data")
        names = (CLIPS * 4)[: args.videos]
        generate_samples(root / "clips", sorted(set(names)))
        keys = []
        for i, name in enumerate(names):
            src = root / "clips" / f"{name}.mp4"
            dst = layout.videos_dir / f"{name}_{i}.mp4"
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            keys.append(registry.register(layout, dst).key)
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(VIDEOS_PARTITION, keys)
        paths = ProjectPaths(data_dir=str(layout.root))
        materialize([video_metadata, audio_wav, speech_segments, candidate_frames, filtered_frames], instance,
                    keys, {"paths": paths})

        # --- transcription --------------------------------------------------------------------
        weights = install_packaged_whisper(args.whisper, root / f"whisper-{args.whisper}")
        whisper = WhisperResource(model=str(weights), device="cpu", preset="cpu")
        demucs_off = DemucsResource(enabled=False)
        materialize([audio_stems], instance, keys, {"paths": paths, "demucs": demucs_off})
        loaded = whisper.load()  # warm the per-process cache: load time excluded
        from faster_whisper import WhisperModel

        bare_model = WhisperModel(str(weights), device="cpu", compute_type=loaded.compute_type)
        wavs = [str(layout.video(k).audio_wav) for k in keys]

        def bare_transcribe() -> float:
            started = time.perf_counter()
            for wav in wavs:
                segments, _ = bare_model.transcribe(wav, beam_size=5, vad_filter=True, word_timestamps=True)
                list(segments)
            return time.perf_counter() - started

        asset_t, bare_t = [], []
        for _ in range(args.repeats):
            bare_t.append(bare_transcribe())
            asset_t.append(materialize([transcript], instance, keys,
                                       {"paths": paths, "whisper": whisper, "demucs": demucs_off}))
        audio_s = sum(atomic.read_json(layout.video(k).audio_json)["duration_s"] for k in keys)
        a, b = statistics.median(asset_t), statistics.median(bare_t)
        print(f"transcript: {len(keys)} videos, {audio_s:.0f} s of audio, Whisper {args.whisper} int8 on CPU")
        print(f"  bare faster-whisper: {b:.2f} s (RTF {b / audio_s:.3f})   asset run: {a:.2f} s "
              f"(RTF {a / audio_s:.3f})   overhead {100 * (a / b - 1):+.1f}%  (target <= 10%)")

        # --- vision -----------------------------------------------------------------------------
        models = root / "vision_models"
        clip_dir = vision_fixtures._once(models, "clip_dir", vision_fixtures.build_tiny_clip_dir)
        yolo_pt = vision_fixtures._once(models, "yolo_world", vision_fixtures.build_tiny_yolo_world)
        blip_dir = vision_fixtures._once(models, "blip", vision_fixtures.build_tiny_blip)
        clip = ClipResource(model=str(clip_dir), device="cpu")
        yolo = YoloWorldResource(model=str(yolo_pt), device="cpu")
        blip = BlipResource(model=str(blip_dir), device="cpu")
        catalogue = CatalogueResource()
        resources = {"paths": paths, "clip": clip, "yolo_world": yolo, "blip": blip, "catalogue": catalogue}
        vocab = catalogue.vocabulary()
        encoder = clip.load()
        detector = yolo.load(encoder, list(vocab.names), list(vocab.product_names))
        captioner = blip.load()
        frames = [layout.video(k).frames_dir / f["file"] for k in keys
                  for f in atomic.read_json(layout.video(k).filtered_frames_json)["kept"]]

        materialize([frame_objects, representative_frames, frame_features], instance, keys, resources)  # warm-up
        reps = [p for k in keys for p in sorted(layout.video(k).representative_dir.glob("representative_*.jpg"))]

        def bare_vision() -> float:
            started = time.perf_counter()
            detector.detect(frames, conf=yolo.confidence, batch_size=yolo.batch_size)
            encoder.encode_images(frames, batch_size=clip.batch_size)
            captioner.caption(reps, max_new_tokens=blip.max_new_tokens, batch_size=blip.batch_size)
            return time.perf_counter() - started

        bare_vision()  # warm-up
        asset_t, bare_t = [], []
        for _ in range(args.repeats):
            bare_t.append(bare_vision())
            asset_t.append(materialize([frame_objects, representative_frames, frame_features], instance, keys,
                                       resources))
        a, b = statistics.median(asset_t), statistics.median(bare_t)
        print(f"vision: {len(keys)} videos, {len(frames)} kept frames, TINY RANDOM models")
        print(f"  bare model calls: {b:.2f} s   asset run (3 assets): {a:.2f} s   "
              f"overhead {a - b:+.2f} s per run ({100 * (a / b - 1):+.0f}%; fixed cost, amortised by real models)")


if __name__ == "__main__":
    main()
