"""The feature table: its schema, one row per video, the sharded dataset, its files and their validation."""
