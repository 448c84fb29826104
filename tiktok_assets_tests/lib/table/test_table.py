"""The feature table's files: declared Parquet schema, CSV with JSON lists, one missing-value convention,
and load_features giving the same typed frame from either file."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tiktok_assets
from tiktok_assets.lib.table.schema import CLIP_EMBEDDING_DIM, COLUMNS, arrow_schema
from tiktok_assets.lib.table.table import mean_embedding, write_table
from tiktok_assets.lib.table.table_io import frame_of_rows
from tiktok_assets.lib.table.table_validation import validate_files

CSV_COLUMNS = [c.name for c in COLUMNS if c.csv]


def _rows(embedding: bool) -> list[dict]:
    talk = {
        "video_key": "talk", "status": "ok", "file_name": "talk, \"quoted\".mp4", "duration_s": 12.0,
        "width": 1080.0,  # JSON numbers may come as floats: an exact int64 still
        "has_audio": True, "variable_frame_rate": False, "speech_text": "Crème brûlée,\nsaid twice.",
        "speech_segments": [{"start": 0.5, "end": 2.25, "confidence": 0.875}],
        "kept_frame_timestamps": [0.0, 1.5, 3.0], "captions": ["a person, smiling", "ünïcode"],
        "content_box": {"x": 0, "y": 240, "w": 1080, "h": 1440},
        "objects_top": [{"label": "bottle", "frames": 3}],
        "clip_embedding": np.full(CLIP_EMBEDDING_DIM, 0.1, dtype=np.float32).tolist() if embedding else None,
    }
    silent = {"video_key": "silent", "status": "partial", "has_audio": False, "speech_text": "",
              "audio_fingerprint": "  ", "kept_frame_timestamps": [], "captions": []}
    failed = {"video_key": "broken", "status": "failed", "error": "video_metadata: empty file"}
    return [talk, silent, failed]


def _write(folder: Path, embedding: bool, rows: list[dict] | None = None) -> tuple[Path, Path]:
    folder.mkdir()
    csv, parquet = folder / "video_features_results.csv", folder / "video_features_results.parquet"
    write_table(frame_of_rows(_rows(embedding) if rows is None else rows), csv, parquet)
    return csv, parquet


@pytest.mark.parametrize(("embedding", "rows"), [(True, None), (False, None), (False, [])],
                         ids=["an_embedding", "no_embedding", "no_videos"])
def test_the_parquet_schema_is_declared_whatever_the_rows(tmp_path, embedding, rows):
    csv, parquet = _write(tmp_path / "table", embedding, rows)
    written = pq.read_schema(parquet)
    assert written.remove_metadata().equals(arrow_schema())
    assert written.field("clip_embedding").type == pa.list_(pa.float32(), CLIP_EMBEDDING_DIM)
    assert written.field("speech_segments").type == pa.list_(
        pa.struct([("start", pa.float64()), ("end", pa.float64()), ("confidence", pa.float64())]))
    assert written.field("captions").type == pa.list_(pa.string())
    assert written.field("width").type == pa.int64() and written.field("has_audio").type == pa.bool_()
    assert validate_files(parquet, csv) == []


def test_load_features_gives_the_same_typed_frame_from_either_file(tmp_path):
    csv, parquet = _write(tmp_path / "table", embedding=True)
    from_parquet, from_csv = tiktok_assets.load_features(parquet), tiktok_assets.load_features(str(csv))
    assert list(from_parquet.columns) == [c.name for c in COLUMNS]
    assert list(from_csv.columns) == CSV_COLUMNS  # the embedding is Parquet only
    pd.testing.assert_frame_equal(from_csv, from_parquet[CSV_COLUMNS])
    assert {str(from_parquet[n].dtype) for n in ("width", "duration_s", "has_audio", "video_key")} == {
        "Int64", "Float64", "boolean", "string"}
    talk = from_parquet.set_index("video_key").loc["talk"]
    assert talk["width"] == 1080 and talk["file_name"] == "talk, \"quoted\".mp4"
    assert talk["speech_text"] == "Crème brûlée,\nsaid twice."
    assert talk["speech_segments"] == [{"start": 0.5, "end": 2.25, "confidence": 0.875}]
    assert talk["kept_frame_timestamps"] == [0.0, 1.5, 3.0] and talk["captions"] == ["a person, smiling", "ünïcode"]
    assert talk["content_box"] == {"x": 0, "y": 240, "w": 1080, "h": 1440}
    assert talk["objects_top"] == [{"label": "bottle", "frames": 3}]
    assert len(talk["clip_embedding"]) == CLIP_EMBEDDING_DIM
    assert np.asarray(talk["clip_embedding"], dtype=np.float32) == pytest.approx(0.1)


def test_one_missing_value_convention(tmp_path):
    csv, parquet = _write(tmp_path / "table", embedding=False)
    for frame in (tiktok_assets.load_features(parquet), tiktok_assets.load_features(csv)):
        silent = frame.set_index("video_key").loc["silent"]
        assert silent["speech_text"] is pd.NA and silent["audio_fingerprint"] is pd.NA  # "" and "  " are missing
        assert silent["kept_frame_timestamps"] == []  # an empty list is a value: ran, found nothing
        assert silent["speech_segments"] is pd.NA and silent["width"] is pd.NA and silent["has_speech"] is pd.NA
        strings = [c.name for c in COLUMNS if c.dtype == "string" and c.name in frame]
        assert not frame[strings].apply(lambda s: s.str.strip().eq("").any()).any()
    # pandas alone keeps the scalar types too (the file carries pandas metadata)
    plain = pd.read_parquet(parquet)
    assert str(plain["width"].dtype) == "Int64" and str(plain["has_audio"].dtype) == "boolean"
    assert list(plain.set_index("video_key").loc["talk", "kept_frame_timestamps"]) == [0.0, 1.5, 3.0]


def test_validation_accepts_the_written_table_and_refuses_an_inferred_schema(tmp_path):
    csv, parquet = _write(tmp_path / "table", embedding=False)
    assert validate_files(parquet, csv) == []
    # What the table used to be: lists as JSON text and a schema inferred from the rows.
    old = tiktok_assets.load_features(parquet)
    old["captions"] = old["captions"].astype(object).map(str)
    old["clip_embedding"] = None
    old.to_parquet(parquet, index=False)
    problems = validate_files(parquet, csv)
    assert len(problems) == 1 and "captions" in problems[0] and "clip_embedding" in problems[0]


def test_the_csv_and_parquet_must_agree(tmp_path):
    csv, parquet = _write(tmp_path / "table", embedding=False)
    text = csv.read_text().replace("[0.0, 1.5, 3.0]", "[0.0, 1.5]")
    csv.write_text(text)
    assert validate_files(parquet, csv) == ["CSV and Parquet hold different values"]


def test_a_clip_embedding_of_another_width_is_refused(tmp_path):
    np.save(tmp_path / "mean_embedding.npy", np.zeros(768, dtype=np.float32))
    with pytest.raises(ValueError, match="768 values.*512"):
        mean_embedding(tmp_path / "mean_embedding.npy")
    np.save(tmp_path / "mean_embedding.npy", np.ones(CLIP_EMBEDDING_DIM, dtype=np.float64))
    assert mean_embedding(tmp_path / "mean_embedding.npy") == [1.0] * CLIP_EMBEDDING_DIM
    assert mean_embedding(tmp_path / "absent.npy") is None


def test_load_features_refuses_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="parquet or .csv"):
        tiktok_assets.load_features(tmp_path / "notes.txt")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not those of the declared feature table"):
        tiktok_assets.load_features(tmp_path / "other.csv")
