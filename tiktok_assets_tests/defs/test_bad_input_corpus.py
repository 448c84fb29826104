"""The bad-input corpus (tiktok_assets_tests/bad_inputs.py) through Dagster in ONE run: every case is
registered with `tiktok-assets add`, every per-video stage and the table run over all of them as one
partition range (what a sensor or UI backfill batch launches), and each case must end in exactly one row
that is either correct (its known facts) or failed with a clear, specific error, within its time limit,
while the good control clip of the same run comes out as it does alone.

No model weights are installed here (an empty models folder), so the model stages are `unavailable`
in no time and a correct row is `partial` with only those stages in `partial_reason`. Run with
``pytest -s`` to see the table (input, outcome, seconds).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from tiktok_assets import cli, load_features
from tiktok_assets.definitions import defs as load_defs
from tiktok_assets.defs.partitions import VIDEOS_PARTITION
from tiktok_assets.defs.sensors import RANGE_END, RANGE_START
from tiktok_assets.lib.catalogue import registry
from tiktok_assets.lib.layout import DataLayout
from tiktok_assets.lib.models.manifest import CODE_MANIFEST
from tiktok_assets.lib.status import read_status
from tiktok_assets.lib.table.schema import STAGES
from tiktok_assets_tests.bad_inputs import CASES, BadInput, build_corpus, describe_fact, fact_holds, is_empty

pytestmark = pytest.mark.slow

REPO = Path(__file__).parents[2]
RUN_LIMIT_S = 240.0  # the one run over the whole corpus, on a 2-core machine
MODEL_FREE = ["video_metadata", "audio_wav", "speech_segments", "candidate_frames", "filtered_frames",
              "audio_events", "music_recognition", "audio_analysis"]
SOURCE_LOCATION = re.compile(r'\.(?:cpp|cc|c|h|py)(?::\d+|", line)')  # "resize.cpp:4220", 'x.py", line 3'
SAME_FEATURES = ["duration_s", "width", "height", "frame_count", "decoded_seconds", "speech_segments",
                 "kept_frame_timestamps", "content_box", "shot_count", "audio_rms_dbfs", "speech_ratio",
                 "music_ratio", "silence_ratio", "audio_fingerprint"]
NO_AUDIO_OK = {"audio_wav", "speech_segments", "audio_events", "music_recognition", "audio_analysis"}


@dataclass
class CorpusRun:
    cases: dict[str, BadInput]
    keys: dict[str, str]  # case name -> partition key
    table: pd.DataFrame  # the Parquet table, as written at the end of the run
    seconds: dict[str, float]  # case name -> sum of its recorded stage times
    run_seconds: float
    success: bool
    layout: DataLayout


def _stage_seconds(layout: DataLayout, key: str) -> float:
    video = layout.video(key)
    return round(sum(s.seconds for stage in STAGES if (s := read_status(video, stage)) is not None), 2)


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorpusRun]:
    root = tmp_path_factory.mktemp("bad_inputs")
    layout = DataLayout(root / "data")
    home, models = root / "dagster_home", root / "models"
    home.mkdir()
    models.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    shutil.copy(CODE_MANIFEST, models / "manifest.yaml")  # no weights: models unavailable
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        env.setenv("TIKTOK_ASSETS_DATA_DIR", str(layout.root))
        env.setenv("TIKTOK_ASSETS_MODELS_DIR", str(models))
        started = time.perf_counter()
        cases = {c.name: c for c in build_corpus(layout.videos_dir, root / "outside")}
        print(f"\nbad-input corpus: {len(cases)} cases built in {time.perf_counter() - started:.1f}s")
        # Registered the way a user does it; the paths go in as built (`..` components, odd names kept).
        assert cli.main(["--data-dir", str(layout.root), "add", *(str(c.path) for c in cases.values())]) == 0
        by_path = {e.source_path: e.key for e in registry.registered(layout)}
        keys = {name: by_path[os.path.abspath(case.path)] for name, case in cases.items()}  # `..` removed
        with dg.DagsterInstance.get() as registered:
            partitions = registered.get_dynamic_partitions(VIDEOS_PARTITION)
        assert sorted(partitions) == sorted(keys.values())
        # The run itself on an in-memory instance: the SQLite event log costs ~40 ms of CPU per event
        # here, and 52 videos x 14 stages are ~3,100 events (minutes that say nothing about bad input).
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(VIDEOS_PARTITION, partitions)
            job = load_defs().resolve_implicit_global_asset_job_def()
            started = time.perf_counter()
            result = job.execute_in_process(instance=instance, raise_on_error=False,
                                            tags={RANGE_START: partitions[0], RANGE_END: partitions[-1]})
            run_seconds = time.perf_counter() - started
        table = load_features(layout.table_parquet)  # lists as lists: cells compare with ==
        seconds = {name: _stage_seconds(layout, key) for name, key in keys.items()}
        run = CorpusRun(cases, keys, table, seconds, run_seconds, result.success, layout)
        _print_table(run)
        yield run


def _rows(run: CorpusRun, name: str) -> pd.DataFrame:
    return run.table[run.table["video_key"] == run.keys[name]]


def _short(text: object, width: int = 70) -> str:
    if is_empty(text):
        return ""
    one_line = " ".join(str(text).split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def _print_table(run: CorpusRun) -> None:
    lines = [f"{'input':<24} {'file name':<28} {'outcome':<9} {'seconds':>7}  error / partial_reason"]
    for name in run.cases:
        rows = _rows(run, name)
        if len(rows) != 1:
            count = f"{len(rows)} rows"
            lines.append(f"{name:<24} {_file_name(run, name)} {count:<9} {run.seconds[name]:>7.2f}")
            continue
        row = rows.iloc[0]
        detail = row["error"] if row["status"] == "failed" else _model_free_reason(row["partial_reason"])
        lines.append(f"{name:<24} {_file_name(run, name)} {row['status']:<9} {run.seconds[name]:>7.2f}  "
                     f"{_short(detail, 90)}")
    lines.append(f"run: {run.run_seconds:.1f}s for {len(run.cases)} inputs (success={run.success})")
    print("\n" + "\n".join(lines))


def _file_name(run: CorpusRun, name: str) -> str:
    """The path as registered, relative to the watched folder, as Python writes it (a newline is \\n)."""
    path, folder = str(run.cases[name].path), f"{run.layout.videos_dir}/"
    shown = repr(path.removeprefix(folder))[1:-1]
    return f"{_short(shown, 28):<28}"


def _model_free_reason(reason: object) -> str:
    """partial_reason without the model stages that are unavailable here (no weights installed)."""
    if is_empty(reason):
        return ""
    parts = [p for p in str(reason).split("; ") if not _model_unavailable(p)]
    return "; ".join(parts)


def _model_unavailable(part: str) -> bool:
    stage = part.split(":", 1)[0].strip()
    return stage in STAGES and stage not in MODEL_FREE


def problems_with(run: CorpusRun, case: BadInput) -> list[str]:
    """Everything wrong with the row of ``case`` (empty: the row is right)."""
    rows = _rows(run, case.name)
    if len(rows) != 1:
        return [f"{len(rows)} rows for key {run.keys[case.name]}, expected exactly one"]
    row = rows.iloc[0]
    found: list[str] = []
    status, error, reason = row["status"], row["error"], row["partial_reason"]
    if status not in case.outcomes:
        found.append(f"status {status!r} not in {sorted(case.outcomes)} (error={_short(error, 200)!r}, "
                     f"partial_reason={_short(_model_free_reason(reason), 200)!r})")
    if status == "failed":
        found += _unclear_error(case, error)
    if status == "partial" and case.reason_all:
        missing = [w for w in case.reason_all if w.lower() not in str(reason).lower()]
        if missing:
            found.append(f"partial_reason {_short(reason, 200)!r} does not mention {missing}")
    elif status == "partial" and _model_free_reason(reason):  # only missing weights may make it partial
        found.append(f"partial for more than missing weights: {_short(_model_free_reason(reason), 200)!r}")
    if status in ("ok", "partial"):
        for column, expected in case.facts.items():
            actual = row[column] if column in row.index else "<no such column>"
            if column not in row.index or not fact_holds(actual, expected):
                found.append(f"{column} = {actual!r}, expected {describe_fact(expected)}")
        if case.outcomes <= {"ok", "partial"}:
            found += _model_free_stages_ran(row)
    if case.same_features_as and status in ("ok", "partial"):
        found += _differences(row, _rows(run, case.same_features_as).iloc[0], case.same_features_as)
    if run.seconds[case.name] > case.time_limit_s:
        found.append(f"took {run.seconds[case.name]:.1f}s, limit {case.time_limit_s:.0f}s")
    return found


def _differences(row: pd.Series, original: pd.Series, name: str) -> list[str]:
    """The features of a byte copy that differ from the original's (its name or path must not matter)."""
    return [f"{column} = {row[column]!r}, but {original[column]!r} for {name}" for column in SAME_FEATURES
            if not (is_empty(row[column]) and is_empty(original[column])) and row[column] != original[column]]


