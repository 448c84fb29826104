"""Video understanding: strict parsing, one retry, taxonomy and content label mapping; a tiny random Qwen2.5-VL end
to end."""

import json

import pytest

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.vlm import (
    NO_INPUT,
    OK,
    UNPARSABLE,
    AnswerError,
    build_prompt,
    load_vlm,
    parse_answer,
    retry_message,
    understand,
)
from tiktok_assets.lib.vision.taxonomy import (
    MAPPED,
    MODEL,
    UNMAPPED,
    TaxonomyError,
    load_content_labels,
    load_taxonomy,
)
from tiktok_assets_tests.lib.vision_fixtures import *

VALID = '{"description": "Wireless over-ear headphones shown on a desk.", "category": ["Phones & Electronics", "Audio", "Headphones"]}'


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


@pytest.fixture(scope="module")
def labels():
    return load_content_labels()


# --- parser ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        VALID,
        f"Sure! Here is the JSON:\n```json\n{VALID}\n```\nHope that helps.",
        "The answer {is not json} but then " + VALID + ' and {"another": 1}',
        '{"description": "  Serum.  ", "category": ["Beauty", "Skin", "Serum"], "extra": true}',
    ],
)
def test_parser_finds_the_first_valid_json_object(text):
    answer = parse_answer(text)
    assert answer.description and len(answer.category) == 3
    assert answer.description == answer.description.strip()


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "no JSON object"),
        ("I think it is a lipstick.", "no JSON object"),
        ('{"description": "x", "category": ["a", "b"', "no JSON object"),  # truncated
        ('["a", "b", "c"]', "no JSON object"),
        ('{"category": ["a", "b", "c"]}', "missing key"),
        ('{"description": "", "category": ["a", "b", "c"]}', "non-empty string"),
        ('{"description": 3, "category": ["a", "b", "c"]}', "non-empty string"),
        ('{"description": "x", "category": "a > b > c"}', "three non-empty strings"),
        ('{"description": "x", "category": ["a", "b"]}', "three non-empty strings"),
        ('{"description": "x", "category": ["a", "b", 3]}', "three non-empty strings"),
        ('{"description": "x", "category": ["a", " ", "c"]}', "three non-empty strings"),
    ],
)
def test_parser_refuses_anything_else(text, reason):
    with pytest.raises(AnswerError, match=reason):
        parse_answer(text)


# --- retry + mapping, with scripted replies ------------------------------------------------------
def scripted(*replies):
    calls = []

    def generate(history):
        calls.append(list(history))
        return replies[len(calls) - 1]

    return generate, calls


def test_valid_first_answer(taxonomy):
    generate, calls = scripted(VALID)
    result = understand(generate, taxonomy)
    assert result.status == OK and result.attempts == 1 and len(calls) == 1
    assert result.category == ("Phones & Electronics", "Audio", "Headphones") and result.category_source == MODEL
    assert result.raw_output == VALID and result.taxonomy_version == taxonomy.version
    json.dumps(result.to_json())


def test_one_retry_then_success_with_a_mapped_category(taxonomy):
    second = '{"description": "A red lipstick.", "category": ["Beauty", "Make-up", "Lipsticks"]}'
    generate, calls = scripted("a lipstick, I think", second)
    result = understand(generate, taxonomy)
    assert result.status == OK and result.attempts == 2
    assert calls[0] == []
    assert [role for role, _ in calls[1]] == ["assistant", "user"]
    assert calls[1][0][1] == "a lipstick, I think" and "no JSON object" in calls[1][1][1]
    assert result.category == ("Beauty & Personal Care", "Makeup", "Lipstick & Lip Gloss")
    assert result.category_source == MAPPED and result.model_category == ["Beauty", "Make-up", "Lipsticks"]
    assert result.raw_outputs == ["a lipstick, I think", second] and len(result.errors) == 1


def test_unparsable_twice_keeps_the_raw_text(taxonomy):
    generate, calls = scripted("nope", '{"description": "x"}', "never asked")
    result = understand(generate, taxonomy)
    assert len(calls) == 2
    assert result.status == UNPARSABLE and result.attempts == 2
    assert result.description is None and result.category is None and result.category_source == UNMAPPED
    assert result.raw_output == '{"description": "x"}' and result.raw_outputs == ["nope", '{"description": "x"}']
    assert "missing key" in result.errors[1]


def test_nonsense_category_is_unmapped(taxonomy):
    generate, _ = scripted('{"description": "Something.", "category": ["qqq", "zzz", "xxx"]}')
    result = understand(generate, taxonomy)
    assert result.status == OK and result.description == "Something."
    assert result.category is None and result.category_source == UNMAPPED
    assert result.model_category == ["qqq", "zzz", "xxx"]


