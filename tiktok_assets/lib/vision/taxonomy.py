"""Product category taxonomy (level1 > level2 > level3): load, validate, and map free answers onto it.

The file (``tiktok_assets/data/taxonomy.yaml`` by default, or any file with the same shape) is::

    version: "2025.06-1"
    categories:
      Beauty & Personal Care:        # level 1
        Makeup:                      # level 2
          - Lipstick & Lip Gloss     # level 3 leaves
          - Foundation & Concealer

Validation errors (:class:`TaxonomyError`) name the file and the offending entry: a missing
``version``, a level without children, empty or non-string names, duplicate names among siblings
(including duplicate YAML keys, which PyYAML would otherwise drop silently).

Mapping (:meth:`Taxonomy.map_to_taxonomy`): a model's answer is kept as is when it is a valid path
(case, spacing, ``&``/``and`` and punctuation ignored) -> source ``model``. Otherwise every valid
path is scored by **character 3-gram TF-IDF cosine** similarity, level by level (weights 0.2 / 0.3
/ 0.5 for level 1 / 2 / 3); a two-level answer is scored 0.4 / 0.6 as (level 1, level 2) or as
(level 2, level 3), whichever fits better (ties go to the first leaf in file order); free text (or
one level) is compared with the whole path and with the leaf alone (the better of the two). The best path at or above
``min_similarity`` (default 0.35) is returned with source ``mapped``; below it the answer is
``unmapped`` (path None). Character n-grams tolerate spelling, plural and word-order variants
("lip stick", "Lipsticks") that exact or token matching misses, and need no model.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

MODEL = "model"
MAPPED = "mapped"
UNMAPPED = "unmapped"

DEFAULT_MIN_SIMILARITY = 0.35
LEVEL_WEIGHTS = (0.2, 0.3, 0.5)
TWO_LEVEL_WEIGHTS = (0.4, 0.6)
NGRAM = 3

Path3 = tuple[str, str, str]


class TaxonomyError(ValueError):
    """The taxonomy file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class CategoryMatch:
    path: Path3 | None
    source: str  # "model" | "mapped" | "unmapped"
    similarity: float
    query: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": list(self.path) if self.path else None,
            "source": self.source,
            "similarity": round(float(self.similarity), 4),
            "query": self.query,
        }


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise TaxonomyError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_strict(path: Path) -> Any:
    """Parse a YAML file, refusing duplicate keys. Shared with the vocabulary loader."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except TaxonomyError as exc:
        raise TaxonomyError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path}: not valid YAML: {exc}") from None


def normalise(text: str) -> str:
    text = text.lower().replace("&", " and ")
    text = re.sub(r"[^\w]+", " ", text)
    return " ".join(text.split())


def _ngrams(text: str) -> Counter[str]:
    norm = normalise(text)
    grams: Counter[str] = Counter()
    for word in norm.split():
        padded = f" {word} "
        if len(padded) <= NGRAM:
            grams[padded] += 1
        for i in range(len(padded) - NGRAM + 1):
            grams[padded[i : i + NGRAM]] += 1
    return grams


class _TfIdf:
    """Character n-gram TF-IDF over a fixed set of names; cosine similarity between any two texts."""

    def __init__(self, documents: Sequence[str]) -> None:
        df: Counter[str] = Counter()
        for doc in documents:
            df.update(set(_ngrams(doc)))
        n = len(documents)
        self._idf = {g: math.log((1 + n) / (1 + c)) + 1.0 for g, c in df.items()}
        self._unseen_idf = math.log(1 + n) + 1.0

    def vector(self, text: str) -> dict[str, float]:
        grams = _ngrams(text)
        vec = {g: (1 + math.log(c)) * self._idf.get(g, self._unseen_idf) for g, c in grams.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {g: v / norm for g, v in vec.items()}

    @staticmethod
    def cosine(a: dict[str, float], b: dict[str, float]) -> float:
        if len(a) > len(b):
            a, b = b, a
        return sum(v * b.get(g, 0.0) for g, v in a.items())


@dataclass(frozen=True)
class Taxonomy:
    version: str
    tree: dict[str, dict[str, tuple[str, ...]]]
    source: str = ""
    min_similarity: float = DEFAULT_MIN_SIMILARITY

    @cached_property
    def paths(self) -> list[Path3]:
        return [(l1, l2, l3) for l1, level2 in self.tree.items() for l2, leaves in level2.items() for l3 in leaves]

    @property
    def level1(self) -> list[str]:
        return list(self.tree)

    def is_valid(self, path: Sequence[str]) -> bool:
        return self._canonical(path) is not None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "source": self.source,
                "categories": {l1: {l2: list(l3) for l2, l3 in v.items()} for l1, v in self.tree.items()}}

    def prompt_listing(self, max_leaves: int | None = None) -> str:
        """The valid paths as ``l1 > l2 > l3`` lines, for a model prompt."""
        lines = [" > ".join(p) for p in self.paths]
        return "\n".join(lines[:max_leaves] if max_leaves else lines)

    # --- mapping -------------------------------------------------------------------------------
    @cached_property
    def _exact(self) -> dict[tuple[str, ...], Path3]:
        return {tuple(normalise(x) for x in p): p for p in self.paths}

    @cached_property
    def _tfidf(self) -> _TfIdf:
        names = {x for p in self.paths for x in p}
        return _TfIdf(sorted(names) + [" ".join(p) for p in self.paths])

    @cached_property
    def _path_vectors(self) -> list[tuple[dict[str, float], ...]]:
        tf = self._tfidf
        cache: dict[str, dict[str, float]] = {}

        def vec(text: str) -> dict[str, float]:
            if text not in cache:
                cache[text] = tf.vector(text)
            return cache[text]

        return [(vec(a), vec(b), vec(c), vec(f"{a} {b} {c}")) for a, b, c in self.paths]

    def _canonical(self, path: Sequence[str]) -> Path3 | None:
        return self._exact.get(tuple(normalise(x) for x in path)) if len(path) == 3 else None

    def map_to_taxonomy(self, category: Sequence[str] | str | None) -> CategoryMatch:
        """Map a model's category (``[l1, l2, l3]``, a shorter list, or free text) to a valid path."""
        if category is None:
            return CategoryMatch(None, UNMAPPED, 0.0, "")
        if isinstance(category, str):
            parts = [p for p in re.split(r"\s*(?:>|/|\|)\s*", category) if p.strip()]
            levels = parts if len(parts) in (2, 3) else None
            query = category
        else:
            levels = [str(x) for x in category if x is not None and str(x).strip()]
            query = " > ".join(levels)
            if not levels:
                return CategoryMatch(None, UNMAPPED, 0.0, query)
        if levels and len(levels) == 3 and (exact := self._canonical(levels)):
            return CategoryMatch(exact, MODEL, 1.0, query)

        tf = self._tfidf
        scores: list[float] = []
        if levels and len(levels) in (2, 3):
            qv = [tf.vector(x) for x in levels]
            for pv in self._path_vectors:
                if len(qv) == 3:
                    scores.append(sum(w * tf.cosine(q, t) for w, q, t in zip(LEVEL_WEIGHTS, qv, pv[:3], strict=True)))
                else:  # two levels: either (l1, l2) or (l2, l3), whichever fits better
                    scores.append(max(TWO_LEVEL_WEIGHTS[0] * tf.cosine(qv[0], a) + TWO_LEVEL_WEIGHTS[1] * tf.cosine(qv[1], b)
                                      for a, b in ((pv[0], pv[1]), (pv[1], pv[2]))))
        else:
            qtext = tf.vector(" ".join(levels) if levels else query)
            for pv in self._path_vectors:
                scores.append(max(tf.cosine(qtext, pv[3]), tf.cosine(qtext, pv[2])))
        best = max(range(len(scores)), key=scores.__getitem__)
        similarity = float(scores[best])
        if similarity < self.min_similarity:
            return CategoryMatch(None, UNMAPPED, similarity, query)
        return CategoryMatch(self.paths[best], MAPPED, similarity, query)


