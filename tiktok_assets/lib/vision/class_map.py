"""Class map: a closed-set detector's class names onto the product vocabulary.

The file (``tiktok_assets/data/coco_class_map.yaml`` by default, for COCO-80 detectors) is::

    version: "2025.06-1"
    classes:          # detector class -> product vocabulary class
      cup: mug
      cell phone: smartphone

A detection's label is the vocabulary class its detector class maps to, else the detector's own
class name; it is a product when that label is a product class of the vocabulary. So a class left
out keeps its own name and is a non-product object (COCO ``bus``), unless it is named exactly like
a vocabulary class (COCO ``laptop``), which it then is.

Validation (:class:`ClassMapError`, naming the file and the class): a missing ``version``, no
``classes`` mapping, empty names, unknown top-level keys; :meth:`ClassMap.check` also refuses a
target that is not a vocabulary class and a detector class the model does not have (a typo would
otherwise lose a product silently).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tiktok_assets.lib.vision.taxonomy import TaxonomyError, load_yaml_strict
from tiktok_assets.lib.vision.vocabulary import Vocabulary

_KEYS = {"version", "classes"}


class ClassMapError(ValueError):
    """The class map file is malformed or does not fit the model / vocabulary; the message names the file."""


@dataclass(frozen=True)
class ClassMap:
    version: str
    classes: dict[str, str]  # detector class name -> product vocabulary class name
    source: str = ""

    def label(self, model_class: str) -> str:
        """The label a detection of ``model_class`` gets."""
        return self.classes.get(model_class, model_class)

    def check(self, model_classes: Sequence[str], vocabulary: Vocabulary, model: str = "the model") -> None:
        """Every target is a vocabulary class and every mapped detector class is one of ``model_classes``."""
        unknown_targets = [(k, v) for k, v in self.classes.items() if vocabulary.get(v) is None]
        if unknown_targets:
            listed = ", ".join(f"{k!r} -> {v!r}" for k, v in unknown_targets)
            raise ClassMapError(f"{self.source}: {listed}: not a class of the product vocabulary {vocabulary.source} "
                                f"(version {vocabulary.version})")
        absent = [k for k in self.classes if k not in set(model_classes)]
        if absent:
            raise ClassMapError(f"{self.source}: maps {absent}, which {model} does not have (its classes: "
                                f"{', '.join(model_classes)})")

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "source": self.source, "classes": dict(self.classes)}


def default_class_map_path() -> Path:
    return Path(str(resources.files("tiktok_assets") / "data" / "coco_class_map.yaml"))


def parse_class_map(data: Any, source: Path) -> ClassMap:
    if not isinstance(data, dict):
        raise ClassMapError(f"{source}: expected a mapping with `version` and `classes`")
    unknown = set(data) - _KEYS
    if unknown:
        raise ClassMapError(f"{source}: unknown keys {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    version = data.get("version")
    if version is None or not str(version).strip():
        raise ClassMapError(f"{source}: missing `version`")
    raw = data.get("classes")
    if not isinstance(raw, dict) or not raw:
        raise ClassMapError(f"{source}: `classes` must be a non-empty mapping of detector class -> vocabulary class")
    classes: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.strip() or not isinstance(value, str) or not value.strip():
            raise ClassMapError(f"{source}: class {key!r} -> {value!r}: both must be non-empty strings")
        classes[key.strip()] = value.strip()
    return ClassMap(version=str(version), classes=classes, source=str(source))


def load_class_map(path: str | Path | None = None) -> ClassMap:
    """Load and validate a class map file (the packaged COCO map when ``path`` is None)."""
    file = Path(path) if path else default_class_map_path()
    if not file.is_file():
        raise ClassMapError(f"class map file not found: {file}")
    try:
        data = load_yaml_strict(file)
    except TaxonomyError as exc:  # duplicate keys / YAML syntax, reported by the shared strict loader
        raise ClassMapError(str(exc)) from None
    return parse_class_map(data, file)
