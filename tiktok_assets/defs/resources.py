"""Resources shared by every asset: where the project's data lives."""


import os
from pathlib import Path

import dagster as dg

from tiktok_assets.lib.layout import DataLayout

DATA_DIR_ENV = "TIKTOK_ASSETS_DATA_DIR"


def default_data_dir() -> str:
    return os.environ.get(DATA_DIR_ENV, "data")


class ProjectPaths(dg.ConfigurableResource):
    """The data folder: ``tiktok_videos/`` (watched input), ``tiktok_frames/``, ``outputs/`` and the
    feature table. Relative paths are resolved against the current working directory."""

    data_dir: str = default_data_dir()

    def layout(self) -> DataLayout:
        return DataLayout(Path(self.data_dir).expanduser().resolve())


@dg.definitions
def resources() -> dg.Definitions:
    from tiktok_assets.defs.assets.vision import CatalogueResource
    from tiktok_assets.defs.model_resources import model_resources

    return dg.Definitions(resources={"paths": ProjectPaths(data_dir=default_data_dir()), **model_resources(),
                                     "catalogue": CatalogueResource()})
