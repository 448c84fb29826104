"""tiktok-assets: a Dagster code location for short vertical videos."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"


def load_features(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The feature table from ``video_features_results.parquet`` or ``.csv``, with its declared types:
    ``string``, ``Int64``, ``Float64``, ``boolean``, and ``pd.ArrowDtype`` list / struct columns (a cell
    is a Python list or dict); missing values are ``<NA>``. From the CSV, the Parquet-only columns (the
    CLIP embedding) are absent."""
    from tiktok_assets.lib.table.table_io import load_features as load  # pandas loads only when asked

    return load(path)
