"""One configurable Dagster resource per model family.

Every resource takes ``model`` (a name from the model manifest, tiktok_assets/data/models.yaml, a hub id, or a local path; empty =
the preset's default), ``device`` (``auto`` = CUDA when present), a dtype / compute type, and a batch
size. ``load()`` returns the plain-Python model wrapper from ``tiktok_assets.lib.models``, which is
loaded lazily on first use and cached per process (``MODEL_CACHE``): a run that covers many
partitions loads each model once.
"""

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import dagster as dg

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import DEFAULT_MODELS_DIR, MODEL_CACHE, resolve_preset, resolve_weights
from tiktok_assets.lib.models.manifest import ModelEntry, default_model, load_manifest, manifest_path
from tiktok_assets.lib.stage_plan import StagePlan, plan_stages

MODELS_DIR_ENV = "TIKTOK_ASSETS_MODELS_DIR"
SEPARATORS = ("spleeter", "demucs")  # the separation backends (the manifest's `format` of its separator models)
CLOSED_SET_FAMILY = "detector"  # manifest family (and model cache family) of closed-set detectors


@dataclass(frozen=True)
class ModelRef:
    name: str  # manifest name (or the folder name of a local path): where models/<name> is looked up
    model: str  # hub id or local path
    note: str = ""  # set when the preset's default was replaced by an installed model of the family


def resolve_model_ref(
    family: str, model: str, preset: str, models_dir: Path, present: Callable[[ModelRef], bool] | None = None
) -> ModelRef:
    """The model a resource uses. An explicit ``model`` is used as given (manifest name, hub id or
    path). Empty: the preset's default, or, when ``present`` says it is not installed, the first
    installed manifest model of the same family."""
    entries = load_manifest(manifest_path(models_dir))
    if not model:
        entry = default_model(family, preset or None, entries)
        chosen = ModelRef(entry.name, entry.source)
        if present is None or present(chosen):
            return chosen
        for other in entries:
            ref = ModelRef(other.name, other.source)
            if other.family == family and other is not entry and present(ref):
                return ModelRef(ref.name, ref.model, f"{family}: {entry.name} is not installed; using {other.name}")
        return chosen
    for entry in entries:
        if model in (entry.name, entry.source) and entry.family == family:
            return ModelRef(entry.name, entry.source)
    return ModelRef(Path(model).name or model, model)


class ModelResource(dg.ConfigurableResource):
    """Fields shared by every model resource."""

    family: ClassVar[str]
    source_prefix: ClassVar[str] = ""  # e.g. "ultralytics:" for sources fetched by a library's own downloader

    model: str = ""
    device: str = "auto"
    preset: str = ""  # cpu / gpu / auto; empty = $TIKTOK_ASSETS_PRESET or auto
    models_dir: str = ""  # empty = $TIKTOK_ASSETS_MODELS_DIR or ./models
    batch_size: int = 8

    def _models_dir(self) -> Path:
        return Path(self.models_dir or os.environ.get(MODELS_DIR_ENV, str(DEFAULT_MODELS_DIR)))

    def _weights(self, ref: ModelRef) -> Path:
        """The local weights of ``ref``; ModelUnavailableError when they are not installed."""
        return resolve_weights(ref.name, ref.model.removeprefix(self.source_prefix), self._models_dir())

    def _present(self, ref: ModelRef) -> bool:
        try:
            self._weights(ref)
        except ModelUnavailableError:
            return False
        return True

    def _ref(self) -> ModelRef:
        return resolve_model_ref(self.family, self.model, self.preset, self._models_dir(), self._present)

    def model_name(self) -> str:
        """The manifest name (or folder name) of the model this resource uses."""
        return self._ref().name

    def missing(self) -> str | None:
        """Why this model cannot be used here (one sentence naming it and how to get it), or None."""
        try:
            self._weights(self._ref())
        except ModelUnavailableError as exc:
            return str(exc)
        return None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        MODEL_CACHE.release(self.family)


class WhisperResource(ModelResource):
    """faster-whisper (CTranslate2). compute_type: empty = int8 on CPU, float16 on CUDA."""

    family: ClassVar[str] = "whisper"

    compute_type: str = ""
    beam_size: int = 5
    language: str = ""  # empty = detect

    def load(self):
        from tiktok_assets.lib.models.whisper import load_whisper

        return load_whisper(self._weights(self._ref()), device=self.device, compute_type=self.compute_type or None)

    def _weights(self, ref: ModelRef) -> Path:
        from tiktok_assets.lib.models.whisper import whisper_weights

        return whisper_weights(ref.name, ref.model, self._models_dir())


