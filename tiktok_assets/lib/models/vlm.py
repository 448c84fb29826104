"""Video understanding with a vision-language model (Qwen2.5-VL, native transformers classes).

:meth:`VlmDescriber.describe` shows the model a video's representative frames, its transcript and its
on-screen text (OCR), and asks for strict JSON ``{"description": str, "category": [level1, level2, level3],
"content_type": str, "target_audience": str}``.

- Parsing (:func:`parse_answer`) takes the first JSON object in the reply (text or code fences
  around it are ignored), and requires ``description`` to be a non-empty string and ``category``
  a list of exactly three non-empty strings. Anything else is unparsable, with a reason.
- An unparsable reply gets ONE retry: the conversation continues with the model's reply and a
  message saying what was wrong. A second failure gives status ``unparsable``, no description or
  category, and the raw text of every attempt (never a made-up answer).
- The category is constrained to the taxonomy with :meth:`Taxonomy.map_to_taxonomy`: kept as is
  (``model``), mapped to the nearest valid path (``mapped``) or ``unmapped``.
- ``content_type`` and ``target_audience`` are constrained to their lists (``tiktok_assets/data/content_labels.yaml``)
  with :meth:`LabelList.map`: a value, a synonym mapped to its value, or empty. They are optional: a reply
  without them (or with an unknown value) is still parsed, and leaves them empty.

Loading: ``Qwen2_5_VLForConditionalGeneration`` + ``AutoProcessor`` from a local
``save_pretrained`` folder (resolved by :func:`resolve_weights`, default ``qwen2.5-vl-3b``), with
``local_files_only=True``; ``trust_remote_code`` is never set. One video per ``generate`` call,
greedy decoding.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE, resolve_device, resolve_weights
from tiktok_assets.lib.models.clip import ImageInput, load_image
from tiktok_assets.lib.vision.taxonomy import (
    UNMAPPED,
    ContentLabels,
    LabelMatch,
    Taxonomy,
    load_content_labels,
)

log = logging.getLogger("tiktok_assets.models.vlm")

DEFAULT_NAME = "qwen2.5-vl-3b"
DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
SUPPORTED_MODEL_TYPES = ("qwen2_5_vl",)

OK = "ok"
UNPARSABLE = "unparsable"
NO_INPUT = "no_input"
MAX_ATTEMPTS = 2  # the first answer and one retry

SYSTEM_PROMPT = "You are a product analyst for an e-commerce catalogue. You answer with strict JSON only."
ANSWER_SHAPE = ('{"description": "<one or two sentences about the product and how it is shown>", '
                '"category": ["<level 1>", "<level 2>", "<level 3>"], '
                '"content_type": "<one content type>", "target_audience": "<one audience>"}')


class AnswerError(ValueError):
    """The model's reply is not the JSON asked for; the message says why."""


@dataclass(frozen=True)
class ParsedAnswer:
    description: str
    category: tuple[str, str, str]
    content_type: Any = None  # as answered (constrained later); None when absent
    target_audience: Any = None


@dataclass
class VideoUnderstanding:
    description: str | None
    category: tuple[str, str, str] | None  # a valid taxonomy path, or None
    category_source: str  # model | mapped | unmapped
    category_similarity: float
    model_category: list[str] | None  # what the model answered, before mapping
    raw_output: str  # the raw text of the last attempt
    attempts: int
    status: str  # ok | unparsable | no_input
    raw_outputs: list[str] = field(default_factory=list)  # every attempt, in order
    errors: list[str] = field(default_factory=list)  # why each unparsable attempt was refused
    taxonomy_version: str = ""
    content_type: LabelMatch = field(default_factory=lambda: LabelMatch(None, UNMAPPED, 0.0))
    target_audience: LabelMatch = field(default_factory=lambda: LabelMatch(None, UNMAPPED, 0.0))
    labels_version: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "category": list(self.category) if self.category else None,
            "category_source": self.category_source,
            "category_similarity": round(self.category_similarity, 4),
            "model_category": self.model_category,
            "raw_output": self.raw_output,
            "attempts": self.attempts,
            "status": self.status,
            "raw_outputs": list(self.raw_outputs),
            "errors": list(self.errors),
            "taxonomy_version": self.taxonomy_version,
            "content_type": self.content_type.label,  # a value of the list, or None
            "content_type_match": self.content_type.to_json(),  # what the model answered and how it was mapped
            "target_audience": self.target_audience.label,
            "target_audience_match": self.target_audience.to_json(),
            "labels_version": self.labels_version,
        }