def default_taxonomy_path() -> Path:
    return Path(str(resources.files("tiktok_assets") / "data" / "taxonomy.yaml"))


def _names(value: Any, where: str, file: Path) -> None:
    if not isinstance(value, str) or not value.strip():
        raise TaxonomyError(f"{file}: {where}: a category name must be a non-empty string, got {value!r}")


def parse_taxonomy(data: Any, source: Path, min_similarity: float = DEFAULT_MIN_SIMILARITY) -> Taxonomy:
    if not isinstance(data, dict):
        raise TaxonomyError(f"{source}: expected a mapping with `version` and `categories`")
    version = data.get("version")
    if version is None or not str(version).strip():
        raise TaxonomyError(f"{source}: missing `version`")
    categories = data.get("categories")
    if not isinstance(categories, dict) or not categories:
        raise TaxonomyError(f"{source}: `categories` must be a non-empty mapping of level-1 names")
    tree: dict[str, dict[str, tuple[str, ...]]] = {}
    for l1, level2 in categories.items():
        _names(l1, "level 1", source)
        if not isinstance(level2, dict) or not level2:
            raise TaxonomyError(f"{source}: level 1 {l1!r} has no level-2 categories (missing level 2)")
        tree[l1] = {}
        for l2, leaves in level2.items():
            _names(l2, f"{l1} > level 2", source)
            if not isinstance(leaves, list) or not leaves:
                raise TaxonomyError(f"{source}: {l1} > {l2} has no level-3 leaves (missing level 3)")
            seen: set[str] = set()
            for leaf in leaves:
                _names(leaf, f"{l1} > {l2} > level 3", source)
                key = normalise(leaf)
                if key in seen:
                    raise TaxonomyError(f"{source}: duplicate leaf {leaf!r} under {l1} > {l2}")
                seen.add(key)
            tree[l1][l2] = tuple(str(x).strip() for x in leaves)
    _check_sibling_duplicates(tree, source)
    return Taxonomy(version=str(version), tree=tree, source=str(source), min_similarity=min_similarity)


