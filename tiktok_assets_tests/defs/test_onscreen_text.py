"""onscreen_text through Dagster: the real asset definitions (video_metadata -> candidate_frames ->
filtered_frames -> onscreen_text -> video_features) with ``dg.materialize`` over two partitions in one run,
the real RapidOCR models; the table row's ocr_text / ocr_line_count, and the VLM prompt's on-screen text."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from tiktok_assets.defs.assets.frames import candidate_frames, filtered_frames
from tiktok_assets.defs.assets.metadata import video_metadata
from tiktok_assets.defs.assets.ocr import onscreen_text
from tiktok_assets.defs.assets.table import video_features
from tiktok_assets.defs.assets.vision import onscreen_text_of
from tiktok_assets.defs.model_resources import OcrResource
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.resources import ProjectPaths
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.vlm import build_prompt
from tiktok_assets.lib.vision import ocr
from tiktok_assets.lib.vision.taxonomy import load_taxonomy
from tiktok_assets_tests.lib.ocr_fixtures import CAPTIONS, caption_clip, cer

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
SHORT = [(text, 2 * i, 2 * i + 1) for i, (text, _, _) in enumerate(CAPTIONS)]  # the captions, 2 s apart: 4 s


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataLayout, dict[str, str], dg.ExecuteInProcessResult,
                                                            int]:
    """The caption clip and a clip without text, registered, and the stages up to the table in ONE run;
    the OCR model loads it took."""
    root = tmp_path_factory.mktemp("onscreen_text")
    layout = DataLayout(root / "data")
    layout.videos_dir.mkdir(parents=True)
    weights = ocr.install_packaged_ocr(root / "models" / "rapidocr-ppocrv4")
    caption_clip(layout.videos_dir / "captions.mp4", captions=SHORT, seconds=4)
    caption_clip(layout.videos_dir / "plain.mp4", captions=[], seconds=2)
    keys = {name: registry.register(layout, layout.videos_dir / f"{name}.mp4").key for name in ("captions", "plain")}
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VIDEOS_PARTITION, sorted(keys.values()))
    MODEL_CACHE.release("ocr")  # nothing loaded in this process yet, as in a fresh run worker
    before = MODEL_CACHE.load_count("ocr")
    result = dg.materialize(
        [video_metadata, candidate_frames, filtered_frames, onscreen_text],
        instance=instance,
        resources={"paths": ProjectPaths(data_dir=str(layout.root)), "ocr": OcrResource(model=str(weights))},
        tags={RANGE_START: min(keys.values()), RANGE_END: max(keys.values())},
    )
    table = dg.materialize([video_features], instance=instance,
                           resources={"paths": ProjectPaths(data_dir=str(layout.root))})
    assert result.success and table.success
    return layout, keys, result, MODEL_CACHE.load_count("ocr") - before


def row(layout: DataLayout, key: str) -> pd.Series:
    return pd.read_parquet(layout.table_parquet).set_index("video_key").loc[key]


def test_the_table_row_has_the_captions_in_time_order(run):
    layout, keys, _, _ = run
    captions = row(layout, keys["captions"])
    assert captions["onscreen_text_status"] == "ok" and captions["ocr_model"] == "rapidocr-ppocrv4"
    assert captions["ocr_line_count"] == len(SHORT)
    read = captions["ocr_text"].split(" | ")
    assert len(read) == len(SHORT)
    assert all(cer(text, got) <= 0.1 for (text, _, _), got in zip(SHORT, read, strict=True)), read


def test_a_video_without_text_has_no_lines_and_no_text(run):
    layout, keys, _, _ = run
    plain = row(layout, keys["plain"])
    assert plain["onscreen_text_status"] == "ok"
    assert plain["ocr_line_count"] == 0 and pd.isna(plain["ocr_text"])  # ran, read nothing: 0 and null


def test_the_model_loads_once_per_run_and_each_partition_has_its_outcome(run):
    _, keys, result, loads = run
    materialization = result.asset_materializations_for_node("onscreen_text")
    assert {m.partition for m in materialization} == set(keys.values())
    assert loads == 1
    lines = {m.partition: m.metadata["lines"].value for m in materialization}
    assert lines == {keys["captions"]: len(SHORT), keys["plain"]: 0}


def test_the_vlm_prompt_has_the_on_screen_text_next_to_the_transcript(run):
    layout, keys, _, _ = run
    video = layout.video(keys["captions"])
    text = onscreen_text_of(video)  # what video_understanding passes to the model
    assert text == ocr.read_onscreen_text(video.onscreen_text_json).text and text.count(" | ") == 1
    prompt = build_prompt(2, "these headphones are half price today", load_taxonomy(), onscreen_text=text)
    assert f'Text shown on screen (OCR, captions separated by |): "{text}"' in prompt
    assert prompt.index("Transcript of its speech") < prompt.index("Text shown on screen")
    assert onscreen_text_of(layout.video(keys["plain"])) == ""
    assert 'Text shown on screen (OCR, captions separated by |): "(none)"' in build_prompt(2, "", load_taxonomy())

