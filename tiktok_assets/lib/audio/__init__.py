"""The audio track: extraction, loudness and music analysis, audio events, voice activity, fingerprints."""
