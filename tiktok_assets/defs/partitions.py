"""One dynamic partition per registered video file."""

import dagster as dg

VIDEOS_PARTITION = "videos"
videos_partitions = dg.DynamicPartitionsDefinition(name=VIDEOS_PARTITION)