def _check_sibling_duplicates(tree: dict[str, dict[str, tuple[str, ...]]], source: Path) -> None:
    l1_seen: dict[str, str] = {}
    for l1, level2 in tree.items():
        if normalise(l1) in l1_seen:
            raise TaxonomyError(f"{source}: duplicate level-1 {l1!r} (same as {l1_seen[normalise(l1)]!r})")
        l1_seen[normalise(l1)] = l1
        l2_seen: dict[str, str] = {}
        for l2 in level2:
            if normalise(l2) in l2_seen:
                raise TaxonomyError(f"{source}: duplicate level-2 {l2!r} under {l1}")
            l2_seen[normalise(l2)] = l2


def load_taxonomy(path: str | Path | None = None, min_similarity: float = DEFAULT_MIN_SIMILARITY) -> Taxonomy:
    """Load and validate a taxonomy file (the packaged default when ``path`` is None)."""
    file = Path(path) if path else default_taxonomy_path()
    if not file.is_file():
        raise TaxonomyError(f"taxonomy file not found: {file}")
    return parse_taxonomy(load_yaml_strict(file), file, min_similarity)


# --- content type and target audience ---------------------------------------------------------------
# Short names, matched by whole words rather than by character n-grams: on names this short, n-grams take
# "car owners" for "pet owners" and "makeup enthusiasts" for "tech enthusiasts".
LABEL_LISTS = ("content_type", "target_audience")


def _word_key(text: str) -> tuple[str, ...]:
    """The words of ``text``, normalised, each without a plural ``s`` ("Reviews" and "review" are one key)."""
    return tuple(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
                 for w in normalise(text).split())


@dataclass(frozen=True)
class LabelMatch:
    label: str | None  # a value of the list, or None (left empty)
    source: str  # "model" (a value as answered) | "mapped" (a synonym, or a value or synonym among its words)
    similarity: float  # share of the answer's words the matched name covers (1.0: all of it)
    query: str = ""  # what the model answered

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "source": self.source, "similarity": round(float(self.similarity), 4),
                "query": self.query}


