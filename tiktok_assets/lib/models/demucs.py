"""Vocal / accompaniment separation with Demucs, from local weights only, in bounded memory.

Weights, as users get them:
- a demucs checkpoint file ``<sig>[-<sha256[:8]>].th`` (a ``{klass, args, kwargs, state}`` package),
  read with ``torch.load(weights_only=True)`` and only the Demucs model classes allowed;
- a ``<sig>.safetensors`` file (demucs' Hugging Face export: class and arguments as JSON metadata);
- a folder holding either of those, plus a bag ``<name>.yaml`` (``models: [sig, ...]``); without a
  yaml, demucs' own bag definition for ``name`` (e.g. ``htdemucs``) is used, so the torch hub cache
  folder (``~/.cache/torch/hub/checkpoints``) works as is.

``separate`` streams the input through FFmpeg in blocks of ``block_s`` seconds (each run through
``apply_model`` in ``segment_s`` pieces) and cross-fades block borders (``stems.separate_in_blocks``),
so memory does not grow with the length of the audio. The two stems are written as **16 kHz mono**
16-bit WAVs (the rate the rest of the pipeline reads), atomically.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE, resolve_device, resolve_weights
from tiktok_assets.lib.models.stems import Stems, separate_in_blocks, to_out_rate

log = logging.getLogger("tiktok_assets.models.demucs")

VOCALS = "vocals"


@dataclass(frozen=True)
class LoadedDemucs:
    model: Any  # demucs.apply.BagOfModels or a single demucs model
    weights: Path
    device: str

    @property
    def samplerate(self) -> int:
        return int(self.model.samplerate)

    @property
    def audio_channels(self) -> int:
        return int(self.model.audio_channels)

    @property
    def sources(self) -> list[str]:
        return list(self.model.sources)

    @property
    def max_segment_s(self) -> float:
        """Longest segment ``apply_model`` accepts (HTDemucs is bound to its training length)."""
        from demucs.apply import BagOfModels
        from demucs.htdemucs import HTDemucs

        if isinstance(self.model, BagOfModels):
            return float(self.model.max_allowed_segment)
        return float(self.model.segment) if isinstance(self.model, HTDemucs) else math.inf


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch (this runs when the code location loads)."""
    torch_home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch"
    return Path(torch_home).expanduser() / "hub"


def demucs_weights(name: str = "htdemucs", model: str = "htdemucs", models_dir: Path | None = None) -> Path:
    """``models/<name>`` (or a local path), else the torch hub cache when it holds every model of the
    bag ``model``; otherwise :class:`ModelUnavailableError`. Never downloads."""
    try:
        return resolve_weights(name, model, models_dir)
    except ModelUnavailableError:
        hub = torch_hub_dir() / "checkpoints"
        sigs = _packaged_bag(model) if hub.is_dir() else []
        if sigs and all(_find_sig(hub, s) for s in sigs):
            return hub
        raise


def load_demucs(weights: Path, device: str = "auto", name: str = "htdemucs") -> LoadedDemucs:
    """Load (once per process) a Demucs model or bag from a local file or folder."""
    weights = Path(weights).expanduser().resolve()
    if not weights.exists():
        raise ModelUnavailableError(
            f"Demucs weights {weights} do not exist (`tiktok-assets models pull {name}`)."
        )
    device = resolve_device(device)

    def _load() -> LoadedDemucs:
        model = _load_any(weights, name)
        model.to(device).eval()
        return LoadedDemucs(model, weights, device)

    return MODEL_CACHE.get(("demucs", str(weights), name, device), _load)


def _load_any(weights: Path, name: str) -> Any:
    from demucs.apply import BagOfModels

    if weights.is_file():
        return _load_file(weights)
    yamls = sorted(weights.glob("*.yaml"))
    chosen = next((y for y in yamls if y.stem == name), yamls[0] if len(yamls) == 1 else None)
    if chosen is not None:
        import yaml

        bag = yaml.safe_load(chosen.read_text())
        sigs, bag_weights, segment = bag["models"], bag.get("weights"), bag.get("segment")
    else:
        files = sorted([*weights.glob("*.th"), *weights.glob("*.safetensors")])
        if len(files) == 1:
            return _load_file(files[0])
        sigs, bag_weights, segment = _packaged_bag(name), None, None
        if not sigs:
            raise ModelUnavailableError(f"{weights}: no bag yaml and no single Demucs model file found.")
    files = []
    for sig in sigs:
        found = _find_sig(weights, sig)
        if found is None:
            raise ModelUnavailableError(f"Demucs model '{sig}' of bag '{name}' is missing from {weights}.")
        files.append(found)
    return BagOfModels([_load_file(f) for f in files], bag_weights, segment)