class DemucsResource(ModelResource):
    """Vocal separation for audio_stems (vocals / no_vocals), with one of two backends: ``spleeter``
    (Spleeter 2-stems, the cpu preset's default: fast on a CPU) or ``demucs`` (htdemucs, the gpu
    preset's). ``separator`` picks the backend (empty: the preset's default model, or the backend of
    ``model`` when that is set); ``model`` picks weights (a manifest name or a local folder), as for the
    other resources. enabled=False skips separation and transcription runs on the mix. (The resource
    key stays ``demucs``, its name before Spleeter came.)"""

    family: ClassVar[str] = "separator"

    enabled: bool = True
    separator: str = ""  # spleeter | demucs; empty = the preset's default
    segment_s: float = 0.0  # demucs: 0 = the model's own segment length

    def _entries(self) -> list[ModelEntry]:
        return load_manifest(manifest_path(self._models_dir()))

    def _ref(self) -> ModelRef:
        if self.separator not in ("", *SEPARATORS):
            raise ValueError(f"unknown separator {self.separator!r}: use one of {', '.join(SEPARATORS)}")
        if self.model or not self.separator:
            return super()._ref()
        choices = [e for e in self._entries() if e.family == self.family and e.format == self.separator]
        if not choices:
            raise ValueError(f"separator {self.separator!r}: the manifest has no model for it; set `model`")
        preferred = [e for e in choices if resolve_preset(self.preset or None) in e.presets]
        return ModelRef((preferred or choices)[0].name, (preferred or choices)[0].source)

    def backend(self, ref: ModelRef | None = None) -> str:
        """``spleeter`` or ``demucs``: the manifest's format for a manifest model, else what the folder
        holds (a Spleeter folder has vocals.ckpt and accompaniment.ckpt)."""
        from tiktok_assets.lib.models.spleeter import is_spleeter_folder

        ref = ref or self._ref()
        formats = [e.format for e in self._entries() if e.name == ref.name and e.source == ref.model]
        kind = formats[0] if formats else "spleeter" if is_spleeter_folder(Path(ref.model).expanduser()) else "demucs"
        if self.separator and self.model and kind != self.separator:
            raise ValueError(f"model {self.model!r} is a {kind} model, but separator is {self.separator!r}")
        return kind

    def _weights(self, ref: ModelRef) -> Path:
        if self.backend(ref) == "spleeter":
            from tiktok_assets.lib.models.spleeter import spleeter_weights

            return spleeter_weights(ref.name, ref.model, self._models_dir())
        from tiktok_assets.lib.models.demucs import demucs_weights

        return demucs_weights(ref.name, ref.model.removeprefix("demucs:"), self._models_dir())

    def load(self):
        ref = self._ref()
        if self.backend(ref) == "spleeter":
            from tiktok_assets.lib.models.spleeter import load_spleeter

            return load_spleeter(self._weights(ref), device=self.device)
        from tiktok_assets.lib.models.demucs import load_demucs

        return load_demucs(self._weights(ref), device=self.device, name=ref.model.removeprefix("demucs:"))

    def separate(self, wav_path: Path, out_dir: Path):
        """vocals.wav and no_vocals.wav (16 kHz mono) of ``wav_path`` in ``out_dir``, with the model
        this resource uses (loaded once per process)."""
        from tiktok_assets.lib.models import demucs, spleeter

        model = self.load()
        if isinstance(model, spleeter.LoadedSpleeter):
            return spleeter.separate(model, wav_path, out_dir)
        return demucs.separate(model, wav_path, out_dir, segment_s=self.segment_s or None)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        for cached in SEPARATORS:  # the model cache's families: the backends' names
            MODEL_CACHE.release(cached)


class ClipResource(ModelResource):
    """open_clip image/text encoder; also encodes YOLO-World's class prompts."""

    family: ClassVar[str] = "clip"

    arch: str = "ViT-B-32"

    def load(self):
        from tiktok_assets.lib.models.clip import load_clip

        ref = self._ref()
        return load_clip(ref.model, name=ref.name, arch=self.arch, device=self.device, models_dir=self._models_dir())


