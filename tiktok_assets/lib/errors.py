"""Errors that describe a problem with one video (recorded for that video, never fatal to others)."""


class VideoInputError(Exception):
    """The input file cannot be processed: empty, corrupt, not a video, unsupported."""


class ModelUnavailableError(Exception):
    """A model's weights are not present locally and cannot be downloaded."""