def _packaged_bag(name: str) -> list[str]:
    """Model signatures of a named demucs bag, from the yaml files shipped with demucs (found without
    importing demucs, which imports torch)."""
    spec = importlib.util.find_spec("demucs")
    if spec is None or not spec.submodule_search_locations:
        return []
    path = Path(next(iter(spec.submodule_search_locations))) / "remote" / f"{name}.yaml"
    if not path.is_file():
        return []
    import yaml

    return list(yaml.safe_load(path.read_text())["models"])


def _find_sig(folder: Path, sig: str) -> Path | None:
    for pattern in (f"{sig}.safetensors", f"{sig}.th", f"{sig}-*.th"):
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def _load_file(path: Path) -> Any:
    from demucs.states import load_model

    if path.suffix == ".safetensors":
        from demucs.hf import load_safetensors_model
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            klass = (fh.metadata() or {}).get("klass", "")
        if not klass.startswith("demucs."):
            raise ModelUnavailableError(f"{path}: not a Demucs safetensors export (class {klass!r}).")
        return load_safetensors_model(path)
    _verify_checksum(path)
    return load_model(_torch_load_package(path))


def _torch_load_package(path: Path) -> dict[str, Any]:
    """A demucs checkpoint package, unpickled with only Demucs' model classes allowed."""
    import torch
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    allowed = [Demucs, HDemucs, HTDemucs, Fraction]
    try:
        with torch.serialization.safe_globals(allowed):
            package = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelUnavailableError(
            f"{path} cannot be loaded with weights_only=True ({exc}); only plain Demucs checkpoints "
            f"(klass/args/kwargs/state) are accepted."
        ) from exc
    if not isinstance(package, dict) or not {"klass", "args", "kwargs", "state"} <= set(package):
        raise ModelUnavailableError(f"{path} is not a Demucs checkpoint (klass/args/kwargs/state).")
    return package


def _verify_checksum(path: Path) -> None:
    if "-" not in path.stem:
        return
    expected = path.stem.rsplit("-", 1)[1]
    actual = hashlib.sha256(path.read_bytes()).hexdigest()[: len(expected)]
    if actual != expected:
        raise ModelUnavailableError(f"{path}: checksum mismatch (expected {expected}, got {actual}).")


# --- separation -----------------------------------------------------------------------------------


def separate(
    model: LoadedDemucs,
    wav_path: str | Path,
    out_dir: str | Path,
    device: str | None = None,
    segment_s: float | None = None,
    block_s: float = 60.0,
    overlap_s: float = 1.0,
) -> Stems:
    """Split ``wav_path`` (any file FFmpeg decodes) into ``vocals.wav`` and ``no_vocals.wav``
    (sum of the other sources) in ``out_dir``, 16 kHz mono. ``segment_s``: the model's window
    (default and maximum: the model's own); ``block_s``: audio held in memory at once."""
    if VOCALS not in model.sources:
        raise ValueError(f"model sources {model.sources} have no {VOCALS!r}")
    return separate_in_blocks(
        wav_path,
        out_dir,
        model.samplerate,
        model.audio_channels,
        lambda chunk: separate_waveform(model, chunk, device, segment_s),
        block_s,
        overlap_s,
    )


def separate_waveform(
    model: LoadedDemucs, audio: np.ndarray, device: str | None = None, segment_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(channels, n) float32 at the model's rate -> (vocals, the other sources summed), each mono
    float32 at 16 kHz."""
    import torch

    segment = min(segment_s or model.max_segment_s, model.max_segment_s)
    run_device = resolve_device(device) if device else model.device
    mix = torch.from_numpy(audio)
    ref = mix.mean(0)
    mean, std = ref.mean(), ref.std().clamp_min(1e-8)  # demucs' own normalisation
    with torch.no_grad():
        est = _apply(model, ((mix - mean) / std)[None], run_device, segment)[0] * std + mean
    vocals = est[model.sources.index(VOCALS)]
    rest = est.sum(0) - vocals
    return to_out_rate(vocals.mean(0), model.samplerate), to_out_rate(rest.mean(0), model.samplerate)


def _apply(model: LoadedDemucs, mix: Any, device: str, segment: float) -> Any:
    from demucs.apply import apply_model

    return apply_model(
        model.model,
        mix,
        shifts=0,
        split=True,
        overlap=0.25,
        device=device,
        segment=None if math.isinf(segment) else segment,
        progress=False,
    )


def describe(model: LoadedDemucs) -> dict[str, Any]:
    """What was loaded, for logs and asset metadata."""
    segment = model.max_segment_s
    return {
        "weights": str(model.weights),
        "device": model.device,
        "samplerate": model.samplerate,
        "sources": model.sources,
        "max_segment_s": segment if math.isfinite(segment) else None,
    }
