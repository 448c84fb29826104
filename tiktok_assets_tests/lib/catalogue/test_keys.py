import re

from tiktok_assets.lib.catalogue.keys import is_video_file, partition_key_for

SAFE = re.compile(r"^[a-z0-9_-]+$")


def test_clean_names_map_to_themselves():
    assert partition_key_for("/any/folder/product_talk.mp4") == "product_talk"
    assert partition_key_for("clip-01.mp4") == "clip-01"


def test_keys_are_safe_stable_and_collision_free():
    names = ["a b.mp4", "a_b.mp4", "A_B.mp4", "a_b.mov", "crème brûlée.mp4", "it's \"quoted\".mp4",
             "视频.mp4", "视频2.mp4", "a_b-h1234abcd.mp4", "....mp4", "x" * 300 + ".mp4"]
    keys = [partition_key_for(n) for n in names]
    assert len(set(keys)) == len(names)
    for key in keys:
        assert SAFE.match(key), key
        assert len(key) <= 72
    assert keys == [partition_key_for(n) for n in names]  # stable
    assert partition_key_for("crème brûlée.mp4").startswith("creme_brulee-h")


def test_only_visible_video_files_count():
    assert is_video_file("x.mp4") and is_video_file("X.MOV")
    assert not is_video_file(".hidden.mp4")
    assert not is_video_file("notes.txt")
    assert not is_video_file("x.mp4.part")
