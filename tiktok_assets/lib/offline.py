"""No outside connection at run time: telemetry and hub access off for the libraries the pipeline uses.

The pipeline reads local files only. Left to their defaults, some libraries it uses still reach out:
onnxruntime (Silero VAD) sends telemetry to Microsoft on Linux too since 1.29 (a DNS lookup of
``mobile.events.data.microsoft.com`` a few seconds after the first import), ultralytics checks
connectivity and may pip-install packages, the Hugging Face hub and transformers may ask the hub.
:func:`switch_off_network` sets each library's own opt-out, as environment variables, before the
library is imported. Variables the user has set are left as they are, and
``TIKTOK_ASSETS_ALLOW_NETWORK=1`` leaves everything as the libraries have it. Network use the user
switches on stays on: Shazam recognition (``TIKTOK_ASSETS_SHAZAM=1``) and ``tiktok-assets models pull``
(which never calls this) are not affected.
"""

from __future__ import annotations

import os
import sys

ALLOW_NETWORK_ENV = "TIKTOK_ASSETS_ALLOW_NETWORK"

OFFLINE_ENV: dict[str, str] = {
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime: no telemetry uploader (read once, when it initialises)
    "HF_HUB_OFFLINE": "1",  # huggingface_hub, transformers, open_clip: local files and cache only
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "YOLO_OFFLINE": "1",  # ultralytics: no connectivity check, so no analytics events and no hub calls
    "YOLO_AUTOINSTALL": "0",  # ultralytics: never pip-install a missing requirement at run time
    "DAGSTER_DISABLE_TELEMETRY": "1",  # with `telemetry: enabled: false` in dagster.yaml
    "DO_NOT_TRACK": "1",  # the shared convention (https://donottrack.sh), honoured by huggingface_hub
}


def network_allowed() -> bool:
    """True when the user switched network use on with TIKTOK_ASSETS_ALLOW_NETWORK."""
    return os.environ.get(ALLOW_NETWORK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def switch_off_network() -> list[str]:
    """Switch off telemetry and hub access (see the module docstring); returns the variables it set.

    Cheap and imports nothing: call it before the libraries load (the code location does when it
    loads). A library imported before a variable was set is switched off through its own API."""
    if network_allowed():
        return []
    changed: list[str] = []
    for name, value in OFFLINE_ENV.items():
        if name not in os.environ:
            os.environ[name] = value
            changed.append(name)
    onnxruntime = sys.modules.get("onnxruntime")
    if onnxruntime is not None and "ORT_DISABLE_TELEMETRY" in changed:
        onnxruntime.disable_telemetry_events()  # later events only: the process event may already be queued
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None and "HF_HUB_OFFLINE" in changed:
        hub_constants.HF_HUB_OFFLINE = True  # read once at import; is_offline_mode() returns it
    if hub_constants is not None and "HF_HUB_DISABLE_TELEMETRY" in changed:
        hub_constants.HF_HUB_DISABLE_TELEMETRY = True
    return changed
