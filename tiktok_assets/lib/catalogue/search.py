"""`tiktok-assets search "text"`: rank videos for a text query.

- **words**: BM25 (bm25s, English stop words) over each video's transcript and on-screen text, where
  those stages ran.
- **pictures**, when a CLIP model is given: the cosine of the query's CLIP text embedding with the
  embeddings of the video's representative frames (the best frame), for videos whose frames that same
  model encoded.

The two rankings are fused by reciprocal rank (each list contributes 1 / (60 + rank)), so neither
score's scale has to be comparable with the other's; a video only the pictures rank still shows, with
no word score. A video nothing matches (no query word, no CLIP) is not listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import bm25s
import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.layout import DataLayout, VideoLayout
from tiktok_assets.lib.status import read_status, stage_done
from tiktok_assets.lib.vision.multimodal import EMBEDDINGS_DIR, TIMESTAMPS_JSON
from tiktok_assets.lib.vision.ocr import read_onscreen_text

RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al., 2009)
STOPWORDS = "en"


class TextEncoder(Protocol):
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit:
    key: str
    score: float  # fused: sum of 1 / (RRF_K + rank) over the rankings the video is in
    words: float | None  # BM25 score (None: no query word in its text)
    clip: float | None  # best cosine of a representative frame with the query (None: no CLIP here)


def video_text(video: VideoLayout) -> str:
    """The transcript and the on-screen text, where their stages ran."""
    parts = []
    if stage_done(video, "transcript") and video.transcript_json.exists():
        parts.append(atomic.read_json(video.transcript_json).get("text", ""))
    if stage_done(video, "onscreen_text") and video.onscreen_text_json.exists():
        parts.append(read_onscreen_text(video.onscreen_text_json).text.replace(" | ", " "))
    return " ".join(p for p in parts if p)


def representative_embeddings(video: VideoLayout, clip_model: str) -> np.ndarray | None:
    """(n, d) CLIP embeddings of the representative frames, when ``clip_model`` encoded them."""
    status = read_status(video, "representative_frames")
    if status is None or not stage_done(video, "representative_frames") or status.model != clip_model:
        return None
    picked = {r["source_frame"] for r in atomic.read_json(video.representative_dir / TIMESTAMPS_JSON)["frames"]}
    folder = video.vision_dir / EMBEDDINGS_DIR
    vectors = [np.load(folder / e["embedding"]) for e in atomic.read_json(folder / "index.json")
               if e["frame"] in picked]
    return np.stack(vectors).astype(np.float32) if vectors else None


def word_scores(texts: dict[str, str], query: str) -> dict[str, float]:
    """BM25 of each video's text for the query's words; only videos with a score above 0."""
    keys = [k for k, text in texts.items() if text.strip()]
    words = bm25s.tokenize([query], stopwords=STOPWORDS, return_ids=False, show_progress=False)[0]
    if not keys or not words:
        return {}
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([texts[k] for k in keys], stopwords=STOPWORDS, show_progress=False),
                    show_progress=False)
    scores = retriever.get_scores(words)
    return {k: round(float(s), 4) for k, s in zip(keys, scores, strict=True) if s > 0}


def fuse(rankings: list[dict[str, float]]) -> dict[str, float]:
    """Reciprocal rank fusion of score lists (higher is better in each)."""
    fused: dict[str, float] = {}
    for scores in rankings:
        for rank, key in enumerate(sorted(scores, key=lambda k: (-scores[k], k)), 1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return fused


def search(layout: DataLayout, keys: list[str], query: str, n: int = 10,
           encoder: TextEncoder | None = None, clip_model: str | None = None) -> list[Hit]:
    """The ``n`` best videos among ``keys`` for ``query`` (with ``encoder``: CLIP ``clip_model``'s text
    encoder, the pictures too)."""
    videos = {key: layout.video(key) for key in keys}
    words = word_scores({key: video_text(video) for key, video in videos.items()}, query)
    pictures: dict[str, float] = {}
    if encoder is not None and clip_model is not None:
        embeddings = {key: e for key, video in videos.items()
                      if (e := representative_embeddings(video, clip_model)) is not None}
        if embeddings:
            text = encoder.encode_texts([query])[0].astype(np.float32)
            pictures = {key: round(float((e @ text).max()), 4) for key, e in embeddings.items()}
    fused = fuse([words, pictures] if pictures else [words])
    ranked = sorted(fused, key=lambda k: (-fused[k], k))[:n]
    return [Hit(k, round(fused[k], 6), words.get(k), pictures.get(k)) for k in ranked]
