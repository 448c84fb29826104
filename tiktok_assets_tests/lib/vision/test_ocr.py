"""On-screen text: the real RapidOCR weights (PP-OCRv4 ONNX from the rapidocr-onnxruntime package) on a clip
with captions drawn by ffmpeg, through the project's own frame extraction and filtering; the merging of
readings over frames; the resource's one-sentence reasons when the package or the weights are missing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tiktok_assets.defs.model_resources import OcrResource
from tiktok_assets.lib.media.frame_filter import DUPLICATE, FilterResult, filter_frames
from tiktok_assets.lib.media.frames import CandidateFrame, extract_video
from tiktok_assets.lib.models.manifest import CODE_MANIFEST, file_sha256, load_manifest
from tiktok_assets.lib.vision import ocr
from tiktok_assets.lib.vision.ocr import FrameLine, FrameText, MergeConfig, TextLine
from tiktok_assets_tests.lib.ocr_fixtures import CAPTIONS, caption_clip, cer

SAMPLING_S = 1.0  # candidate_frames takes one frame a second (plus I-frames, shot starts, highlights)


@pytest.fixture(scope="session")
def ocr_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's ONNX models, copied out as `tiktok-assets models pull rapidocr-ppocrv4` does."""
    return ocr.install_packaged_ocr(tmp_path_factory.mktemp("ocr") / "rapidocr-ppocrv4")


@dataclass
class ReadClip:
    document: ocr.OnscreenText
    filtered: FilterResult
    candidates: list[CandidateFrame]
    frames_dir: Path


