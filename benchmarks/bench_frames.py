"""Frame extraction (with shot and bar detection) + filtering vs a plain FFmpeg decode of the same 60 s 1080x1920 clip.

    python benchmarks/bench_frames.py [--repeats 3] [--seconds 60]

Both are timed in the same run, alternating, and the ratio of medians is printed. Peak memory of
the extraction + filtering is measured in a fresh child process (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from tiktok_assets.lib.media.frames import extract_video
from tiktok_assets.lib.media.frame_filter import filter_frames
clip, out = Path(sys.argv[1]), Path(sys.argv[2])
t0 = time.perf_counter()
ex = extract_video(clip, out, highlight_times=[5.5, 17.5, 33.0, 48.2])
cands = ex.frames
t1 = time.perf_counter()
result = filter_frames(cands, out, content_box=ex.content_box, shots=ex.shots.shots)
t2 = time.perf_counter()
print(json.dumps({"extract_s": t1 - t0, "filter_s": t2 - t1, "candidates": len(cands),
                  "shots": len(ex.shots.shots), "content_box": ex.content_box.as_string(),
                  "kept": len(result.kept), "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_clip(path: Path, seconds: int) -> None:
    """Five scenes with hard cuts, 1080x1920 at 30 fps, H.264 + AAC, like a phone upload."""
    scene = seconds / 5
    sources = ["testsrc2", "mandelbrot", "smptebars", "testsrc", "cellauto"]
    inputs: list[str] = []
    for s in sources:
        inputs += ["-f", "lavfi", "-i", f"{s}=s=1080x1920:r=30,trim=duration={scene},setpts=PTS-STARTPTS"]
    graph = "".join(f"[{i}:v]" for i in range(5)) + "concat=n=5:v=1:a=0,format=yuv420p[v]"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-f", "lavfi", "-i",
                    f"sine=f=220:d={seconds}", "-filter_complex", graph, "-map", "[v]", "-map", "5:a",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac", "-t", str(seconds),
                    str(path)], check=True)


def time_plain_decode(clip: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-f", "null", "-"], check=True)
    return time.perf_counter() - started


def time_pipeline(clip: Path) -> dict:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, str(clip), out], check=True, capture_output=True,
                              text=True)
        result = json.loads(proc.stdout)
        result["wall_s"] = time.perf_counter() - started
        result["work_s"] = result["extract_s"] + result["filter_s"]
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "bench_1080x1920.mp4"
        make_clip(clip, args.seconds)
        plain, ours = [], []
        for _ in range(args.repeats):
            plain.append(time_plain_decode(clip))
            ours.append(time_pipeline(clip))
    base = statistics.median(plain)
    work = statistics.median(r["work_s"] for r in ours)
    last = ours[-1]
    print(f"clip: {args.seconds} s 1080x1920 30 fps H.264, {last['candidates']} candidates, {last['kept']} kept, "
          f"{last['shots']} shots, content box {last['content_box']}")
    print(f"plain `ffmpeg -i CLIP -f null -`: {base:.2f} s (median of {args.repeats})")
    print(f"extract + filter (in process):    {work:.2f} s  "
          f"(extract {statistics.median(r['extract_s'] for r in ours):.2f} s, "
          f"filter {statistics.median(r['filter_s'] for r in ours):.2f} s)")
    print(f"ratio vs plain decode:            {work / base:.2f}x  (target <= 1.25x)")
    print(f"peak memory (child process RSS):  {max(r['peak_rss_mib'] for r in ours):.0f} MiB  (target < 200 MiB)")
    print(f"this process peak RSS:            {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
