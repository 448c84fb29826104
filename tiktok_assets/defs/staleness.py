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
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus

from tiktok_assets.lib.schema import STAGES


@dataclass(frozen=True)
class StaleStage:
    key: str
    stage: str
    causes: list[str]  # e.g. "has a new code version", "has a new dependency data version"


def stale_stages(instance: dg.DagsterInstance, definitions: dg.Definitions, keys: list[str]) -> list[StaleStage]:
    """Every (video, stage) among ``keys`` that Dagster shows as stale, in stage order."""
    view = AssetGraphView.for_test(definitions, instance)  # a view of the instance as of now
    resolver = CachingStaleStatusResolver(instance, asset_graph=definitions.resolve_asset_graph(),
                                          loading_context=view)
    graph = definitions.resolve_asset_graph()
    found = []
    for key in keys:
        stale: dict[str, list[str]] = {}
        for stage in STAGES:  # in dependency order
            asset = dg.AssetKey(stage)
            if resolver.get_status(asset, key) == StaleStatus.STALE:
                stale[stage] = [f"{c.key.asset_key.to_user_string()} {c.reason}"
                                for c in resolver.get_stale_root_causes(asset, key)]
            elif upstream := [p.to_user_string() for p in graph.get(asset).parent_keys
                              if p.to_user_string() in stale]:
                stale[stage] = [f"upstream {', '.join(upstream)} is stale"]
        found += [StaleStage(key, stage, causes) for stage, causes in stale.items()]
    return found
