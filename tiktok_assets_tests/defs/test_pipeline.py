"""The whole per-video pipeline through Dagster on good and bad inputs, and the feature table."""

import os
import re
import shutil
from base64 import b64decode
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tiktok_assets
from tiktok_assets import cli
from tiktok_assets.lib.catalogue.keys import partition_key_for
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.table.schema import COLUMNS
from tiktok_assets.lib.table.table_validation import validate_files
from tiktok_assets.lib.vision.taxonomy import load_content_labels
from tiktok_assets_tests.conftest import copy_clip, ffmpeg

ODD_NAME = "crème \"brûlée\" it's #1.mp4"


@pytest.fixture(scope="module")
def pipeline_run(sample_dir, model_env, tmp_path_factory):
    """Run the CLI pipeline over good and bad inputs once; return (layout, keys by file, exit code)."""
    root = tmp_path_factory.mktemp("project")
    data, home = root / "data", root / "dagster_home"
    videos = data / "tiktok_videos"
    videos.mkdir(parents=True)
    home.mkdir()
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "TIKTOK_ASSETS_DATA_DIR", *model_env)}
    os.environ.update(model_env)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["TIKTOK_ASSETS_DATA_DIR"] = str(data)

    copy_clip(sample_dir / "product_talk.mp4", videos / "product_talk.mp4")
    copy_clip(sample_dir / "silent_cuts.mp4", videos / "video_only.mp4")
    copy_clip(sample_dir / "soft_focus_speech.mp4", videos / ODD_NAME)
    (videos / "empty.mp4").touch()
    (videos / "random.mp4").write_bytes(os.urandom(50_000))
    whole = (sample_dir / "blur_and_cuts.mp4").read_bytes()
    ffmpeg("-i", str(sample_dir / "blur_and_cuts.mp4"), "-c", "copy", str(root / "tail_index.mp4"))
    (videos / "truncated.mp4").write_bytes((root / "tail_index.mp4").read_bytes()[: len(whole) // 3])
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=3", "-c:a", "aac", str(videos / "audio_only.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=30:d=3", "-f", "lavfi", "-i", "sine=d=3", "-shortest",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(root / "landscape.mp4"))
    ffmpeg("-i", str(root / "landscape.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(videos / "rotated.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=2160x3840:r=30:d=2", "-c:v", "libx264", "-preset", "ultrafast",
           str(videos / "uhd_4k.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=360x640:r=30:d=2", "-f", "lavfi", "-i", "testsrc2=s=360x640:r=10:d=2",
           "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-fps_mode", "vfr",
           "-c:v", "libx264", "-preset", "ultrafast", str(videos / "vfr.mp4"))
    try:
        code = cli.main(["--data-dir", str(data), "run"])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    keys = {p.name: partition_key_for(p) for p in videos.iterdir()}
    return DataLayout(data), keys, code


def test_table_has_one_row_per_video_with_errors_for_bad_inputs(pipeline_run):
    layout, keys, code = pipeline_run
    assert code == 1  # some videos failed: their rows say why
    table = pd.read_parquet(layout.table_parquet).set_index("video_key")
    csv = pd.read_csv(layout.table_csv)
    assert sorted(table.index) == sorted(keys.values())
    assert len(csv) == len(table)
    assert list(table.reset_index().columns) == [c.name for c in COLUMNS]

    def row(name):
        return table.loc[keys[name]]

    expected_errors = {
        "empty.mp4": "empty file",
        "random.mp4": "not a readable media file",
        "truncated.mp4": "not a readable media file",
        "audio_only.mp4": "audio-only file",
    }
    for name, message in expected_errors.items():
        r = row(name)
        assert r["status"] == "failed", name
        assert r["video_metadata_status"] == "failed"
        assert message in r["error"] and r["error"].startswith("video_metadata:"), (name, r["error"])
        assert r["filtered_frames_status"] == "skipped"
        assert r["filtered_frames_error"].startswith("upstream stage video_metadata failed: ")

    for name in ["product_talk.mp4", "video_only.mp4", ODD_NAME, "rotated.mp4", "uhd_4k.mp4", "vfr.mp4"]:
        r = row(name)
        if not r["has_audio"]:  # no audio track: nothing to separate, every stage did its work
            assert r["status"] == "ok" and pd.isna(r["partial_reason"]), (name, r["partial_reason"])
        else:  # separation is switched off in these tests
            assert r["status"] == "partial" and r["partial_reason"] == "audio_stems: disabled", (name, r["error"])
        assert pd.isna(r["error"])
        assert r["kept_frame_count"] >= 1
        assert r["video_metadata_seconds"] >= 0


def test_good_videos_have_correct_features(pipeline_run):
    layout, keys, _ = pipeline_run
    table = tiktok_assets.load_features(layout.table_parquet).set_index("video_key")
    talk = table.loc["product_talk"]
    assert (talk["width"], talk["height"], talk["duration_s"]) == (1080, 1920, 12.0)
    assert talk["has_audio"] and talk["speech_segment_count"] >= 1
    assert talk["dropped_black_count"] == 2
    # audio models (real packaged Whisper tiny.en): the spoken sentence, in English
    assert talk["language"] == "en" and talk["has_speech"] and talk["word_count"] >= 12
    assert "battery" in talk["speech_text"].lower()
    assert talk["audio_stems_status"] == "disabled" and talk["music_status"] == "disabled"
    assert talk["audio_fingerprint"] and talk["speech_ratio"] > 0.3
    # vision models (tiny random weights, real code paths): structure, not content
    kept = talk["kept_frame_count"]
    assert talk["representative_frame_count"] == min(max(round(kept ** 0.5), 2), 5, kept)
    assert len(talk["captions"]) == talk["representative_frame_count"]
    assert len(talk["representative_timestamps"]) == talk["representative_frame_count"]
    assert len(talk["clip_embedding"]) == 512
    assert talk["frame_objects_status"] == "ok" and talk["video_understanding_status"] in ("ok", "unparsable")
    labels = load_content_labels()  # the random VLM's answer, constrained: a listed value or null, never free text
    assert pd.isna(talk["content_type"]) or talk["content_type"] in labels.content_type.values
    assert pd.isna(talk["target_audience"]) or talk["target_audience"] in labels.target_audience.values
    if talk["video_understanding_status"] != "ok":
        assert pd.isna(talk["content_type"]) and pd.isna(talk["target_audience"])
    reps = layout.video("product_talk").representative_dir
    assert len(list(reps.glob("representative_*.jpg"))) == talk["representative_frame_count"]
    assert (reps / "representative_timestamps.json").exists()

    only_video = table.loc[keys["video_only.mp4"]]
    assert not only_video["has_audio"]
    assert only_video["audio_wav_status"] == "no_audio" and only_video["speech_segments_status"] == "no_audio"
    assert pd.isna(only_video["speech_segment_count"])  # no audio track: empty, not 0

    rotated = table.loc[keys["rotated.mp4"]]
    assert (rotated["width"], rotated["height"]) == (360, 640)
    assert table.loc[keys["vfr.mp4"]]["variable_frame_rate"]
    assert (table.loc[keys["uhd_4k.mp4"]]["width"], table.loc[keys["uhd_4k.mp4"]]["height"]) == (2160, 3840)

    odd = table.loc[keys[ODD_NAME]]
    assert odd["file_name"] == ODD_NAME
    frames_dir = layout.video(keys[ODD_NAME]).frames_dir
    assert (frames_dir / "frames_index.json").exists() and list(frames_dir.glob("*.jpg"))


def test_the_table_files_agree_and_the_readme_queries_run_on_them(pipeline_run, monkeypatch):
    layout, keys, _ = pipeline_run
    assert validate_files(layout.table_parquet, layout.table_csv) == []
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    queries = readme.split("<!-- queries:start -->")[1].split("<!-- queries:end -->")[0]
    blocks = re.findall(r"```python\n(.*?)```", queries, re.DOTALL)
    assert len(blocks) == 2  # pandas, then DuckDB
    monkeypatch.chdir(layout.root.parent)  # the README's paths are data/...
    assert layout.root.name == "data"
    found: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), found)  # noqa: S102 - the README's own code
    table = found["features"].set_index("video_key")
    done = table[table["status"].isin(["ok", "partial"])]
    assert len(table) == len(keys) and len(done) == 6
    assert found["kept_frames"].to_dict() == {k: len(v) for k, v in done["kept_frame_timestamps"].items()}
    assert found["kept_frames"].loc["product_talk"] == table.loc["product_talk", "kept_frame_count"]
    assert found["captions"].loc["product_talk"].tolist() == table.loc["product_talk", "captions"]
    assert found["embeddings"].shape == (table["clip_embedding"].notna().sum(), 512)
    assert len(found["embeddings"]) >= 6
    assert np.allclose(found["embeddings"][0], table["clip_embedding"].dropna().iloc[0])
    per_category = found["per_category"]
    assert per_category["videos"].sum() == len(done)
    assert per_category["mean_duration_s"].mul(per_category["videos"]).sum() == pytest.approx(
        done["duration_s"].sum())
    caption_rows = found["caption_rows"]
    assert len(caption_rows) == table["captions"].dropna().map(len).sum()
    assert caption_rows.groupby("video_key")["kept_frames"].first().to_dict() == {
        k: table.loc[k, "kept_frame_count"] for k in caption_rows["video_key"].unique()}


def _run_notebook(data: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[np.ndarray], str]:
    """Execute notebooks/explore_features.ipynb on ``data`` in a fresh kernel, as CI and a user do; return
    its pictures (grayscale pixels) and what it printed. Fails on any cell's error."""
    import nbformat
    from nbclient import NotebookClient
    from PIL import Image

    notebook = Path(__file__).parents[2] / "notebooks" / "explore_features.ipynb"
    monkeypatch.setenv("TIKTOK_ASSETS_DATA_DIR", str(data))  # the kernel inherits the environment
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend: PNGs in the outputs
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
                   ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    pictures = [np.asarray(Image.open(BytesIO(b64decode(o["data"]["image/png"]))).convert("L"))
                for o in outputs if "image/png" in o.get("data", {})]
    return pictures, "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom_and_draws_its_plots(pipeline_run, tmp_path, monkeypatch):
    layout, _, _ = pipeline_run
    pictures, printed = _run_notebook(layout.root, monkeypatch)
    assert len(pictures) == 3  # duration / speech and music, categories, the chosen video's frames
    for gray in pictures:  # real plots: drawn pixels, not an empty canvas
        assert gray.shape[0] > 200 and gray.shape[1] > 400 and (gray < 200).mean() > 0.01
    # the video with representative frames and the most words: one of the two with the spoken sentence
    assert re.search(r"^(product_talk|creme_brulee\S*): .*\.mp4, 1?\d\.0 s; representative frames: [1-5]$",
                     printed, re.MULTILINE), printed
    assert "battery" in printed.lower()  # its transcript
    assert "On-screen text (OCR):" in printed  # testsrc2's clock, where the clip shows it, or (none)
    assert "Description:" in printed
    # Without representative frames (CLIP not installed), the kept frames stand in.
    copy = tmp_path / "data"
    shutil.copytree(layout.root, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("tiktok_videos", "representative_*.jpg", "*.wav"))
    monkeypatch.setenv("VIDEO_KEY", "product_talk")  # the notebook's choice of video
    pictures, printed = _run_notebook(copy, monkeypatch)
    shown = min(5, tiktok_assets.load_features(layout.table_parquet).set_index("video_key").loc[
        "product_talk", "kept_frame_count"])
    assert len(pictures) == 3 and f"product_talk: product_talk.mp4, 12.0 s; kept frames: {shown}\n" in printed


def test_outputs_are_where_the_docs_say(pipeline_run):
    layout, _keys, _ = pipeline_run
    video = layout.video("product_talk")
    for path in [video.metadata_json, video.audio_wav, video.speech_segments_json, video.speech_segments_csv,
                 video.frames_index_json, video.filtered_frames_json]:
        assert path.exists(), path
    assert not list(layout.root.rglob("*.tmp"))  # no temp files left behind


def test_table_write_is_atomic(pipeline_run, monkeypatch):
    """A crash while writing the pair leaves the previous CSV and Parquet, both, untouched."""
    from tiktok_assets.lib.table import table as table_module

    layout, _, _ = pipeline_run
    before_csv, before_parquet = layout.table_csv.read_bytes(), layout.table_parquet.read_bytes()
    frame = pd.read_parquet(layout.table_parquet)
    frame["error"] = "a new value that must not reach the files"

    def crash(self, path, *args, **kwargs):
        with open(path, "w") as fh:
            fh.write("video_key,half a row")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(OSError):
        table_module.write_table(frame, layout.table_csv, layout.table_parquet)
    assert layout.table_csv.read_bytes() == before_csv
    assert layout.table_parquet.read_bytes() == before_parquet  # the Parquet was written, then dropped
    assert len(before_parquet) > 0
    assert not list(layout.root.glob(".*.tmp"))
    assert [p.name for p in layout.root.glob(".video_features.*")] == [os.readlink(layout.root / "video_features")]
