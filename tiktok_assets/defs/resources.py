"""Resources shared by the assets: where the project's data lives, and the product catalogue data."""


import os
from functools import cache
from pathlib import Path

import dagster as dg

from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.vision.taxonomy import ContentLabels, Taxonomy, load_content_labels, load_taxonomy
from tiktok_assets.lib.vision.vocabulary import Vocabulary, load_vocabulary

DATA_DIR_ENV = "TIKTOK_ASSETS_DATA_DIR"


def default_data_dir() -> str:
    return os.environ.get(DATA_DIR_ENV, "data")


class ProjectPaths(dg.ConfigurableResource):
    """The data folder: ``tiktok_videos/`` (watched input), ``tiktok_frames/``, ``outputs/`` and the
    feature table. Relative paths are resolved against the current working directory."""

    data_dir: str = "data"
    settle_seconds: float = 10.0  # a file in the watched folder is new once unchanged this long
    reprocess_replaced: bool = True  # the sensor re-runs a video whose file was replaced in place

    def layout(self) -> DataLayout:
        return DataLayout(Path(self.data_dir).expanduser().resolve())


class CatalogueResource(dg.ConfigurableResource):
    """The product vocabulary (detector classes, CLIP prompts), the category taxonomy and the content type /
    target audience lists: versioned YAML files, validated at load. Empty paths = the files shipped in
    tiktok_assets/data/."""

    taxonomy_path: str = ""
    vocabulary_path: str = ""
    content_labels_path: str = ""

    def taxonomy(self) -> Taxonomy:
        return _taxonomy(self.taxonomy_path)

    def vocabulary(self) -> Vocabulary:
        return _vocabulary(self.vocabulary_path, self.taxonomy_path)

    def content_labels(self) -> ContentLabels:
        return _content_labels(self.content_labels_path)


@cache
def _taxonomy(path: str) -> Taxonomy:
    return load_taxonomy(path or None)


@cache
def _content_labels(path: str) -> ContentLabels:
    return load_content_labels(path or None)


@cache
def _vocabulary(path: str, taxonomy_path: str) -> Vocabulary:
    return load_vocabulary(path or None, _taxonomy(taxonomy_path))


@dg.definitions
def resources() -> dg.Definitions:
    from tiktok_assets.defs.model_resources import model_resources

    # In-process executor: one process per run imports the code and loads each model once for all the
    # run's steps and videos (README: "Executor").
    paths = ProjectPaths(data_dir=default_data_dir(),
                         settle_seconds=float(os.environ.get("TIKTOK_ASSETS_SETTLE_SECONDS", "10")))
    return dg.Definitions(resources={"paths": paths, **model_resources(),
                                     "catalogue": CatalogueResource(
                                         taxonomy_path=os.environ.get("TIKTOK_ASSETS_TAXONOMY", ""),
                                         vocabulary_path=os.environ.get("TIKTOK_ASSETS_VOCABULARY", ""),
                                         content_labels_path=os.environ.get("TIKTOK_ASSETS_CONTENT_LABELS", ""))},
                          executor=executor())


EXECUTOR_ENV = "TIKTOK_ASSETS_EXECUTOR"


def executor() -> dg.ExecutorDefinition:
    """``in_process`` (default): one process per run (README: "Executor"). ``k8s``: on Kubernetes, each step
    in a pod of its own (dagster-k8s's k8s_job_executor), so that only the model stages' pods ask for a GPU
    (their ``dagster-k8s/config`` tags, defs/video_stage.py); a model loads once per step, not per run."""
    choice = os.environ.get(EXECUTOR_ENV, "in_process").strip().lower()
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "k8s":
        from dagster_k8s import k8s_job_executor  # the `deploy` extra

        return k8s_job_executor
    raise ValueError(f"{EXECUTOR_ENV}={choice!r}: expected in_process or k8s")
