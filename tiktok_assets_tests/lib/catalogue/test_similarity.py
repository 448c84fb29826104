"""Near-duplicate groups on real clips: a photo clip (scikit-image's astronaut, slowly zoomed, with an
espeak-ng narration), re-encoded at another size and bitrate, with another soundtrack, and trimmed by 1 s,
against five unrelated clips (other photographs, a cellular-automaton pattern). Signatures come from the
project's own frame extraction, frame filter and Chromaprint, as the stage computes them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tiktok_assets.lib.audio.audio import extract_wav
from tiktok_assets.lib.audio.music import SAME_SOUNDTRACK, fingerprint
from tiktok_assets.lib.catalogue import similarity
from tiktok_assets.lib.catalogue.similarity import Signature, SimilarityStore, compare
from tiktok_assets.lib.media.frame_filter import filter_frames
from tiktok_assets.lib.media.frames import extract_video
from tiktok_assets.lib.samples import ARPEGGIO, MUSIC_EXPR, make_clip

COPIES = ["reencoded", "new_soundtrack", "trimmed"]
UNRELATED = {
    "coffee": ("skimage/data/coffee.png", "This coffee cup is my favorite."),
    "cat": ("skimage/data/chelsea.png", "Meet my cat. She sleeps all day."),
    "motorcycle": ("skimage/data/motorcycle_left.png", "This red motorcycle is ready for a ride."),
    "bus": ("ultralytics/assets/bus.jpg", "People walk past a city bus."),
    "pattern": ("cellauto", "Five tips for a tidy desk."),
}
SIZE = {"width": 360, "height": 640, "duration": 4.0}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True)


def make_copies(original: Path, folder: Path) -> dict[str, Path]:
    paths = {name: folder / f"{name}.mp4" for name in COPIES}
    ffmpeg("-i", str(original), "-vf", "scale=270:480", "-c:v", "libx264", "-b:v", "150k", "-c:a", "aac",
           "-b:a", "48k", str(paths["reencoded"]))
    music = MUSIC_EXPR.replace("F", ARPEGGIO)
    ffmpeg("-i", str(original), "-f", "lavfi", "-i", f"aevalsrc='{music}':s=44100:d={SIZE['duration']}",
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(paths["new_soundtrack"]))
    ffmpeg("-ss", "1", "-i", str(original), "-c:v", "libx264", "-c:a", "aac", str(paths["trimmed"]))
    return paths


def signature_of(key: str, clip: Path, work: Path) -> Signature:
    """Kept frames (the project's decode + filter) -> frame hashes; the 16 kHz track -> Chromaprint."""
    frames = work / key
    frames.mkdir()
    extraction = extract_video(clip, frames)
    kept = filter_frames(extraction.frames, frames, content_box=extraction.content_box,
                         shots=extraction.shots.shots).kept
    extract_wav(clip, work / f"{key}.wav")
    prints = fingerprint(work / f"{key}.wav", shazam=False).chromaprint
    return Signature.build(key, similarity.frame_hashes([frames / f.file for f in kept]), prints)


@pytest.fixture(scope="module")
def signatures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Signature]:
    folder = tmp_path_factory.mktemp("similarity_clips")
    original = folder / "original.mp4"
    make_clip(original, source="skimage/data/astronaut.png", speech_text="An astronaut gets ready for her mission.",
              **SIZE)
    clips = {"original": original, **make_copies(original, folder)}
    for name, (source, text) in UNRELATED.items():
        clips[name] = folder / f"{name}.mp4"
        make_clip(clips[name], source=source, speech_text=text, **{**SIZE, "duration": 3.0})
    work = folder / "work"
    work.mkdir()
    return {key: signature_of(key, clip, work) for key, clip in clips.items()}


def fill(store: SimilarityStore, signatures: dict[str, Signature], keys: list[str]) -> dict[str, similarity.AddResult]:
    return {key: store.add(signatures[key]) for key in keys}


ORDER = ["original", "coffee", "reencoded", "cat", "motorcycle", "new_soundtrack", "bus", "pattern", "trimmed"]


def test_each_copy_is_grouped_with_the_original_and_unrelated_clips_are_not(signatures, tmp_path):
    with SimilarityStore(tmp_path / "similarity") as store:
        results = fill(store, signatures, ORDER)
        groups = {key: store.group_of(key) for key in ORDER}
    assert {groups[k] for k in ["original", *COPIES]} == {"original"}, groups
    assert all(groups[k] == k for k in UNRELATED), groups  # each alone: its own key
    assert {m.key for m in results["trimmed"].duplicates} == {"original", *COPIES} - {"trimmed"}


def test_the_signals_that_match(signatures):
    original = signatures["original"]
    reencoded, new_sound, trimmed = (compare(original, signatures[k]) for k in COPIES)
    # Frames: every kept frame of each copy (the shorter side) has a near-identical frame in the original.
    assert reencoded.visual == new_sound.visual == trimmed.visual == 1.0
    # Soundtrack: the same narration (re-encoded or 1 s later) matches; the music bed does not.
    assert reencoded.audio >= SAME_SOUNDTRACK and trimmed.audio >= SAME_SOUNDTRACK
    assert new_sound.audio < 0.5 and new_sound.matched() == ["visual"]
    for key in UNRELATED:
        other = compare(original, signatures[key])
        assert other.visual == 0.0 and other.audio < 0.5 and not other.duplicate, (key, other)
        d = similarity.hamming(original.hashes, signatures[key].hashes)
        assert d.min() > similarity.FRAME_MATCH_BITS, key  # no frame of another picture is near


