"""Vision stages on this machine: frames per second through each model wrapper, and the wrapper's
overhead over the bare library call on the same frames.

Real weights are not available offline, so this runs TINY RANDOM models with the `cpu` preset's
input shapes (CLIP 224 px, YOLO-World 640 px, BLIP 384 px, Qwen2.5-VL frames capped at
``VLM_MAX_PIXELS``). Absolute frames/s therefore say nothing about real models; the overhead
ratios do (what our code adds: image loading, batching, conversion to typed results), and are
conservative, since a tiny model makes the fixed per-call cost look larger.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_vision.py [--frames 16] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import torch
from PIL import Image

from tiktok_assets.lib.models.base import resolve_preset
from tiktok_assets.lib.models.blip import load_blip
from tiktok_assets.lib.models.clip import load_clip
from tiktok_assets.lib.models.vlm import load_vlm
from tiktok_assets.lib.models.yolo_world import load_yolo_world
from tiktok_assets.lib.vision.vocabulary import load_vocabulary
from tiktok_assets_tests.lib.vision_fixtures import (
    build_tiny_blip,
    build_tiny_clip_dir,
    build_tiny_vlm,
    build_tiny_yolo_world,
)

YOLO_IMGSZ = 640
VLM_MAX_PIXELS = 256 * 28 * 28
CLIP_BATCH, YOLO_BATCH, BLIP_BATCH = 32, 8, 8


def paired(ours: Callable[[], object], bare: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Measured alternately (ours, bare, ours, ...) so load on the machine hits both alike.

    Returns the best time of each and the median of the per-pair ratios ours / bare.
    """
    ours()  # warm-up (first call builds predictors, allocates buffers)
    bare()
    t_ours, t_bare = [], []
    for _ in range(repeats):
        for fn, sink in ((ours, t_ours), (bare, t_bare)):
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    return min(t_ours), min(t_bare), statistics.median(a / b for a, b in zip(t_ours, t_bare, strict=True))


def make_frames(folder: Path, n: int) -> list[Path]:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=720x1280:r=2",
                    "-frames:v", str(n), "-q:v", "3", str(folder / "frame_%03d.jpg")], check=True)
    return sorted(folder.glob("frame_*.jpg"))


def report(stage: str, n: int, times: tuple[float, float, float]) -> dict[str, float]:
    ours, bare, median_ratio = times
    overhead = ours / bare - 1
    print(f"{stage:<22} {n / ours:8.2f} fps (wrapper) {n / bare:8.2f} fps (bare)  overhead: best/best {overhead:+6.1%}, "
          f"median pair {median_ratio - 1:+6.1%}  {'OK' if min(overhead, median_ratio - 1) <= 0.10 else 'ABOVE 10%'}")
    return {"fps": n / ours, "bare_fps": n / bare, "overhead": overhead, "median_pair_overhead": median_ratio - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp / "yolo_config"))
        for sub in ("frames", "clip", "yolo", "blip", "vlm"):
            (tmp / sub).mkdir()
        frames = make_frames(tmp / "frames", args.frames)
        n = len(frames)
        print(f"bench_vision: {n} frames 720x1280, preset {resolve_preset()} shapes, {os.cpu_count()} CPU cores, "
              f"torch {torch.__version__}, {args.repeats} alternating repeats (best of each)")
        print("NOTE: TINY RANDOM MODELS (real weights are not available here): frames/s are NOT those of the real "
              "models; the overhead ratios are what this measures.\n")

        # CLIP: wrapper (paths -> normalised numpy) vs bare open_clip (same preprocessing, encode, normalise)
        clip = load_clip(build_tiny_clip_dir(tmp / "clip"), device="cpu")

        def bare_clip() -> None:
            for s in range(0, n, CLIP_BATCH):
                batch = torch.stack([clip.preprocess(Image.open(p).convert("RGB")) for p in frames[s : s + CLIP_BATCH]])
                with torch.inference_mode():
                    f = clip.model.encode_image(batch)
                    (f / f.norm(dim=-1, keepdim=True)).numpy()

        report("CLIP encode_images", n, paired(lambda: clip.encode_images(frames, CLIP_BATCH), bare_clip, args.repeats))

        # YOLO-World: wrapper detect (read, predict, typed Detections) vs bare ultralytics predict on the same arrays
        vocabulary = load_vocabulary()
        detector = load_yolo_world(clip, vocabulary.names, vocabulary.product_names,
                                   model=build_tiny_yolo_world(tmp / "yolo"), device="cpu", imgsz=YOLO_IMGSZ)

        def bare_yolo() -> None:
            for s in range(0, n, YOLO_BATCH):
                batch = [cv2.imread(str(p)) for p in frames[s : s + YOLO_BATCH]]
                detector.yolo.predict(batch, conf=0.25, iou=0.7, imgsz=YOLO_IMGSZ, device="cpu", max_det=50,
                                      verbose=False)

        report("YOLO-World detect", n, paired(lambda: detector.detect(frames, 0.25, YOLO_BATCH), bare_yolo, args.repeats))

        # BLIP: wrapper caption vs bare processor + generate + decode
        blip = load_blip(build_tiny_blip(tmp / "blip"), device="cpu")

        def bare_blip() -> None:
            for s in range(0, n, BLIP_BATCH):
                images = [Image.open(p).convert("RGB") for p in frames[s : s + BLIP_BATCH]]
                inputs = blip.processor(images=images, return_tensors="pt")
                with torch.inference_mode():
                    ids = blip.model.generate(**inputs, max_new_tokens=20, num_beams=1)
                blip.processor.batch_decode(ids, skip_special_tokens=True)

        report("BLIP caption", n, paired(lambda: blip.caption(frames, 20, BLIP_BATCH), bare_blip, args.repeats))

        # Qwen2.5-VL: one generate over 4 representative frames, wrapper vs bare (same messages)
        vlm = load_vlm(build_tiny_vlm(tmp / "vlm"), device="cpu", max_pixels=VLM_MAX_PIXELS)
        reps = frames[:4]
        messages = [{"role": "user", "content": [*({"type": "image"} for _ in reps),
                                                 {"type": "text", "text": "Describe the product as JSON."}]}]

        def bare_vlm() -> None:
            text = vlm.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            inputs = vlm.processor(text=[text], images=[Image.open(p).convert("RGB") for p in reps],
                                   return_tensors="pt")
            with torch.inference_mode():
                ids = vlm.model.generate(**inputs, max_new_tokens=32, do_sample=False)
            vlm.processor.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

        report("Qwen2.5-VL generate", len(reps), paired(lambda: vlm.generate(reps, messages, 32), bare_vlm, args.repeats))
        print("\nOverhead = wrapper time / bare time - 1 on the same frames (target <= 10%); fps = frames / second.\n"
              "On a shared 2-core machine single timings vary by 2x or more: compare the two overhead columns.")


if __name__ == "__main__":
    main()