class YoloWorldResource(ModelResource):
    """The detection stage's detector. By default ultralytics YOLO-World (open vocabulary; prompts come from
    the product vocabulary, encoded with the CLIP resource). With ``detector_model`` set (a manifest name or
    a path), a closed-set Ultralytics detector (``.pt``, OpenVINO export folder, ``.onnx``) instead, its
    classes mapped onto the vocabulary by ``class_map`` (empty = the packaged COCO map). A closed-set file
    given as ``model`` is recognised and used the same way (the stage plan says so)."""

    family: ClassVar[str] = "yolo_world"
    source_prefix: ClassVar[str] = "ultralytics:"

    detector_model: str = ""  # closed-set detector used instead of YOLO-World (manifest name or path)
    class_map: str = ""  # detector class -> vocabulary class file; empty = tiktok_assets/data/coco_class_map.yaml
    confidence: float = 0.25
    product_confidence: float = 0.35
    imgsz: int = 640
    safe_load: bool = True  # .pt checkpoints with weights_only=True

    def _ref(self) -> ModelRef:
        if self.detector_model:
            return resolve_model_ref(CLOSED_SET_FAMILY, self.detector_model, self.preset, self._models_dir())
        ref = super()._ref()
        if self.model and self._closed_set_file(ref):
            return ModelRef(ref.name, ref.model, f"yolo_world: {ref.name} is a closed-set detector, not YOLO-World: "
                            f"it runs as one (classes mapped by {self._class_map_path()}); choose it with "
                            f"TIKTOK_ASSETS_DETECTOR_MODEL")
        return ref

    def _closed_set_file(self, ref: ModelRef) -> bool:
        from tiktok_assets.lib.models.closed_set import is_open_vocabulary

        try:
            return not is_open_vocabulary(self._weights(ref))
        except ModelUnavailableError:
            return False

    def _class_map_path(self) -> Path:
        from tiktok_assets.lib.vision.class_map import default_class_map_path

        return Path(self.class_map) if self.class_map else default_class_map_path()

    def closed_set(self) -> bool:
        """True when the stage runs a closed-set detector (no CLIP prompts needed)."""
        return bool(self.detector_model) or (bool(self.model) and self._closed_set_file(super()._ref()))

    def missing(self) -> str | None:
        reason = super().missing()
        if reason is None and self.closed_set():
            from tiktok_assets.lib.vision.class_map import ClassMapError, load_class_map

            try:
                load_class_map(self._class_map_path())
            except ClassMapError as exc:
                return str(exc)
        return reason

    def load(self, clip, classes: list[str], product_classes: list[str]):
        """YOLO-World with prompts for ``classes`` from ``clip``."""
        from tiktok_assets.lib.models.yolo_world import load_yolo_world

        ref = self._ref()
        return load_yolo_world(clip, classes, product_classes, ref.model.removeprefix("ultralytics:"),
                               name=ref.name, device=self.device, imgsz=self.imgsz, safe_load=self.safe_load,
                               models_dir=self._models_dir())

    def load_closed_set(self, vocabulary):
        """The closed-set detector with its classes mapped onto ``vocabulary``; a class map that does not fit
        makes the stage unavailable (a setting to fix, said once), not a per-video error."""
        from tiktok_assets.lib.models.closed_set import load_closed_set_detector
        from tiktok_assets.lib.vision.class_map import ClassMapError, load_class_map

        try:
            return load_closed_set_detector(self._weights(self._ref()), load_class_map(self._class_map_path()),
                                            vocabulary, device=self.device, imgsz=self.imgsz, safe_load=self.safe_load)
        except ClassMapError as exc:
            raise ModelUnavailableError(str(exc)) from exc

    def detector(self, vocabulary, clip: Callable[[], object]):
        """The stage's detector for ``vocabulary``: closed-set, or YOLO-World with prompts from ``clip()``
        (called only then: a closed-set detector needs no text encoder)."""
        if self.closed_set():
            return self.load_closed_set(vocabulary)
        return self.load(clip(), list(vocabulary.names), list(vocabulary.product_names))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        super().teardown_after_execution(context)
        MODEL_CACHE.release(CLOSED_SET_FAMILY)


class BlipResource(ModelResource):
    """BLIP image captioning (transformers)."""

    family: ClassVar[str] = "blip"

    dtype: str = "auto"
    max_new_tokens: int = 30

    def load(self):
        from tiktok_assets.lib.models.blip import load_blip

        ref = self._ref()
        return load_blip(ref.model, name=ref.name, device=self.device, dtype=self.dtype, models_dir=self._models_dir())


class VlmResource(ModelResource):
    """Vision-language model (Qwen2.5-VL, native transformers class; never trust_remote_code)."""

    family: ClassVar[str] = "vlm"

    dtype: str = "auto"
    max_new_tokens: int = 256
    max_pixels: int = 448 * 448

    def load(self):
        from tiktok_assets.lib.models.vlm import load_vlm

        ref = self._ref()
        return load_vlm(ref.model, name=ref.name, device=self.device, dtype=self.dtype, max_pixels=self.max_pixels,
                        models_dir=self._models_dir())


