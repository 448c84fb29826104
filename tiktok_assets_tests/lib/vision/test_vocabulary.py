"""Product vocabulary loading and validation."""

from pathlib import Path

import pytest

from tiktok_assets.lib.vision.taxonomy import load_taxonomy
from tiktok_assets.lib.vision.vocabulary import VocabularyError, load_vocabulary


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vocabulary.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_vocabulary_is_valid_against_the_packaged_taxonomy():
    vocabulary = load_vocabulary(taxonomy=load_taxonomy())
    assert vocabulary.version
    for name in ("lipstick", "perfume bottle", "sneaker", "handbag", "smartphone", "headphones", "laptop",
                 "sofa", "mug", "snack bag", "toy car", "dumbbell", "baby stroller", "dog toy"):
        assert vocabulary.is_product(name), name
        assert vocabulary.get(name).prompts
    for name in ("person", "face", "hand"):
        assert vocabulary.get(name) is not None and not vocabulary.is_product(name)
    assert len(vocabulary.names) == len(set(vocabulary.names))
    assert all(name in vocabulary.product_names for name, _ in vocabulary.product_prompts())
    assert not vocabulary.is_product("unicorn")


def test_user_vocabulary(tmp_path):
    path = write(tmp_path, 'version: "7"\nclasses:\n  - name: kettle\n    prompts: a kettle\n'
                           "    taxonomy_l1: Household Appliances\n  - {name: person, prompts: [a person], product: false}\n")
    vocabulary = load_vocabulary(path, taxonomy=load_taxonomy())
    assert vocabulary.names == ["kettle", "person"]
    assert vocabulary.product_prompts() == [("kettle", "a kettle")]
    assert vocabulary.to_json()["classes"][1]["product"] is False


@pytest.mark.parametrize(
    "text, message",
    [
        ("classes:\n  - {name: a, prompts: [x], taxonomy_l1: T}\n", "missing `version`"),
        ('version: "1"\nclasses: []\n', "non-empty list"),
        ('version: "1"\nclasses:\n  - {name: a, prompts: [], taxonomy_l1: T}\n', "`prompts` must be"),
        ('version: "1"\nclasses:\n  - {name: a, prompts: ["x", " "], taxonomy_l1: T}\n', "empty prompt"),
        ('version: "1"\nclasses:\n  - {name: a, taxonomy_l1: T}\n', "`prompts` must be"),
        ('version: "1"\nclasses:\n  - {name: "", prompts: [x], taxonomy_l1: T}\n', "`name` must be"),
        ('version: "1"\nclasses:\n  - {name: a, prompts: [x], taxonomy_l1: T}\n  - {name: A, prompts: [y], taxonomy_l1: T}\n',
         "duplicate class 'A'"),
        ('version: "1"\nclasses:\n  - {name: a, prompts: [x]}\n', "needs `taxonomy_l1`"),
        ('version: "1"\nclasses:\n  - {name: a, prompts: [x], taxonomy_l1: T}\n  - {name: b, prompts: [x], product: false, taxonomy_l1: T}\n',
         "must not have `taxonomy_l1`"),
        ('version: "1"\nclasses:\n  - {name: a, prompts: [x], taxonomy_l1: T, colour: red}\n', "unknown keys"),
        ('version: "1"\nclasses:\n  - {name: a, prompts: [x], product: false}\n', "no product class"),
        ('version: "1"\nversion: "2"\nclasses: []\n', "duplicate key"),
    ],
)
def test_invalid_files_give_clear_errors(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(VocabularyError, match=message) as info:
        load_vocabulary(path)
    assert str(path) in str(info.value)


def test_unknown_taxonomy_hint(tmp_path):
    path = write(tmp_path, 'version: "1"\nclasses:\n  - {name: a, prompts: [x], taxonomy_l1: Spaceships}\n')
    load_vocabulary(path)  # fine on its own
    with pytest.raises(VocabularyError, match="Spaceships"):
        load_vocabulary(path, taxonomy=load_taxonomy())
