"""The CLIP, BLIP and Qwen2.5-VL wrappers give the numbers the libraries' own documented usage gives,
on the same tiny random weights and the same real photographs (scikit-image's coffee and chelsea).

Every tiny model here has NON-default preprocessing in its own config (image size, mean / std, resize
mode or resampling, pixel budget), so a wrapper that hard-coded 224 px, 384 px or the OpenAI / ImageNet
statistics would fail; each test also shows that the library's default preprocessing gives different
numbers on these weights, i.e. that the comparison can fail. BLIP and Qwen2.5-VL are re-initialised
with a larger weight scale than the fixtures' (0.02): at 0.02 their greedy output is the same token
whatever the image, which would make a token comparison meaningless.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from tiktok_assets.lib.models.blip import load_blip
from tiktok_assets.lib.models.clip import load_clip
from tiktok_assets.lib.models.vlm import load_vlm
from tiktok_assets.lib.vision.taxonomy import load_taxonomy
from tiktok_assets_tests.lib.vision_fixtures import *

CUSTOM_MEAN = [0.5, 0.5, 0.5]
CUSTOM_STD = [0.25, 0.3, 0.35]


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [Image.fromarray(data.coffee()), Image.fromarray(data.chelsea())]  # 600x400 and 451x300, RGB


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


# --- CLIP: open_clip create_model_and_transforms + preprocess + encode_image / encode_text + L2 norm -----
CLIP_SIZE = 160
CLIP_PREPROCESS = {"mean": CUSTOM_MEAN, "std": CUSTOM_STD, "interpolation": "bilinear", "resize_mode": "squash"}


@pytest.fixture(scope="module")
def custom_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """open_clip hub layout with a 160 px ViT and squash / bilinear / custom mean-std preprocessing."""
    import open_clip

    folder = tmp_path_factory.mktemp("clip_custom")
    model_cfg = {**TINY_CLIP_CFG, "vision_cfg": {**TINY_CLIP_CFG["vision_cfg"], "image_size": CLIP_SIZE}}
    config = {"model_cfg": model_cfg, "preprocess_cfg": CLIP_PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.manual_seed(1)
    torch.save(open_clip.CLIP(**model_cfg).state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def _open_clip_reference(model_name: str, pretrained: str | None, photos: list[Image.Image],
                         texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """open_clip's README usage, one image at a time."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    image_features, text_features = [], []
    with torch.no_grad():
        for photo in photos:
            features = model.encode_image(preprocess(photo).unsqueeze(0))
            image_features.append(features / features.norm(dim=-1, keepdim=True))
        features = model.encode_text(tokenizer(texts))
        text_features.append(features / features.norm(dim=-1, keepdim=True))
    return torch.cat(image_features).numpy(), torch.cat(text_features).numpy()


@pytest.mark.parametrize("layout", ["hub folder, custom preprocessing", "checkpoint file"])
def test_clip_embeddings_equal_open_clip_reference(layout, custom_clip_dir, tiny_clip_file, photos):
    texts = ["a photo of a coffee cup", "a photo of a cat", "a red lipstick"]
    if layout == "checkpoint file":
        encoder = load_clip(tiny_clip_file, arch=TINY_CLIP_ARCH, device="cpu")
        ref_images, ref_texts = _open_clip_reference(TINY_CLIP_ARCH, str(tiny_clip_file), photos, texts)
    else:
        encoder = load_clip(custom_clip_dir, device="cpu")
        ref_images, ref_texts = _open_clip_reference(f"local-dir:{custom_clip_dir}", None, photos, texts)
    images = encoder.encode_images(photos)
    assert images.shape == ref_images.shape == (2, 512)
    assert _max_abs_diff(images, ref_images) < 1e-5
    assert _max_abs_diff(encoder.encode_texts(texts), ref_texts) < 1e-5
    assert _max_abs_diff(images[0], images[1]) > 1e-2  # the two photos are told apart


