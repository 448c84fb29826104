"""What the frames show: on-screen text, representative frames, captions and categories, vocabularies."""