def _unclear_error(case: BadInput, error: object) -> list[str]:
    """A failed row's error is one specific line: the stage, then the reason, no traceback."""
    if is_empty(error) or not str(error).strip():
        return ["failed without an error"]
    text = str(error)
    found = []
    if "Traceback" in text or "\n" in text.strip() or len(text) > 500 or SOURCE_LOCATION.search(text):
        found.append(f"error is not one clear line (a traceback or library internals): {_short(text, 200)!r}")
    if text.split(":", 1)[0] not in STAGES:
        found.append(f"error does not start with its stage: {_short(text, 200)!r}")
    missing = [w for w in case.error_all if w.lower() not in text.lower()]
    if missing:
        found.append(f"error {_short(text, 200)!r} does not mention {missing}")
    if case.error_any and not any(w.lower() in text.lower() for w in case.error_any):
        found.append(f"error {_short(text, 200)!r} mentions none of {list(case.error_any)}")
    return found


def _model_free_stages_ran(row: pd.Series) -> list[str]:
    """A correct row has every model-free stage done (no_audio where the video has no sound)."""
    found = []
    for stage in MODEL_FREE:
        state = row[f"{stage}_status"]
        allowed = {"ok", "no_audio"} if stage in NO_AUDIO_OK else {"ok"}
        if state not in allowed:
            found.append(f"{stage}: {state} ({_short(row[f'{stage}_error'], 150)})")
    return found