@dataclass(frozen=True)
class LabelList:
    """One closed list of values (e.g. content types), each with synonyms that map onto it.

    An answer is kept when it is a value (case, spacing, punctuation, `&`/`and` and a plural ``s`` ignored)
    -> ``model``; mapped to its value when it is a synonym, when it is one written without spaces
    ("un-boxing"), or when it holds a value or synonym as whole words ("unboxing video") -> ``mapped``: the
    longest such name wins, and a tie between two values leaves the answer ``unmapped``, as does no match."""

    name: str
    synonyms: dict[str, tuple[str, ...]]  # value -> its synonyms

    @property
    def values(self) -> list[str]:
        return list(self.synonyms)

    @cached_property
    def _keys(self) -> dict[tuple[str, ...], str]:
        """word key of every value and synonym -> its value."""
        keys = {_word_key(value): value for value in self.synonyms}
        keys.update({_word_key(s): value for value, synonyms in self.synonyms.items() for s in synonyms})
        return keys

    def map(self, answer: Any) -> LabelMatch:
        """Constrain a model's answer (a string, or a list whose first mappable string is taken) to the list."""
        if isinstance(answer, list):
            matches = [self.map(a) for a in answer if isinstance(a, str)]
            return next((m for m in matches if m.label),
                        LabelMatch(None, UNMAPPED, 0.0, " | ".join(m.query for m in matches)))
        if not isinstance(answer, str):
            return LabelMatch(None, UNMAPPED, 0.0, "" if answer is None else str(answer))
        words = _word_key(answer)
        if not words:
            return LabelMatch(None, UNMAPPED, 0.0, answer)
        if words in self._keys:
            value = self._keys[words]
            return LabelMatch(value, MODEL if words == _word_key(value) else MAPPED, 1.0, answer)
        joined = {"".join(key): value for key, value in self._keys.items()}
        if "".join(words) in joined:
            return LabelMatch(joined["".join(words)], MAPPED, 1.0, answer)
        found = [(len(key), value) for key, value in self._keys.items()
                 if any(words[i:i + len(key)] == key for i in range(len(words) - len(key) + 1))]
        longest = max((n for n, _ in found), default=0)
        values = {value for n, value in found if n == longest}
        if len(values) != 1:  # nothing found, or two values as good as each other
            return LabelMatch(None, UNMAPPED, 0.0, answer)
        return LabelMatch(values.pop(), MAPPED, longest / len(words), answer)

    def prompt_listing(self) -> str:
        return ", ".join(self.values)


@dataclass(frozen=True)
class ContentLabels:
    version: str
    content_type: LabelList
    target_audience: LabelList
    source: str = ""


def default_content_labels_path() -> Path:
    return Path(str(resources.files("tiktok_assets") / "data" / "content_labels.yaml"))


def _label_list(name: str, data: Any, source: Path) -> LabelList:
    if not isinstance(data, dict) or not data:
        raise TaxonomyError(f"{source}: `{name}` must be a non-empty mapping of value -> [synonyms]")
    seen: dict[str, str] = {}
    synonyms: dict[str, tuple[str, ...]] = {}
    for value, names in data.items():
        _names(value, f"{name} value", source)
        if not isinstance(names, list):
            raise TaxonomyError(f"{source}: {name} > {value}: synonyms must be a list (may be empty), got {names!r}")
        for written in [value, *names]:
            _names(written, f"{name} > {value} synonym", source)
            key = " ".join(_word_key(written))
            if key in seen:
                raise TaxonomyError(f"{source}: {name}: {written!r} is listed twice (also under {seen[key]!r})")
            seen[key] = value
        synonyms[value.strip()] = tuple(str(s).strip() for s in names)
    return LabelList(name, synonyms)


def load_content_labels(path: str | Path | None = None) -> ContentLabels:
    """Load and validate the content type and target audience lists (the packaged ones when ``path`` is None)."""
    file = Path(path) if path else default_content_labels_path()
    if not file.is_file():
        raise TaxonomyError(f"content labels file not found: {file}")
    data = load_yaml_strict(file)
    if not isinstance(data, dict):
        raise TaxonomyError(f"{file}: expected a mapping with `version`, {' and '.join(f'`{n}`' for n in LABEL_LISTS)}")
    version = data.get("version")
    if version is None or not str(version).strip():
        raise TaxonomyError(f"{file}: missing `version`")
    lists = {name: _label_list(name, data.get(name), file) for name in LABEL_LISTS}
    return ContentLabels(str(version), lists["content_type"], lists["target_audience"], str(file))