# --- content type and target audience ----------------------------------------------------------------
def answer_with(**fields) -> str:
    return json.dumps({"description": "A red lipstick.",
                       "category": ["Beauty & Personal Care", "Makeup", "Lipstick & Lip Gloss"], **fields})


@pytest.mark.parametrize(
    "content_type, target_audience, expected",
    [
        ("review", "women", (("review", MODEL), ("women", MODEL))),  # values as listed
        ("Tutorials", "Teens", (("tutorial", MODEL), ("teens", MODEL))),  # case and plural ignored
        ("advertisement", "moms", (("ad", MAPPED), ("parents", MAPPED))),  # synonyms
        ("un-boxing", "Teenagers", (("unboxing", MAPPED), ("teens", MAPPED))),  # written apart; a synonym
        ("unboxing video", "young women", (("unboxing", MAPPED), ("women", MAPPED))),  # a value among its words
        ("try on haul", "makeup enthusiasts", (("try-on", MAPPED), ("beauty enthusiasts", MAPPED))),  # longest name
        ("music video", "car owners", ((None, UNMAPPED), (None, UNMAPPED))),  # unknown: empty, not free text
        ("", "men and women", ((None, UNMAPPED), (None, UNMAPPED))),  # empty; two values tie
        (3, ["x", "Gamers"], ((None, UNMAPPED), ("gamers", MODEL))),  # not text; a list: its first fitting value
    ],
)
def test_content_type_and_audience_are_constrained_to_their_lists(taxonomy, labels, content_type, target_audience,
                                                                   expected):
    generate, _ = scripted(answer_with(content_type=content_type, target_audience=target_audience))
    result = understand(generate, taxonomy, labels)
    assert result.status == OK and result.attempts == 1
    got = ((result.content_type.label, result.content_type.source),
           (result.target_audience.label, result.target_audience.source))
    assert got == expected
    for match in (result.content_type, result.target_audience):
        assert match.label is None or match.label in (labels.content_type.values + labels.target_audience.values)
    stored = result.to_json()
    assert (stored["content_type"], stored["target_audience"]) == (expected[0][0], expected[1][0])
    assert stored["content_type_match"]["query"] == (str(content_type) if content_type != ["x", "Gamers"] else "")
    assert stored["labels_version"] == labels.version


def test_missing_content_type_and_audience_leave_them_empty_without_a_retry(taxonomy, labels):
    generate, calls = scripted(answer_with())
    result = understand(generate, taxonomy, labels)
    assert len(calls) == 1 and result.status == OK and result.category_source == MODEL
    assert result.content_type.label is None and result.target_audience.label is None
    assert result.to_json()["content_type"] is None and result.to_json()["target_audience_match"]["source"] == UNMAPPED
    # an unparsable reply has neither
    generate, _ = scripted("nope", "still nope")
    failed = understand(generate, taxonomy, labels).to_json()
    assert failed["status"] == UNPARSABLE and failed["content_type"] is None and failed["target_audience"] is None


def test_content_labels_file_is_validated(tmp_path):
    path = tmp_path / "labels.yaml"
    good = "version: '1'\ncontent_type: {review: [rating]}\ntarget_audience: {women: []}\n"
    path.write_text(good)
    loaded = load_content_labels(path)
    assert loaded.content_type.values == ["review"] and loaded.content_type.map("Rating").label == "review"
    for text, reason in [
        (good.replace("version: '1'\n", ""), "missing `version`"),
        (good.replace("target_audience: {women: []}\n", ""), "`target_audience` must be a non-empty mapping"),
        (good.replace("[rating]", "[rating, Ratings]"), "'Ratings' is listed twice"),
        (good.replace("[rating]", "rating"), "synonyms must be a list"),
        (good.replace("{women: []}", "{women: [''], men: []}"), "non-empty string"),
    ]:
        path.write_text(text)
        with pytest.raises(TaxonomyError, match=reason):
            load_content_labels(path)


def test_prompt_lists_the_content_types_and_audiences(taxonomy, labels):
    prompt = build_prompt(2, "", taxonomy, labels=labels)
    assert '"content_type": "<one content type>", "target_audience": "<one audience>"' in prompt
    assert f"content_type must be one of: {', '.join(labels.content_type.values)}\n" in prompt
    assert f"target_audience must be one of: {', '.join(labels.target_audience.values)}\n" in prompt
    assert all(v in prompt for v in ("review", "unboxing", "tutorial", "ad", "vlog", "pet owners"))
    assert '"content_type"' in retry_message("missing key")