def test_the_corpus_is_large_and_the_run_finishes_in_time(corpus_run: CorpusRun) -> None:
    assert len(corpus_run.cases) >= 40
    assert corpus_run.success, "one bad input must not fail the run"
    assert len(corpus_run.table) == len(corpus_run.cases), "one row per registered input, no gaps, no extras"
    assert corpus_run.table["video_key"].is_unique
    assert corpus_run.run_seconds < RUN_LIMIT_S, f"the run took {corpus_run.run_seconds:.0f}s"


def test_the_good_clip_is_unaffected(corpus_run: CorpusRun) -> None:
    row = _rows(corpus_run, "good").iloc[0]
    assert row["status"] in ("ok", "partial") and is_empty(row["error"])
    assert _model_free_reason(row["partial_reason"]) == "", row["partial_reason"]
    assert problems_with(corpus_run, corpus_run.cases["good"]) == []
    assert row["candidate_frame_count"] > 0 and row["kept_frame_count"] > 0
    assert row["shot_count"] >= 1 and not is_empty(row["audio_fingerprint"])


@pytest.mark.parametrize("name", list(CASES))
def test_each_input_ends_in_a_correct_row_or_a_clear_error(corpus_run: CorpusRun, name: str) -> None:
    if name not in corpus_run.cases:
        pytest.skip(f"{name}: not built by this FFmpeg")
    case = corpus_run.cases[name]
    problems = problems_with(corpus_run, case)
    assert not problems, f"{name} ({case.what}):\n  " + "\n  ".join(problems)