class OcrResource(ModelResource):
    """RapidOCR (PP-OCRv4 ONNX, onnxruntime on CPU whatever ``device`` says) for onscreen_text. ``threads``:
    onnxruntime intra-op threads of each of its models (0 = half the cores, 1 to 4); readings
    below ``min_confidence`` are dropped."""

    family: ClassVar[str] = "ocr"

    threads: int = 0
    min_confidence: float = 0.5

    def _weights(self, ref: ModelRef) -> Path:
        from tiktok_assets.lib.vision.ocr import check_folder

        return check_folder(super()._weights(ref), ref.name)

    def missing(self) -> str | None:
        from tiktok_assets.lib.vision.ocr import missing_package

        return missing_package() or super().missing()

    def load(self):
        from tiktok_assets.lib.vision.ocr import load_ocr

        return load_ocr(self._weights(self._ref()), threads=self.threads, min_confidence=self.min_confidence)


class MusicRecognitionResource(dg.ConfigurableResource):
    """Shazam recognition sends audio to an outside service: off unless enabled here."""

    enabled: bool = False
    timeout_s: float = 20.0


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"TIKTOK_ASSETS_{name}", default)


def _flag(name: str, default: bool) -> bool:
    return _env(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


def model_resources() -> dict[str, dg.ConfigurableResource]:
    """Defaults for the code location. Without editing code a deployment picks models with
    TIKTOK_ASSETS_<FAMILY>_MODEL (manifest name, hub id or path), a closed-set detector instead of YOLO-World
    with TIKTOK_ASSETS_DETECTOR_MODEL (and its class map with TIKTOK_ASSETS_DETECTOR_CLASS_MAP), the preset
    with TIKTOK_ASSETS_PRESET,
    the device with TIKTOK_ASSETS_DEVICE; TIKTOK_ASSETS_SEPARATOR=spleeter|demucs picks the separation
    backend (TIKTOK_ASSETS_DEMUCS_MODEL its weights), TIKTOK_ASSETS_SEPARATION=0 turns separation off and
    TIKTOK_ASSETS_SHAZAM=1 turns Shazam recognition on. Run config overrides any of them per run."""
    common = {"device": _env("DEVICE", "auto"), "preset": _env("PRESET")}
    return {
        "whisper": WhisperResource(model=_env("WHISPER_MODEL"), **common),
        "demucs": DemucsResource(
            model=_env("DEMUCS_MODEL"), separator=_env("SEPARATOR"), enabled=_flag("SEPARATION", True), **common
        ),
        "clip": ClipResource(model=_env("CLIP_MODEL"), **common),
        "yolo_world": YoloWorldResource(model=_env("YOLO_WORLD_MODEL"), detector_model=_env("DETECTOR_MODEL"),
                                        class_map=_env("DETECTOR_CLASS_MAP"), **common),
        "blip": BlipResource(model=_env("BLIP_MODEL"), **common),
        "vlm": VlmResource(model=_env("VLM_MODEL"), **common),
        "ocr": OcrResource(model=_env("OCR_MODEL"), **common),
        "music_recognition": MusicRecognitionResource(enabled=_flag("SHAZAM", False)),
    }


def missing_chromaprint() -> str | None:
    if shutil.which("fpcalc"):
        return None
    return "fpcalc (Chromaprint) not found on PATH: apt-get install libchromaprint-tools"


def stage_plan(models: dict[str, dg.ConfigurableResource]) -> StagePlan:
    """Which stages can run with these model resources (a dict as returned by ``model_resources``):
    the one resolution the assets, the sensor and the CLI share. Loads nothing."""
    families = {k: r for k, r in models.items() if isinstance(r, ModelResource)}
    demucs = families.get("demucs")
    separation_off = isinstance(demucs, DemucsResource) and not demucs.enabled
    missing = {f: (None if f == "demucs" and separation_off else r.missing()) for f, r in families.items()}
    missing["chromaprint"] = missing_chromaprint()
    disabled = {"audio_stems": "separation switched off"} if separation_off else {}
    notes = tuple(note for r in families.values() if (note := r._ref().note))
    detector = families.get("yolo_world")
    closed_set = isinstance(detector, YoloWorldResource) and detector.closed_set()
    needs = {"frame_objects": ("yolo_world",)} if closed_set else None  # no CLIP prompts to encode
    return plan_stages(missing, disabled, notes, stage_models=needs)