def test_prompt_lists_the_taxonomy_and_the_transcript(taxonomy):
    prompt = build_prompt(3, "this serum   makes your skin glow " * 200, taxonomy, max_transcript_chars=100)
    assert "3 frames" in prompt and "Beauty & Personal Care > Skincare > Face Serum" in prompt
    assert "this serum makes your skin glow" in prompt and prompt.count("serum") < 10
    assert '"category"' in prompt
    short = build_prompt(0, "", taxonomy, taxonomy_levels=2)
    assert "no usable frames" in short and "(no speech)" in short
    assert "Beauty & Personal Care > Skincare\n" in short and "Face Serum" not in short


def test_prompt_has_the_on_screen_text_cut_to_its_limit(taxonomy):
    captions = " | ".join(["GLOW SERUM", "50% OFF TODAY ONLY"] * 100)
    prompt = build_prompt(3, "this serum makes your skin glow", taxonomy, onscreen_text=captions, max_onscreen_chars=40)
    assert 'Text shown on screen (OCR, captions separated by |): "GLOW SERUM | 50% OFF TODAY ONLY | GLOW ..."' in prompt
    assert 'Transcript of its speech: "this serum makes your skin glow"' in prompt
    assert '(OCR, captions separated by |): "(none)"' in build_prompt(3, "", taxonomy)


# --- tiny random model end to end --------------------------------------------------------------
@pytest.fixture(scope="module")
def describer(tiny_vlm_dir):
    return load_vlm(tiny_vlm_dir, device="cpu")


def test_random_model_on_real_frames_is_unparsable_after_two_attempts(describer, frame_files, taxonomy):
    result = describer.describe(frame_files[:2], "Check out this new wireless headphone.", taxonomy,
                                max_new_tokens=12)
    # A random model produces garbage: the retry happens and the raw text is kept, nothing is invented.
    assert result.status == UNPARSABLE and result.attempts == 2
    assert len(result.raw_outputs) == 2 and all(isinstance(r, str) for r in result.raw_outputs)
    assert result.raw_output == result.raw_outputs[-1]
    assert result.description is None and result.category is None
    stored = json.loads(json.dumps(result.to_json()))
    assert stored["content_type"] is None and stored["target_audience"] is None  # nothing answered, nothing stored
    assert stored["labels_version"] == load_content_labels().version


def test_generate_returns_only_new_text(describer, frame_files):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}]
    text = describer.generate(frame_files[:1], messages, max_new_tokens=5)
    assert isinstance(text, str) and "Describe." not in text and "<|im_start|>" not in text


def test_max_pixels_caps_the_image_tokens(tiny_vlm_dir, frame_files):
    small = load_vlm(tiny_vlm_dir, device="cpu", max_pixels=16 * 28 * 28)
    from PIL import Image

    inputs = small.processor(text=["<|vision_start|><|image_pad|><|vision_end|>"],
                             images=[Image.open(frame_files[0])], return_tensors="pt")
    assert int(inputs["image_grid_thw"].prod()) <= 16 * 4  # (28 / 14)^2 patches per 28x28 block
    default = load_vlm(tiny_vlm_dir, device="cpu")
    inputs = default.processor(text=["<|vision_start|><|image_pad|><|vision_end|>"],
                               images=[Image.open(frame_files[0])], return_tensors="pt")
    assert int(inputs["image_grid_thw"].prod()) > 16 * 4


def test_no_input_skips_the_model(describer, taxonomy):
    result = describer.describe([], "   ", taxonomy)
    assert result.status == NO_INPUT and result.attempts == 0


def test_transcript_only(describer, taxonomy):
    result = describer.describe([], "A serum that makes your skin glow.", taxonomy, max_new_tokens=4)
    assert result.attempts == 2 and result.status == UNPARSABLE


def test_on_screen_text_only_asks_the_model(describer, taxonomy):
    result = describer.describe([], "", taxonomy, max_new_tokens=4, onscreen_text="GLOW SERUM | 50% OFF")
    assert result.attempts == 2 and result.status == UNPARSABLE


def test_loaded_once_and_missing(tiny_vlm_dir, describer, tmp_path):
    before = MODEL_CACHE.load_count("vlm")
    assert load_vlm(str(tiny_vlm_dir), device="cpu") is describer
    assert MODEL_CACHE.load_count("vlm") == before
    with pytest.raises(ModelUnavailableError, match="tiktok-assets models pull qwen2.5-vl-3b"):
        load_vlm(models_dir=tmp_path, device="cpu")
