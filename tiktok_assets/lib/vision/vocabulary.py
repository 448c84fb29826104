"""Product vocabulary: detector classes (YOLO-World prompts), their CLIP prompts and taxonomy hints.

The file (``tiktok_assets/data/product_vocabulary.yaml`` by default) is::

    version: "2025.06-1"
    classes:
      - {name: lipstick, prompts: ["a photo of a lipstick"], taxonomy_l1: Beauty & Personal Care}
      - {name: person, prompts: ["a photo of a person"], product: false}

``product`` defaults to true. Validation (:class:`VocabularyError`, naming the file and the class):
a missing ``version``, no classes, duplicate class names (case-insensitive), empty names, empty or
missing prompts, a product class without ``taxonomy_l1``, a non-product class with one, unknown
keys. :meth:`Vocabulary.check_against` also checks every ``taxonomy_l1`` exists in a taxonomy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tiktok_assets.lib.vision.taxonomy import Taxonomy, TaxonomyError, load_yaml_strict, normalise

_KEYS = {"name", "prompts", "taxonomy_l1", "product"}


class VocabularyError(ValueError):
    """The vocabulary file is malformed; the message names the file and the class."""


@dataclass(frozen=True)
class VocabularyClass:
    name: str
    prompts: tuple[str, ...]
    taxonomy_l1: str | None = None
    product: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "prompts": list(self.prompts), "taxonomy_l1": self.taxonomy_l1,
                "product": self.product}


@dataclass(frozen=True)
class Vocabulary:
    version: str
    classes: tuple[VocabularyClass, ...]
    source: str = ""
    _by_name: dict[str, VocabularyClass] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({c.name: c for c in self.classes})

    @property
    def names(self) -> list[str]:
        """Detector class names, in file order (YOLO-World class index i == names[i])."""
        return [c.name for c in self.classes]

    @property
    def product_names(self) -> list[str]:
        return [c.name for c in self.classes if c.product]

    def is_product(self, name: str) -> bool:
        cls = self._by_name.get(name)
        return bool(cls and cls.product)

    def get(self, name: str) -> VocabularyClass | None:
        return self._by_name.get(name)

    def product_prompts(self) -> list[tuple[str, str]]:
        """(class name, prompt) for every CLIP prompt of every product class."""
        return [(c.name, p) for c in self.classes if c.product for p in c.prompts]

    def check_against(self, taxonomy: Taxonomy) -> None:
        known = {normalise(x): x for x in taxonomy.level1}
        for c in self.classes:
            if c.taxonomy_l1 is not None and normalise(c.taxonomy_l1) not in known:
                raise VocabularyError(
                    f"{self.source}: class {c.name!r} hints at taxonomy level 1 {c.taxonomy_l1!r}, which is not in "
                    f"taxonomy {taxonomy.source} (version {taxonomy.version})"
                )

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "source": self.source, "classes": [c.to_json() for c in self.classes]}


def default_vocabulary_path() -> Path:
    return Path(str(resources.files("tiktok_assets") / "data" / "product_vocabulary.yaml"))


def _parse_class(raw: Any, index: int, file: Path) -> VocabularyClass:
    where = f"{file}: class #{index + 1}"
    if not isinstance(raw, dict):
        raise VocabularyError(f"{where}: expected a mapping with name/prompts, got {raw!r}")
    unknown = set(raw) - _KEYS
    if unknown:
        raise VocabularyError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise VocabularyError(f"{where}: `name` must be a non-empty string")
    where = f"{file}: class {name!r}"
    prompts = raw.get("prompts")
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, list) or not prompts:
        raise VocabularyError(f"{where}: `prompts` must be a non-empty list of strings")
    if any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise VocabularyError(f"{where}: empty prompt in {prompts!r}")
    product = raw.get("product", True)
    if not isinstance(product, bool):
        raise VocabularyError(f"{where}: `product` must be true or false")
    hint = raw.get("taxonomy_l1")
    if product and (not isinstance(hint, str) or not hint.strip()):
        raise VocabularyError(f"{where}: a product class needs `taxonomy_l1` (the taxonomy level 1 it hints at)")
    if not product and hint is not None:
        raise VocabularyError(f"{where}: a non-product class must not have `taxonomy_l1`")
    return VocabularyClass(name=name.strip(), prompts=tuple(p.strip() for p in prompts),
                           taxonomy_l1=hint.strip() if hint else None, product=product)


def parse_vocabulary(data: Any, source: Path) -> Vocabulary:
    if not isinstance(data, dict):
        raise VocabularyError(f"{source}: expected a mapping with `version` and `classes`")
    version = data.get("version")
    if version is None or not str(version).strip():
        raise VocabularyError(f"{source}: missing `version`")
    raw_classes = data.get("classes")
    if not isinstance(raw_classes, list) or not raw_classes:
        raise VocabularyError(f"{source}: `classes` must be a non-empty list")
    classes = [_parse_class(raw, i, source) for i, raw in enumerate(raw_classes)]
    seen: dict[str, str] = {}
    for c in classes:
        key = normalise(c.name)
        if key in seen:
            raise VocabularyError(f"{source}: duplicate class {c.name!r} (same as {seen[key]!r})")
        seen[key] = c.name
    if not any(c.product for c in classes):
        raise VocabularyError(f"{source}: no product class (every class has product: false)")
    return Vocabulary(version=str(version), classes=tuple(classes), source=str(source))


def load_vocabulary(path: str | Path | None = None, taxonomy: Taxonomy | None = None) -> Vocabulary:
    """Load and validate a vocabulary file (the packaged default when ``path`` is None).

    With ``taxonomy``, every ``taxonomy_l1`` hint is also checked against its level-1 names.
    """
    file = Path(path) if path else default_vocabulary_path()
    if not file.is_file():
        raise VocabularyError(f"vocabulary file not found: {file}")
    try:
        data = load_yaml_strict(file)
    except TaxonomyError as exc:  # duplicate keys / YAML syntax, reported by the shared strict loader
        raise VocabularyError(str(exc)) from None
    vocabulary = parse_vocabulary(data, file)
    if taxonomy is not None:
        vocabulary.check_against(taxonomy)
    return vocabulary
