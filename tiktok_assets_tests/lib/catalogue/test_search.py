"""`search`'s ranking: BM25 over the transcript and the on-screen text (each read only when its stage ran),
and reciprocal rank fusion with a second ranking."""

from __future__ import annotations

import pytest

from tiktok_assets.lib import atomic
from tiktok_assets.lib.catalogue.search import RRF_K, fuse, search, video_text
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.status import FAILED, OK, StageStatus, write_status
from tiktok_assets.lib.vision.ocr import MergeConfig, OnscreenText, TextLine, write_onscreen_text


def spoken(layout: DataLayout, key: str, text: str, status: str = OK) -> None:
    video = layout.video(key)
    atomic.write_json(video.transcript_json, {"text": text})
    write_status(video, StageStatus("transcript", status, 1.0))


def shown(layout: DataLayout, key: str, lines: list[str]) -> None:
    video = layout.video(key)
    document = OnscreenText([TextLine(t, float(i), float(i), 0.9, (0.1, 0.1, 0.9, 0.2), 1) for i, t in enumerate(lines)],
                            [], MergeConfig())
    write_onscreen_text(video.onscreen_text_json, document)
    write_status(video, StageStatus("onscreen_text", OK, 1.0))


@pytest.fixture()
def layout(tmp_path) -> DataLayout:
    layout = DataLayout(tmp_path / "data")
    spoken(layout, "serum", "This serum makes your skin glow in one week.")
    shown(layout, "sale", ["SERUM SALE", "50% off today"])
    spoken(layout, "headphones", "Check out this new wireless headphone. The sound is amazing.")
    spoken(layout, "stale", "serum serum serum", status=FAILED)  # a failed run's leftovers are not read
    return layout


def test_the_words_are_the_transcript_and_the_onscreen_text_where_their_stages_ran(layout):
    assert video_text(layout.video("sale")) == "SERUM SALE 50% off today"
    assert video_text(layout.video("stale")) == ""


def test_bm25_ranks_the_videos_that_say_or_show_the_words(layout):
    keys = ["serum", "sale", "headphones", "stale"]
    hits = search(layout, keys, "serum sale")
    assert [h.key for h in hits] == ["sale", "serum"]  # both words beat one; no other video has either
    assert hits[0].words > hits[1].words > 0 and all(h.clip is None for h in hits)
    assert search(layout, keys, "wireless headphones")[0].key == "headphones"
    assert search(layout, keys, "the") == []  # a stop word matches nothing


def test_reciprocal_rank_fusion():
    fused = fuse([{"a": 3.0, "b": 1.0}, {"b": 0.9, "c": 0.2}])
    assert fused == {"a": 1 / (RRF_K + 1), "b": 1 / (RRF_K + 2) + 1 / (RRF_K + 1), "c": 1 / (RRF_K + 2)}
