"""The tiktok-assets code location: everything under defs/ plus the shared resources."""

from pathlib import Path

import dagster as dg

from tiktok_assets.lib.offline import switch_off_network

# Every process that loads the code location (code server, run worker, `dagster asset materialize`)
# runs without telemetry or hub access unless TIKTOK_ASSETS_ALLOW_NETWORK=1 (lib/offline.py).
switch_off_network()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