@pytest.fixture(scope="module")
def read_clip(ocr_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> ReadClip:
    """The clip's candidate frames and filter verdicts (the pipeline's own code), and what OCR read."""
    folder = tmp_path_factory.mktemp("caption_clip")
    frames_dir = folder / "frames"
    frames_dir.mkdir()
    extraction = extract_video(caption_clip(folder / "clip.mp4"), frames_dir)
    filtered = filter_frames(extraction.frames, frames_dir, content_box=extraction.content_box)
    frames = [(f.time, frames_dir / f.file) for f in ocr.frames_to_read(filtered)]
    return ReadClip(ocr.ocr_frames(ocr.load_ocr(ocr_weights), frames), filtered, extraction.frames, frames_dir)


def test_both_captions_are_read_with_their_time_spans(read_clip):
    document = read_clip.document
    assert len(document.lines) == len(CAPTIONS), [line.text for line in document.lines]
    for line, (text, start, end) in zip(document.lines, CAPTIONS, strict=True):
        assert cer(text, line.text) <= 0.1, (text, line.text)
        assert abs(line.start - start) <= SAMPLING_S and abs(line.end - end) <= SAMPLING_S, (text, line)
        assert line.confidence > 0.8 and line.frames >= 3
        x1, y1, x2, y2 = line.box_xyxy_norm
        assert abs(y1 - 0.75) < 0.01 and 0.76 < y2 < 0.8  # drawn from y = 0.75 h, 40 px high
        assert abs((x1 + x2) / 2 - 0.5) < 0.02 and x2 - x1 > 0.5  # centred, most of the width
    assert document.text == " | ".join(line.text for line in document.lines)


def test_a_frame_without_text_gives_no_lines(read_clip, ocr_weights):
    last = [c for c in read_clip.candidates if c.time > CAPTIONS[-1][2] + 0.1]  # the last second has no caption
    assert last and all(ocr.load_ocr(ocr_weights).read(read_clip.frames_dir / c.file) == [] for c in last)


def test_caption_frames_the_duplicate_filter_dropped_are_read(read_clip):
    """The second caption replaces the first at the same place over a moving gradient: the whole-frame
    SSIM calls its frames near-duplicates, so reading only the kept frames would miss it."""
    document, filtered = read_clip.document, read_clip.filtered
    duplicates = {f.time for f in filtered.dropped if f.reason == DUPLICATE}
    second = [f for f in document.frames if CAPTIONS[1][1] <= f.time <= CAPTIONS[1][2]]
    assert second and {f.time for f in second} <= duplicates | {f.time for f in filtered.kept}
    assert all(f.lines for f in second)


def test_the_document_reads_back(read_clip, tmp_path):
    document = read_clip.document
    path = tmp_path / "onscreen_text.json"
    ocr.write_onscreen_text(path, document)
    again = ocr.read_onscreen_text(path)
    assert again.text == document.text and len(again.frames) == len(document.frames)
    assert [(x.start, x.end, x.frames) for x in again.lines] == [(x.start, x.end, x.frames) for x in document.lines]


def test_the_manifest_digests_are_those_of_the_packaged_models(ocr_weights):
    entry = next(e for e in load_manifest(CODE_MANIFEST) if e.name == "rapidocr-ppocrv4")
    assert entry.family == "ocr" and entry.license == "Apache-2.0" and entry.revision == "1.4.4"
    assert entry.sha256 == {name: file_sha256(ocr_weights / name) for name in ocr.MODEL_FILES}


# --- merging readings over frames --------------------------------------------------------------------

BOTTOM = (0.1, 0.75, 0.9, 0.78)
TOP = (0.1, 0.15, 0.9, 0.18)


def frame(time: float, *lines: tuple[str, tuple[float, float, float, float]]) -> FrameText:
    return FrameText(time, f"{time:.3f}.jpg", [FrameLine(text, 0.9, box) for text, box in lines])


def spans(lines: list[TextLine]) -> list[tuple[str, float, float, int]]:
    return [(x.text, x.start, x.end, x.frames) for x in lines]


def test_the_same_caption_on_consecutive_frames_is_one_line_with_its_most_frequent_text():
    frames = [frame(0, ("50% OFF", BOTTOM)), frame(1, ("50%OFF", BOTTOM)), frame(2, ("50% OFF", BOTTOM))]
    assert spans(ocr.merge_lines(frames)) == [("50% OFF", 0, 2, 3)]


def test_different_text_or_another_place_is_another_line():
    frames = [frame(0, ("NEW HEADPHONES", BOTTOM), ("SALE", TOP)),
              frame(1, ("50% OFF TODAY", BOTTOM), ("NEW HEADPHONES", TOP))]
    assert spans(ocr.merge_lines(frames)) == [
        ("SALE", 0, 0, 1), ("NEW HEADPHONES", 0, 0, 1), ("NEW HEADPHONES", 1, 1, 1), ("50% OFF TODAY", 1, 1, 1)]


def test_a_caption_missed_on_one_frame_continues_but_not_after_a_longer_gap():
    frames = [frame(0, ("SALE", BOTTOM)), frame(1), frame(2, ("SALE", BOTTOM)), frame(3), frame(4), frame(5, ("SALE", BOTTOM))]
    assert spans(ocr.merge_lines(frames)) == [("SALE", 0, 2, 2), ("SALE", 5, 5, 1)]
    assert spans(ocr.merge_lines(frames, MergeConfig(max_gap_frames=0))) == [
        ("SALE", 0, 0, 1), ("SALE", 2, 2, 1), ("SALE", 5, 5, 1)]


# --- the resource -------------------------------------------------------------------------------------


def test_missing_weights_and_missing_package_are_one_sentence(tmp_path, ocr_weights, monkeypatch):
    assert OcrResource(models_dir=str(tmp_path)).missing().count("tiktok-assets models pull rapidocr-ppocrv4") == 1
    assert OcrResource(model=str(ocr_weights)).missing() is None
    monkeypatch.setattr(ocr, "package_available", lambda: False)
    reason = OcrResource(model=str(ocr_weights)).missing()
    assert reason == ("Python package 'rapidocr-onnxruntime' is not installed: pip install 'tiktok-assets[vision]' "
                      "(or rapidocr-onnxruntime==1.4.4).")