def test_a_new_video_is_compared_with_its_nearest_neighbours_only(signatures, tmp_path):
    with SimilarityStore(tmp_path / "similarity", k=1) as store:
        fill(store, signatures, ORDER[:-1])
        frames_before = store.indexed_frames
        videos_before = len(store)
        trimmed = store.add(signatures["trimmed"])
        # One neighbour per frame hash: at most as many videos compared as the clip has frames, found
        # through the index (the three earlier copies of the original), never the whole catalogue.
        assert trimmed.compared <= len(signatures["trimmed"].hashes) * store.k < videos_before
        assert trimmed.group == "original"
        assert len(store) == videos_before + 1
        assert store.indexed_frames == frames_before + len(signatures["trimmed"].hashes)
        # An unrelated video has no neighbour near enough: nothing to compare.
        assert store.add(Signature.build("cat_again", signatures["cat"].hashes[:0])).compared == 0


def test_another_process_sees_the_groups_and_the_index(signatures, tmp_path):
    folder = tmp_path / "similarity"
    first, second = SimilarityStore(folder), SimilarityStore(folder)  # e.g. two run workers
    first.add(signatures["original"])
    first.add(signatures["coffee"])
    assert second.add(signatures["trimmed"]).group == "original"  # found what `first` added (synced under the lock)
    first.close()
    second.close()
    with SimilarityStore(folder) as reopened:  # a later run: the saved indexes + the database
        assert reopened.indexed_frames == sum(len(signatures[k].hashes) for k in ("original", "coffee", "trimmed"))
        assert reopened.add(signatures["reencoded"]).group == "original"
        assert reopened.group_of("coffee") == "coffee"
    (folder / "similarity.sqlite3").unlink()  # the database lost: the saved indexes cover rows it no longer has
    with SimilarityStore(folder) as fresh:
        assert fresh.indexed_frames == 0
        assert fresh.add(signatures["original"]).duplicates == []
        assert fresh.add(signatures["trimmed"]).group == "original"


def test_rerunning_a_video_keeps_its_group_and_forgetting_it_regroups_the_rest(signatures, tmp_path):
    changes: list[dict[str, str]] = []
    with SimilarityStore(tmp_path / "similarity", on_regroup=changes.append) as store:
        fill(store, signatures, ["original", *COPIES, "bus"])
        again = store.add(signatures["original"])  # the stage ran again for the same video
        assert again.group == "original" and again.regrouped == {} and changes == []
        changed = store.forget(["original"])  # `tiktok-assets remove`
        # The copies matched each other too: they stay one group, now named by the first of them.
        assert changed == dict.fromkeys(COPIES, "reencoded") and changes == [changed]
        assert store.group_of("original") is None and store.group_of("bus") == "bus"
        assert [m.key for m in store.similar("trimmed", n=2)] == ["reencoded", "new_soundtrack"]  # audio too


def test_similar_ranks_the_copies_first_and_says_which_signals_matched(signatures, tmp_path):
    with SimilarityStore(tmp_path / "similarity") as store:
        fill(store, signatures, ORDER)
        ranked = store.similar("original", n=len(ORDER))
        assert {m.key for m in ranked[:3]} == set(COPIES) and all(m.duplicate for m in ranked[:3])
        assert [m.score for m in ranked[:3]] == sorted((m.score for m in ranked[:3]), reverse=True)
        assert ranked[3:] and not any(m.duplicate or m.key == "original" for m in ranked[3:])
        by_key = {m.key: m for m in ranked}
        assert by_key["reencoded"].matched() == ["visual", "audio"]
        assert by_key["new_soundtrack"].matched() == ["visual"]
        # Only the keys allowed (e.g. the registered videos: a removed one is never shown).
        allowed = {"reencoded", ranked[-1].key}
        assert [m.key for m in store.similar("original", n=len(ORDER), allowed=allowed)] == \
            [m.key for m in ranked if m.key in allowed]


def test_a_perceptual_hash_survives_a_resize_and_changes_for_another_picture():
    rng = np.random.default_rng(0)

    def picture() -> np.ndarray:
        return cv2.GaussianBlur(rng.integers(0, 256, (480, 270)).astype(np.uint8), (0, 0), 12)

    first, second = picture(), picture()
    smaller = cv2.resize(first, (135, 240), interpolation=cv2.INTER_AREA)
    same = similarity.hamming(similarity.phash(first)[None], similarity.phash(smaller)[None])[0, 0]
    different = similarity.hamming(similarity.phash(first)[None], similarity.phash(second)[None])[0, 0]
    assert same <= 4 < similarity.FRAME_MATCH_BITS < different