def test_clip_preprocessing_is_the_one_in_its_config(custom_clip_dir, photos):
    """Built by hand from open_clip_config.json: squash to 160x160 (bilinear), scale to [0, 1], custom mean / std."""
    from torchvision import transforms

    expected = transforms.Compose([
        transforms.Resize((CLIP_SIZE, CLIP_SIZE), interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.ToTensor(),
        transforms.Normalize(CUSTOM_MEAN, CUSTOM_STD),
    ])
    encoder = load_clip(custom_clip_dir, device="cpu")
    pixels = encoder.image_tensor(photos)
    assert pixels.shape == (2, 3, CLIP_SIZE, CLIP_SIZE)
    assert torch.allclose(pixels, torch.stack([expected(p) for p in photos]), atol=1e-6)
    # what a hard-coded OpenAI normalisation would feed the model instead
    openai = transforms.Normalize([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
    default = torch.stack([openai(transforms.ToTensor()(p.resize((CLIP_SIZE, CLIP_SIZE), Image.BILINEAR)))
                           for p in photos])
    assert not torch.allclose(pixels, default, atol=1e-2)


# --- BLIP: BlipProcessor + BlipForConditionalGeneration.generate (unconditional, as the model card) ------
BLIP_SIZE = 224
BLIP_NEW_TOKENS = 12


@pytest.fixture(scope="module")
def custom_blip_dir(tiny_blip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture BLIP's tokenizer and config with a 224 px vision tower, bilinear resizing, custom mean / std."""
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    config = BlipConfig.from_pretrained(tiny_blip_dir)
    config.vision_config.image_size = BLIP_SIZE
    for cfg in (config, config.text_config, config.vision_config):
        cfg.initializer_range = 0.5
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config).eval()
    tokenizer = BlipProcessor.from_pretrained(tiny_blip_dir).tokenizer
    image_processor = BlipImageProcessor(size={"height": BLIP_SIZE, "width": BLIP_SIZE}, resample=Image.BILINEAR,
                                         image_mean=CUSTOM_MEAN, image_std=CUSTOM_STD)
    folder = tmp_path_factory.mktemp("blip_custom")
    model.save_pretrained(folder)
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_blip_captions_equal_model_card_usage(custom_blip_dir, photos):
    from transformers import BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    captions = load_blip(custom_blip_dir, device="cpu").caption(photos, max_new_tokens=BLIP_NEW_TOKENS)

    processor = BlipProcessor.from_pretrained(custom_blip_dir)
    model = BlipForConditionalGeneration.from_pretrained(custom_blip_dir).eval()
    special = set(processor.tokenizer.all_special_ids)
    default_processor = BlipImageProcessor(size={"height": BLIP_SIZE, "width": BLIP_SIZE})  # library defaults
    reference, differs_with_defaults = [], []
    for photo in photos:
        inputs = processor(photo, return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=BLIP_NEW_TOKENS)
        assert sum(int(t) not in special for t in out[0]) >= 5  # several real tokens, not an immediate [SEP]
        reference.append(processor.decode(out[0], skip_special_tokens=True))
        default_out = model.generate(**default_processor(photo, return_tensors="pt"), max_new_tokens=BLIP_NEW_TOKENS)
        differs_with_defaults.append(default_out[0].tolist() != out[0].tolist())
    assert captions == reference
    assert reference[0] != reference[1]  # the caption depends on the image
    assert any(differs_with_defaults)  # hard-coded default preprocessing would give other captions


# --- Qwen2.5-VL: chat template + processor + generate(do_sample=False), prompt trimmed (model card) ------
VLM_MIN_PIXELS = 8 * 28 * 28
VLM_MAX_PIXELS = 40 * 28 * 28
VLM_NEW_TOKENS = 12


@pytest.fixture(scope="module")
def custom_vlm_dir(tiny_vlm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture Qwen2.5-VL's tokenizer, template and config, with its own pixel budget, bilinear
    resizing and custom mean / std."""
    from transformers import (
        AutoConfig,
        AutoProcessor,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
    )

    config = AutoConfig.from_pretrained(tiny_vlm_dir)
    for cfg in (config, config.text_config, config.vision_config):
        cfg.initializer_range = 0.2
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    base = AutoProcessor.from_pretrained(tiny_vlm_dir)
    image_processor = Qwen2VLImageProcessor(min_pixels=VLM_MIN_PIXELS, max_pixels=VLM_MAX_PIXELS,
                                            resample=Image.BILINEAR, image_mean=CUSTOM_MEAN, image_std=CUSTOM_STD)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=base.tokenizer,
                                    video_processor=base.video_processor, chat_template=base.chat_template)
    folder = tmp_path_factory.mktemp("vlm_custom")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _model_card_inputs(processor, messages: list[dict], images: list[Image.Image]):
    """The model card's messages carry each image in its content entry; qwen_vl_utils is not a
    dependency, so the images go to the processor directly (as the transformers docs do)."""
    queue = iter(images)
    with_images = [{"role": m["role"], "content": [{"type": "image", "image": next(queue)} if c["type"] == "image"
                                                   else c for c in m["content"]]} for m in messages]
    text = processor.apply_chat_template(with_images, tokenize=False, add_generation_prompt=True)
    return processor(text=[text], images=images, videos=None, padding=True, return_tensors="pt")


def test_vlm_generates_the_model_card_tokens(custom_vlm_dir, photos, monkeypatch):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

    describer = load_vlm(custom_vlm_dir, device="cpu")
    # Record what describe() sends (messages) and what the model returns (token ids), unchanged.
    sent, returned = [], []
    wrapper_generate, model_generate = describer.generate, describer.model.generate

    def record_messages(images, messages, max_new_tokens):
        text = wrapper_generate(images, messages, max_new_tokens)
        sent.append((list(images), messages, text))
        return text

    def record_ids(**inputs):
        ids = model_generate(**inputs)
        returned.append((inputs, ids[0, inputs["input_ids"].shape[1]:].tolist()))
        return ids

    monkeypatch.setattr(describer, "generate", record_messages)
    monkeypatch.setattr(describer.model, "generate", record_ids)
    # taxonomy_levels=2: a shorter taxonomy listing (~2,400 prompt tokens instead of ~9,400) keeps this fast
    result = describer.describe(photos, "This mug keeps your coffee hot for hours.", load_taxonomy(),
                                max_new_tokens=VLM_NEW_TOKENS, taxonomy_levels=2)
    assert result.attempts == 2 and len(sent) == len(returned) == 2  # a random model: first answer and the retry

    processor = AutoProcessor.from_pretrained(custom_vlm_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(custom_vlm_dir).eval()
    eos = model.generation_config.eos_token_id
    for (images, messages, text), (wrapper_inputs, wrapper_ids) in zip(sent, returned, strict=True):
        inputs = _model_card_inputs(processor, messages, images)
        patches = inputs["image_grid_thw"].prod(dim=1) * 14 * 14
        assert all(VLM_MIN_PIXELS <= int(p) <= VLM_MAX_PIXELS for p in patches)  # the config's pixel budget
        assert torch.equal(wrapper_inputs["input_ids"], inputs["input_ids"])
        assert torch.allclose(wrapper_inputs["pixel_values"], inputs["pixel_values"], atol=1e-6)
        generated = model.generate(**inputs, max_new_tokens=VLM_NEW_TOKENS, do_sample=False)
        trimmed = [out[len(prompt):] for prompt, out in zip(inputs.input_ids, generated, strict=True)]
        reference_ids = trimmed[0].tolist()
        assert wrapper_ids == reference_ids
        assert len(reference_ids) >= 5 and reference_ids[0] != eos and len(set(reference_ids)) > 1
        reference_text = processor.batch_decode(trimmed, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        assert text == reference_text[0]

    # The library's default mean / std (OpenAI's), with the same pixel budget, give other pixel values: a
    # wrapper with hard-coded defaults fails the pixel check above. (Whether the random model's greedy tokens
    # also change depends on how much of the long prompt the images are, so tokens are not compared here.)
    wrapper_pixels = _model_card_inputs(processor, sent[0][1], sent[0][0])["pixel_values"]
    processor.image_processor = Qwen2VLImageProcessor(min_pixels=VLM_MIN_PIXELS, max_pixels=VLM_MAX_PIXELS,
                                                      resample=Image.BILINEAR)
    defaults = _model_card_inputs(processor, sent[0][1], sent[0][0])
    assert defaults["pixel_values"].shape == wrapper_pixels.shape
    assert not torch.allclose(defaults["pixel_values"], wrapper_pixels, atol=1e-3)
