"""Representative frames, object summary and mean embedding of a video, from per-frame model outputs.

Frame selection (:func:`select_representative`), on the frames kept by ``frame_filter``:

- relevance: the max cosine similarity of a frame's CLIP image embedding to the product prompts'
  text embeddings, min-max normalised over the video's candidates to [0, 1] (all equal -> 0);
- score = relevance + ``detection_weight`` (0.5) x the highest confidence of a *product* detection
  in the frame (0 without one);
- how many: ``k = clamp(round(sqrt(n)), 2, 5)`` for n usable candidates (1-6 -> 2, 7-12 -> 3,
  13-20 -> 4, 21+ -> 5), never more than n;
- maximal marginal relevance: the best-scoring frame first, then repeatedly the frame maximising
  ``mmr_lambda * score - (1 - mmr_lambda) * max cosine to the frames already picked`` (0.7), so
  a near-copy of a picked frame loses to a different view; a frame whose cosine to a picked one
  is >= ``duplicate_cosine`` (0.99: near-identical; frame_filter already drops SSIM duplicates) is
  never picked, even if that leaves fewer than k;
- status: ``ok``; ``few_frames`` when fewer than 2 frames are usable or distinct (all of them are
  returned); ``no_frames`` when there are none. The picks are returned in time order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

OK = "ok"
FEW_FRAMES = "few_frames"
NO_FRAMES = "no_frames"

MIN_FRAMES = 2
MAX_FRAMES = 5


class DetectionLike(Protocol):
    label: str
    confidence: float
    is_product: bool


@dataclass(frozen=True)
class SelectionConfig:
    detection_weight: float = 0.5
    mmr_lambda: float = 0.7
    duplicate_cosine: float = 0.99
    same_shot_penalty: float = 0.2  # subtracted from a candidate whose shot already has a pick
    min_frames: int = MIN_FRAMES
    max_frames: int = MAX_FRAMES


@dataclass(frozen=True)
class SelectedFrame:
    index: int  # position in the candidate list given to select_representative
    time: float
    file: str
    score: float
    relevance: float
    detection_bonus: float

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "time": self.time, "file": self.file, "score": round(self.score, 4),
                "relevance": round(self.relevance, 4), "detection_bonus": round(self.detection_bonus, 4)}


@dataclass
class Selection:
    frames: list[SelectedFrame]
    status: str  # ok | few_frames | no_frames
    k: int  # how many were asked for by the sqrt rule
    candidates: int
    config: SelectionConfig = field(default_factory=SelectionConfig)

    @property
    def timestamps(self) -> list[float]:
        return [f.time for f in self.frames]

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "k": self.k, "candidates": self.candidates,
                "frames": [f.to_json() for f in self.frames],
                "config": {k: v for k, v in vars(self.config).items()}}


def frame_budget(n_candidates: int, config: SelectionConfig = SelectionConfig()) -> int:
    """``clamp(round(sqrt(n)), min_frames, max_frames)``, never more than ``n``."""
    if n_candidates <= 0:
        return 0
    k = min(max(math.floor(math.sqrt(n_candidates) + 0.5), config.min_frames), config.max_frames)
    return min(k, n_candidates)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def relevance_scores(image_embeddings: np.ndarray, prompt_embeddings: np.ndarray) -> np.ndarray:
    """Max cosine of each image to any prompt, min-max normalised to [0, 1] (constant -> zeros)."""
    if len(image_embeddings) == 0:
        return np.zeros(0, dtype=np.float32)
    raw = (l2_normalise(image_embeddings) @ l2_normalise(prompt_embeddings).T).max(axis=1)
    span = float(raw.max() - raw.min())
    return ((raw - raw.min()) / span).astype(np.float32) if span > 1e-9 else np.zeros_like(raw)


def product_confidence(detections: Sequence[DetectionLike]) -> float:
    return max((float(d.confidence) for d in detections if d.is_product), default=0.0)


def select_representative(
    times: Sequence[float],
    files: Sequence[str],
    image_embeddings: np.ndarray,
    prompt_embeddings: np.ndarray,
    detections: Sequence[Sequence[DetectionLike]] | None = None,
    config: SelectionConfig = SelectionConfig(),
    shots: Sequence[int | None] | None = None,
) -> Selection:
    """Pick 2-5 representative frames among candidates (one row of ``image_embeddings`` each).
    ``shots``: each candidate's shot; frames of shots without a pick yet are preferred."""
    n = len(times)
    if len(files) != n or len(image_embeddings) != n or (detections is not None and len(detections) != n) \
            or (shots is not None and len(shots) != n):
        raise ValueError("times, files, image_embeddings, detections and shots must have one entry per candidate")
    if n == 0:
        return Selection([], NO_FRAMES, 0, 0, config)
    emb = l2_normalise(image_embeddings)
    relevance = relevance_scores(emb, prompt_embeddings)
    bonus = np.array([config.detection_weight * product_confidence(d) for d in detections]
                     if detections is not None else np.zeros(n), dtype=np.float32)
    score = relevance + bonus
    k = frame_budget(n, config)
    similarity = emb @ emb.T

    picked: list[int] = [int(np.argmax(score))]
    while len(picked) < k:
        max_sim = similarity[:, picked].max(axis=1)
        mmr = config.mmr_lambda * score - (1 - config.mmr_lambda) * max_sim
        if shots is not None:
            covered = {shots[i] for i in picked if shots[i] is not None}
            mmr -= config.same_shot_penalty * np.array([s in covered for s in shots], dtype=np.float32)
        mmr[picked] = -np.inf
        mmr[max_sim >= config.duplicate_cosine] = -np.inf
        best = int(np.argmax(mmr))
        if not np.isfinite(mmr[best]):
            break  # only near-duplicates of picked frames are left
        picked.append(best)
    frames = [SelectedFrame(i, float(times[i]), str(files[i]), float(score[i]), float(relevance[i]), float(bonus[i]))
              for i in sorted(picked, key=lambda i: (times[i], i))]
    status = OK if len(frames) >= config.min_frames else FEW_FRAMES
    return Selection(frames, status, k, n, config)


@dataclass(frozen=True)
class ObjectSummary:
    counts: dict[str, int]  # label -> number of frames it was detected in, most frequent first
    product_frame_ratio: float  # frames with >= 1 product detection / frames analysed
    frames: int

    def top(self, n: int = 5) -> list[tuple[str, int]]:
        return list(self.counts.items())[:n]

    def top_string(self, n: int = 5) -> str:
        """``label:count;label:count`` for the table's ``objects_top`` column."""
        return ";".join(f"{label}:{count}" for label, count in self.top(n))

    def to_json(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "product_frame_ratio": round(self.product_frame_ratio, 4),
                "frames": self.frames}


def aggregate_objects(detections: Sequence[Sequence[DetectionLike]]) -> ObjectSummary:
    """Count, per label, the frames it appears in (a frame with 3 sneakers counts once)."""
    counts: Counter[str] = Counter()
    product_frames = 0
    for frame in detections:
        counts.update({d.label for d in frame})
        product_frames += any(d.is_product for d in frame)
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    ratio = product_frames / len(detections) if detections else 0.0
    return ObjectSummary(ordered, ratio, len(detections))


def mean_embedding(embeddings: np.ndarray) -> np.ndarray | None:
    """The L2-normalised mean of L2-normalised embeddings (None when there are none)."""
    if len(embeddings) == 0:
        return None
    return l2_normalise(l2_normalise(embeddings).mean(axis=0))
