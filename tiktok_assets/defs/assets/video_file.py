"""video_file: the source video of each partition, observed by content.

Its data version is the file's content hash (size + first and last MiB, or the whole file with
TIKTOK_ASSETS_FULL_HASH=1: ``lib/registry.content_hash``), or ``missing`` when the file is gone. The sensor records an observation for every video it adds or
finds replaced, and `tiktok-assets add` for every video it registers; "Observe sources" in the UI
re-reads every file. A new data version marks that partition's stages as stale in the UI (Dagster's
data versioning), so a replaced file shows its results as out of date until they are redone.
"""

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG  # no public name in 1.13

from tiktok_assets.defs.partitions import VIDEOS_PARTITION, videos_partitions
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout

VIDEO_FILE = dg.AssetKey("video_file")
MISSING = "missing"


def content_version(entry: registry.RegisteredVideo | None) -> str:
    """The content hash of a registered file as it is now, or ``missing``."""
    try:
        return MISSING if entry is None else registry.content_hash(entry.source_path, like=entry.content_hash)
    except OSError:
        return MISSING


def observation(key: str, version: str) -> dg.AssetObservation:
    """What a video's file is now, as an observation of its ``video_file`` partition."""
    return dg.AssetObservation(asset_key=VIDEO_FILE, partition=key, tags={DATA_VERSION_TAG: version},
                               metadata={"content_hash": version})


@dg.observable_source_asset(
    partitions_def=videos_partitions,
    group_name="media",
    description="The source video file of each partition. Data version: its content hash (size + first and last "
    "MiB), or `missing`; a replaced file makes the partition's stages stale.",
)
def video_file(context: dg.AssetExecutionContext, paths: ProjectPaths) -> dg.DataVersionsByPartition:
    layout = paths.layout()
    keys = context.instance.get_dynamic_partitions(VIDEOS_PARTITION)
    entries = registry.lookup_many(layout, keys)
    return dg.DataVersionsByPartition({key: dg.DataVersion(content_version(entries.get(key))) for key in keys})


def new_observations(instance: dg.DagsterInstance, layout: DataLayout, keys: list[str]) -> list[dg.AssetObservation]:
    """Observations for the registered videos among ``keys`` whose content hash differs from the
    latest one Dagster has for their partition (re-added videos, replaced files)."""
    entries = registry.lookup_many(layout, list(dict.fromkeys(keys)))
    found = []
    for key, entry in entries.items():
        version = entry.content_hash or content_version(entry)
        latest = instance.get_latest_data_version_record(VIDEO_FILE, is_source=True, partition_key=key)
        if latest is None or latest.asset_observation is None or \
                latest.asset_observation.tags.get(DATA_VERSION_TAG) != version:
            found.append(observation(key, version))
    return found
