"""The catalogue of videos: partition keys, the registry, the watched-folder scan, similarity and search."""
