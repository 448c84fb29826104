"""tiktok-assets: a Dagster code location for short vertical videos."""

__version__ = "0.1.0"
