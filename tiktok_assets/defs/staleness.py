"""Which per-video stages are out of date, as Dagster's data versioning sees them (the UI's "stale").

A stage partition is stale when its code version changed since it was materialized (a model or a
setting default of that stage, see ``video_stage.stage_code_version``) or when the source file's data
version changed (``video_file``: the file was replaced). For partitioned assets Dagster's UI marks
only that first stage stale (its children turn stale once it is redone and its data version changes);
here every stage downstream of a stale one is listed too, so one redo covers everything out of date.
Dagster has no public API for this yet; the resolver is the one its UI uses.
"""

from dataclasses import dataclass

import dagster as dg
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

from tiktok_assets.lib.table.schema import STAGES


@dataclass(frozen=True)
class StaleStage:
    key: str
    stage: str
    causes: list[str]  # e.g. "has a new code version", "has a new dependency data version"


def stale_stages(instance: dg.DagsterInstance, graph: BaseAssetGraph, keys: list[str]) -> list[StaleStage]:
    """Every (video, stage) among ``keys`` that is stale, in stage order (``graph``: the code
    location's asset graph, e.g. ``Definitions.resolve_asset_graph()``)."""
    now = TemporalContext(effective_dt=get_current_datetime(),
                          last_event_id=instance.event_log_storage.get_maximum_record_id())
    view = AssetGraphView(temporal_context=now, instance=instance, asset_graph=graph)
    resolver = CachingStaleStatusResolver(instance, asset_graph=graph, loading_context=view)
    found = []
    for key in keys:
        stale: dict[str, list[str]] = {}
        for stage in STAGES:  # in dependency order
            asset = dg.AssetKey(stage)
            status = resolver.get_status(asset, key)
            if status == StaleStatus.STALE:
                stale[stage] = [f"{c.key.asset_key.to_user_string()} {c.reason}"
                                for c in resolver.get_stale_root_causes(asset, key)]
            elif status == StaleStatus.FRESH and (upstream := [
                    p.to_user_string() for p in graph.get(asset).parent_keys if p.to_user_string() in stale]):
                stale[stage] = [f"upstream {', '.join(upstream)} is stale"]  # a never-run stage is missing
        found += [StaleStage(key, stage, causes) for stage, causes in stale.items()]
    return found


def redo_groups(stale: list[StaleStage]) -> dict[tuple[str, ...], list[str]]:
    """Videos grouped by their set of stale stages (in stage order): one run per group redoes exactly
    them (a replaced file: all of its stages; a model switch: the stages using it and what follows)."""
    by_key: dict[str, set[str]] = {}
    for item in stale:
        by_key.setdefault(item.key, set()).add(item.stage)
    groups: dict[tuple[str, ...], list[str]] = {}
    for key, stages in by_key.items():
        groups.setdefault(tuple(s for s in STAGES if s in stages), []).append(key)
    return groups
