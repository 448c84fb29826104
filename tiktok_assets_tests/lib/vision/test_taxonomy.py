"""Taxonomy loading, validation and mapping of model answers onto valid paths."""

from pathlib import Path

import pytest

from tiktok_assets.lib.vision.taxonomy import MAPPED, MODEL, UNMAPPED, TaxonomyError, load_taxonomy


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_taxonomy_is_valid_and_complete(taxonomy):
    assert taxonomy.version
    assert len(taxonomy.level1) >= 12
    assert len(taxonomy.paths) >= 80
    assert len(set(taxonomy.paths)) == len(taxonomy.paths)
    assert all(len(p) == 3 and all(p) for p in taxonomy.paths)
    for l1 in ("Beauty & Personal Care", "Phones & Electronics", "Food & Beverages", "Pet Supplies",
               "Baby & Maternity", "Toys & Hobbies", "Sports & Outdoor", "Health"):
        assert l1 in taxonomy.level1


def test_valid_path_is_kept_as_model_answer(taxonomy):
    match = taxonomy.map_to_taxonomy(["Beauty & Personal Care", "Makeup", "Lipstick & Lip Gloss"])
    assert match.source == MODEL and match.similarity == 1.0
    assert match.path == ("Beauty & Personal Care", "Makeup", "Lipstick & Lip Gloss")


def test_case_and_ampersand_variants_are_still_the_model_answer(taxonomy):
    match = taxonomy.map_to_taxonomy(["beauty and personal care", "MAKEUP", "lipstick  and lip gloss"])
    assert match.source == MODEL
    assert match.path == ("Beauty & Personal Care", "Makeup", "Lipstick & Lip Gloss")  # canonical spelling


@pytest.mark.parametrize(
    "answer, expected",
    [
        (["Beauty", "Make-up", "Lipsticks"], ("Beauty & Personal Care", "Makeup", "Lipstick & Lip Gloss")),
        (["Electronics", "Audio", "Headphone"], ("Phones & Electronics", "Audio", "Headphones")),
        ("wireless headphones", ("Phones & Electronics", "Audio", "Headphones")),
        ("face serum for glowing skin", ("Beauty & Personal Care", "Skincare", "Face Serum")),
        ("Baby & Maternity > Baby Gear > Stroller", ("Baby & Maternity", "Baby Gear", "Strollers")),
        (["Pet Supplies", "Dog Supplies"], ("Pet Supplies", "Dog Supplies", "Dog Toys")),  # first leaf
        (["Audio", "Headphone"], ("Phones & Electronics", "Audio", "Headphones")),
    ],
)
def test_near_misses_are_mapped_to_the_nearest_valid_path(taxonomy, answer, expected):
    match = taxonomy.map_to_taxonomy(answer)
    assert match.source == MAPPED
    assert match.path == expected
    assert taxonomy.min_similarity <= match.similarity < 1.0
    assert taxonomy.is_valid(match.path)


@pytest.mark.parametrize("answer", [["asdf", "qwerty", "zzzz"], "xyzzy plugh", "", [], None, ["", " ", ""]])
def test_nonsense_is_unmapped(taxonomy, answer):
    match = taxonomy.map_to_taxonomy(answer)
    assert match.source == UNMAPPED
    assert match.path is None
    assert match.to_json()["path"] is None


def test_to_json_is_json_safe(taxonomy):
    import json

    json.dumps(taxonomy.map_to_taxonomy("sneaker").to_json())
    json.dumps(taxonomy.to_json())


def test_user_taxonomy_file(tmp_path):
    path = write(tmp_path, 'version: "1"\ncategories:\n  Gadgets:\n    Audio:\n      - Headphones\n      - Speakers\n')
    taxonomy = load_taxonomy(path)
    assert taxonomy.paths == [("Gadgets", "Audio", "Headphones"), ("Gadgets", "Audio", "Speakers")]
    assert taxonomy.map_to_taxonomy("headphone").path == ("Gadgets", "Audio", "Headphones")


@pytest.mark.parametrize(
    "text, message",
    [
        ("categories:\n  A:\n    B: [C]\n", "missing `version`"),
        ('version: "1"\ncategories: {}\n', "non-empty mapping"),
        ('version: "1"\ncategories:\n  A: {}\n', "missing level 2"),
        ('version: "1"\ncategories:\n  A:\n    B: []\n', "missing level 3"),
        ('version: "1"\ncategories:\n  A:\n    B: [C, D, c]\n', "duplicate leaf 'c'"),
        ('version: "1"\ncategories:\n  A:\n    B: [C]\n  A:\n    X: [Y]\n', "duplicate key 'A'"),
        ('version: "1"\ncategories:\n  A:\n    B: [C, ""]\n', "non-empty string"),
        ('version: "1"\ncategories:\n  A:\n    B: [C]\n    b: [D]\n', "duplicate level-2"),
        ('version: "1"\ncategories: [: bad\n', "not valid YAML"),
    ],
)
def test_invalid_files_give_clear_errors(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(TaxonomyError, match=message) as info:
        load_taxonomy(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(TaxonomyError, match="not found"):
        load_taxonomy(tmp_path / "nope.yaml")
