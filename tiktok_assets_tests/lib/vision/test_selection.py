"""Representative frame selection on constructed embeddings, object aggregation, mean embedding."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from tiktok_assets.lib.vision.selection import (
    FEW_FRAMES,
    NO_FRAMES,
    OK,
    aggregate_objects,
    frame_budget,
    mean_embedding,
    relevance_scores,
    select_representative,
)

D = 16


@dataclass
class Det:
    label: str
    confidence: float
    is_product: bool


def unit(*pairs: tuple[int, float]) -> np.ndarray:
    v = np.zeros(D, dtype=np.float32)
    for i, x in pairs:
        v[i] = x
    return v / np.linalg.norm(v)


PROMPTS = np.stack([unit((0, 1.0)), unit((1, 1.0))])  # two "product prompts"


def run(embs, detections=None, times=None):
    n = len(embs)
    times = times or [float(i) for i in range(n)]
    files = [f"second_{t:08.3f}s.jpg" for t in times]
    return select_representative(times, files, np.stack(embs) if n else np.zeros((0, D)), PROMPTS, detections)


@pytest.mark.parametrize("n, k", [(0, 0), (1, 1), (2, 2), (4, 2), (6, 2), (7, 3), (12, 3), (13, 4), (20, 4),
                                  (21, 5), (60, 5), (500, 5)])
def test_frame_budget_sqrt_rule(n, k):
    assert frame_budget(n) == k


def test_relevance_is_min_max_normalised():
    embs = np.stack([unit((0, 1.0)), unit((0, 1.0), (5, 1.0)), unit((5, 1.0))])
    rel = relevance_scores(embs, PROMPTS)
    assert rel[0] == pytest.approx(1.0) and rel[2] == pytest.approx(0.0) and 0 < rel[1] < 1
    assert np.all(relevance_scores(np.stack([unit((5, 1.0))] * 3), PROMPTS) == 0)


def test_relevance_wins():
    # 9 candidates -> k = 3; frames 2 and 6 look like products, the rest are unrelated but distinct.
    embs = [unit((4 + i, 1.0)) for i in range(9)]
    embs[2] = unit((0, 1.0), (4 + 2, 0.3))
    embs[6] = unit((1, 1.0), (4 + 6, 0.3))
    selection = run(embs)
    assert selection.status == OK and selection.k == 3 and len(selection.frames) == 3
    picked = [f.index for f in selection.frames]
    assert 2 in picked and 6 in picked
    assert selection.timestamps == sorted(selection.timestamps)


def test_product_detections_add_a_bonus():
    embs = [unit((4 + i, 1.0)) for i in range(4)]  # no relevance signal at all -> k = 2
    detections = [[], [Det("person", 0.9, False)], [Det("sneaker", 0.8, True), Det("person", 0.9, False)], []]
    selection = run(embs, detections)
    chosen = [f for f in selection.frames if f.index == 2]
    assert chosen and chosen[0].detection_bonus == pytest.approx(0.5 * 0.8)
    assert all(f.detection_bonus == 0 for f in selection.frames if f.index != 2)


def test_near_duplicates_are_not_both_picked():
    # Frames 0 and 1 are near-identical and the most relevant; frame 3 is less relevant but different.
    embs = [unit((0, 1.0)), unit((0, 1.0), (9, 0.02)), unit((8, 1.0)), unit((0, 0.6), (1, 0.8), (10, 0.9))]
    selection = run(embs)
    picked = {f.index for f in selection.frames}
    assert len(picked) == 2
    assert not {0, 1} <= picked
    assert 3 in picked


def test_only_duplicates_gives_few_frames():
    embs = [unit((0, 1.0), (9, 0.001 * i)) for i in range(5)]
    selection = run(embs)
    assert len(selection.frames) == 1
    assert selection.status == FEW_FRAMES


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 15, 30, 61])
def test_two_to_five_rule(n):
    rng = np.random.default_rng(n)
    embs = list(rng.normal(size=(n, D)).astype(np.float32))
    selection = run(embs)
    if n == 0:
        assert selection.status == NO_FRAMES and selection.frames == []
    elif n == 1:
        assert selection.status == FEW_FRAMES and len(selection.frames) == 1
    else:
        assert selection.status == OK and 2 <= len(selection.frames) <= 5
        assert len(selection.frames) == frame_budget(n)
    assert len({f.index for f in selection.frames}) == len(selection.frames)
    json.dumps(selection.to_json())


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError):
        select_representative([0.0, 1.0], ["a.jpg"], np.zeros((2, D)), PROMPTS)


def test_aggregate_objects():
    detections = [
        [Det("sneaker", 0.9, True), Det("sneaker", 0.7, True), Det("person", 0.8, False)],
        [Det("person", 0.6, False)],
        [],
        [Det("sneaker", 0.5, True), Det("handbag", 0.4, True)],
    ]
    summary = aggregate_objects(detections)
    assert summary.counts == {"person": 2, "sneaker": 2, "handbag": 1}
    assert summary.top_string(2) == "person:2;sneaker:2"
    assert summary.product_frame_ratio == pytest.approx(0.5)
    assert aggregate_objects([]).product_frame_ratio == 0.0
    json.dumps(summary.to_json())


def test_mean_embedding():
    embs = np.stack([unit((0, 1.0)), unit((1, 1.0))]) * 3
    mean = mean_embedding(embs)
    assert np.linalg.norm(mean) == pytest.approx(1.0)
    assert mean[0] == pytest.approx(mean[1])
    assert mean_embedding(np.zeros((0, D))) is None


def test_picks_prefer_covering_different_shots():
    """Two strong frames of shot 0 and a weaker one of shot 1: without shots MMR takes both strong
    frames; knowing the shots, the second pick covers shot 1."""
    embs = [unit((0, 1.0), (2, 0.2)), unit((0, 1.0), (3, 0.45)), unit((1, 0.6), (4, 1.0)), unit((5, 1.0))]
    times, files = [0.0, 1.0, 2.0, 3.0], [f"f{i}.jpg" for i in range(4)]
    plain = select_representative(times, files, np.stack(embs), PROMPTS)
    by_shot = select_representative(times, files, np.stack(embs), PROMPTS, shots=[0, 0, 1, 1])
    assert [f.index for f in plain.frames] == [0, 1]
    assert [f.index for f in by_shot.frames] == [0, 2]
    with pytest.raises(ValueError):
        select_representative(times, files, np.stack(embs), PROMPTS, shots=[0, 1])
