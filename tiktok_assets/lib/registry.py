"""Video registry: partition key -> source path. One small JSON file per video (atomic, no lock)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from tiktok_assets.lib import atomic
from tiktok_assets.lib.keys import partition_key_for
from tiktok_assets.lib.layout import DataLayout


@dataclass(frozen=True)
class RegisteredVideo:
    key: str
    source_path: str
    file_name: str
    registered_at: str


def register(layout: DataLayout, path: str | Path) -> RegisteredVideo:
    """Record a video under its partition key. Registering the same file twice is a no-op."""
    source = Path(path).expanduser().resolve()
    key = partition_key_for(source)
    entry_path = layout.registry_dir / f"{key}.json"
    if entry_path.exists():
        existing = RegisteredVideo(**atomic.read_json(entry_path))
        if existing.source_path == str(source):
            return existing
    entry = RegisteredVideo(
        key=key,
        source_path=str(source),
        file_name=source.name,
        registered_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    atomic.write_json(entry_path, asdict(entry))
    return entry


def lookup(layout: DataLayout, key: str) -> RegisteredVideo:
    """The registered video for ``key``; falls back to scanning the watched folder."""
    entry_path = layout.registry_dir / f"{key}.json"
    if entry_path.exists():
        return RegisteredVideo(**atomic.read_json(entry_path))
    if layout.videos_dir.is_dir():
        for candidate in layout.videos_dir.iterdir():
            if partition_key_for(candidate) == key:
                return register(layout, candidate)
    raise KeyError(
        f"No video is registered under partition key {key!r}: add it with `tiktok-assets add PATH` "
        f"or drop it into {layout.videos_dir}"
    )


def registered(layout: DataLayout) -> list[RegisteredVideo]:
    if not layout.registry_dir.is_dir():
        return []
    return [RegisteredVideo(**atomic.read_json(p)) for p in sorted(layout.registry_dir.glob("*.json"))]