# --- parsing -------------------------------------------------------------------------------------
def first_json_object(text: str) -> dict[str, Any]:
    """The first ``{...}`` in ``text`` that decodes as a JSON object."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise AnswerError("no JSON object found in the reply")


def parse_answer(text: str) -> ParsedAnswer:
    obj = first_json_object(text)
    missing = [k for k in ("description", "category") if k not in obj]
    if missing:
        raise AnswerError(f"missing key(s) {missing} in {json.dumps(obj)[:200]}")
    description = obj["description"]
    if not isinstance(description, str) or not description.strip():
        raise AnswerError("`description` must be a non-empty string")
    category = obj["category"]
    if (not isinstance(category, list) or len(category) != 3
            or any(not isinstance(x, str) or not x.strip() for x in category)):
        raise AnswerError(f"`category` must be a list of three non-empty strings, got {json.dumps(category)[:200]}")
    return ParsedAnswer(description.strip(), (category[0].strip(), category[1].strip(), category[2].strip()),
                        obj.get("content_type"), obj.get("target_audience"))


# --- prompting -----------------------------------------------------------------------------------
def _clip(text: str, max_chars: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``max_chars`` (then marked with `...`)."""
    text = " ".join(text.split())
    return text[:max_chars].rsplit(" ", 1)[0] + " ..." if len(text) > max_chars else text


def build_prompt(n_frames: int, transcript: str, taxonomy: Taxonomy, max_transcript_chars: int = 2000,
                 taxonomy_levels: int = 3, onscreen_text: str = "", max_onscreen_chars: int = 1000,
                 labels: ContentLabels | None = None) -> str:
    """The first user turn: what the frames are, the transcript and the on-screen text (OCR lines joined
    by ` | `), each cut to its limit, the taxonomy and the content types and audiences to choose from
    (``labels``: the packaged lists when None)."""
    labels = labels or load_content_labels()
    transcript = _clip(transcript, max_transcript_chars)
    onscreen_text = _clip(onscreen_text, max_onscreen_chars)
    if taxonomy_levels >= 3:
        listing = taxonomy.prompt_listing()
        rule = "The category must be exactly one of these paths (level 1 > level 2 > level 3):"
    else:
        listing = "\n".join(f"{l1} > {l2}" for l1, level2 in taxonomy.tree.items() for l2 in level2)
        rule = "Level 1 and level 2 must come from this list (level 1 > level 2); choose a fitting level 3:"
    seen = f"These are {n_frames} frames from a short vertical product video." if n_frames else \
        "There are no usable frames from this short product video."
    return (
        f"{seen}\nTranscript of its speech: \"{transcript or '(no speech)'}\"\n"
        f"Text shown on screen (OCR, captions separated by |): \"{onscreen_text or '(none)'}\"\n\n"
        "Describe the product shown or talked about, categorise it, and say what kind of video it is and whom "
        "it addresses. Reply with only this JSON object, nothing else:\n"
        f"{ANSWER_SHAPE}\n\n"
        f"content_type must be one of: {labels.content_type.prompt_listing()}\n"
        f"target_audience must be one of: {labels.target_audience.prompt_listing()}\n"
        f"{rule}\n{listing}"
    )


def retry_message(error: str) -> str:
    return f"That reply could not be used: {error}. Reply again with only the JSON object {ANSWER_SHAPE}."


def understand(generate: Callable[[list[tuple[str, str]]], str], taxonomy: Taxonomy,
               labels: ContentLabels | None = None) -> VideoUnderstanding:
    """Ask, parse, retry once, map the category, the content type and the audience (``labels``: the
    packaged lists when None). ``generate`` gets the turns after the first user turn as (role, text)
    pairs ([] on the first attempt) and returns the model's raw reply."""
    labels = labels or load_content_labels()
    history: list[tuple[str, str]] = []
    raw_outputs: list[str] = []
    errors: list[str] = []
    for _ in range(MAX_ATTEMPTS):
        raw = generate(history)
        raw_outputs.append(raw)
        try:
            answer = parse_answer(raw)
        except AnswerError as exc:
            errors.append(str(exc))
            history = [*history, ("assistant", raw), ("user", retry_message(str(exc)))]
            continue
        match = taxonomy.map_to_taxonomy(list(answer.category))
        return VideoUnderstanding(
            description=answer.description, category=match.path, category_source=match.source,
            category_similarity=match.similarity, model_category=list(answer.category), raw_output=raw,
            attempts=len(raw_outputs), status=OK, raw_outputs=raw_outputs, errors=errors,
            taxonomy_version=taxonomy.version, content_type=labels.content_type.map(answer.content_type),
            target_audience=labels.target_audience.map(answer.target_audience), labels_version=labels.version,
        )
    return VideoUnderstanding(
        description=None, category=None, category_source=UNMAPPED, category_similarity=0.0, model_category=None,
        raw_output=raw_outputs[-1], attempts=len(raw_outputs), status=UNPARSABLE, raw_outputs=raw_outputs,
        errors=errors, taxonomy_version=taxonomy.version, labels_version=labels.version,
    )


# --- model ---------------------------------------------------------------------------------------
@dataclass
class VlmDescriber:
    model: Any
    processor: Any
    device: str
    dtype: Any
    weights: str
    max_pixels: int | None = None

    def generate(self, images: Sequence[ImageInput], messages: list[dict[str, Any]], max_new_tokens: int) -> str:
        import torch

        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[text], images=[load_image(i) for i in images] or None,
                                return_tensors="pt").to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = ids[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new, skip_special_tokens=True)[0]

    def describe(self, frames: Sequence[ImageInput], transcript: str, taxonomy: Taxonomy, max_new_tokens: int = 256,
                 max_transcript_chars: int = 2000, taxonomy_levels: int = 3,
                 onscreen_text: str = "", labels: ContentLabels | None = None) -> VideoUnderstanding:
        """Description, category, content type and audience of one video from its frames (paths or PIL),
        transcript and on-screen text."""
        frames = list(frames)
        labels = labels or load_content_labels()
        if not frames and not transcript.strip() and not onscreen_text.strip():
            return VideoUnderstanding(None, None, UNMAPPED, 0.0, None, "", 0, NO_INPUT,
                                      taxonomy_version=taxonomy.version, labels_version=labels.version)
        prompt = build_prompt(len(frames), transcript, taxonomy, max_transcript_chars, taxonomy_levels,
                              onscreen_text=onscreen_text, labels=labels)
        first_user = {"role": "user", "content": [*({"type": "image"} for _ in frames), {"type": "text", "text": prompt}]}
        base = [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]}, first_user]

        def generate(history: list[tuple[str, str]]) -> str:
            turns = [{"role": role, "content": [{"type": "text", "text": text}]} for role, text in history]
            return self.generate(frames, base + turns, max_new_tokens)

        return understand(generate, taxonomy, labels)


def _dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _build(weights: Path, device: str, dtype: str, max_pixels: int | None) -> VlmDescriber:
    from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLForConditionalGeneration

    if not (weights / "config.json").is_file():
        raise ModelUnavailableError(f"VLM folder {weights} has no config.json (expected save_pretrained format)")
    config = AutoConfig.from_pretrained(str(weights), local_files_only=True)
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelUnavailableError(f"{weights} holds a {config.model_type!r} model; supported: {SUPPORTED_MODEL_TYPES}")
    resolved_dtype = _dtype(dtype, device)
    processor = AutoProcessor.from_pretrained(str(weights), local_files_only=True)
    if max_pixels:  # Qwen's image processor reads its pixel budget from size["longest_edge"]
        image_processor = processor.image_processor
        image_processor.size = {**dict(image_processor.size), "longest_edge": int(max_pixels)}
        if hasattr(image_processor, "max_pixels"):
            image_processor.max_pixels = int(max_pixels)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(weights), local_files_only=True,
                                                               dtype=resolved_dtype)
    model.to(device).eval()
    return VlmDescriber(model, processor, device, resolved_dtype, str(weights), max_pixels)


def load_vlm(
    model: str | Path = DEFAULT_MODEL,
    *,
    name: str = DEFAULT_NAME,
    device: str = "auto",
    dtype: str = "auto",
    max_pixels: int | None = None,
    models_dir: Path | None = None,
) -> VlmDescriber:
    """Load (once per process) Qwen2.5-VL from local weights. ``max_pixels`` caps each frame's size
    (Qwen's image processor default is 28*28*1280; 28*28*256 keeps CPU runs short)."""
    weights = resolve_weights(name, str(model), models_dir)
    resolved_device = resolve_device(device)
    key = ("vlm", str(weights.resolve()), resolved_device, dtype, max_pixels)
    return MODEL_CACHE.get(key, lambda: _build(weights, resolved_device, dtype, max_pixels))
