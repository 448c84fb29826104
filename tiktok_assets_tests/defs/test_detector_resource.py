"""Choosing the detection stage's detector: YOLO-World by default, a closed-set detector with
TIKTOK_ASSETS_DETECTOR_MODEL (manifest name or path), a closed-set file given as the YOLO-World model
recognised, and what the stage plan says about each."""

import shutil
from pathlib import Path

import pytest

from tiktok_assets.defs.model_resources import ClipResource, YoloWorldResource, model_resources, stage_plan
from tiktok_assets.defs.video_stage import stage_code_version
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.closed_set import ClosedSetDetector
from tiktok_assets.lib.models.manifest import CODE_MANIFEST
from tiktok_assets.lib.vision.vocabulary import load_vocabulary
from tiktok_assets_tests.lib.vision_fixtures import *

MANIFEST = CODE_MANIFEST


def _models_dir(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MANIFEST, models / "manifest.yaml")
    return models


def test_a_closed_set_detector_replaces_yolo_world_and_needs_no_clip(tmp_path, tiny_detector_pt, tiny_yolo_world_pt):
    no_clip = ClipResource(model=str(tmp_path / "no_clip_here"))
    closed = YoloWorldResource(model=str(tiny_yolo_world_pt), detector_model=str(tiny_detector_pt), device="cpu")
    assert closed.closed_set() and closed.model_name() == tiny_detector_pt.name and closed.missing() is None
    plan = stage_plan({"clip": no_clip, "yolo_world": closed})
    assert plan.state("frame_objects") == "active"  # its classes are its own: no prompts to encode
    assert plan.state("representative_frames") == "unavailable"
    world = YoloWorldResource(model=str(tiny_yolo_world_pt), device="cpu")
    assert not world.closed_set() and world._ref().note == ""
    assert stage_plan({"clip": no_clip, "yolo_world": world}).state("frame_objects") == "unavailable"


def test_the_detector_loads_with_its_classes_mapped(tiny_detector_pt, tmp_path):
    class_map = tmp_path / "map.yaml"
    class_map.write_text('version: "t1"\nclasses: {cup: mug}\n')
    resource = YoloWorldResource(detector_model=str(tiny_detector_pt), class_map=str(class_map), device="cpu",
                                 imgsz=320)

    def no_clip():
        raise AssertionError("a closed-set detector must not load CLIP")

    MODEL_CACHE.release("detector")
    detector = resource.detector(load_vocabulary(), no_clip)
    assert isinstance(detector, ClosedSetDetector)
    assert detector.labels == ["lipstick", "mug", "car"] and detector.products == [True, True, False]
    class_map.write_text('version: "t2"\nclasses: {cup: teacup}\n')  # a target the vocabulary does not have
    bad = YoloWorldResource(detector_model=str(tiny_detector_pt), class_map=str(class_map), device="cpu", imgsz=320)
    with pytest.raises(ModelUnavailableError, match="'cup' -> 'teacup': not a class of the product vocabulary"):
        bad.load_closed_set(load_vocabulary())  # a setting to fix: the stage is unavailable, said once


def test_a_broken_class_map_file_makes_the_stage_unavailable(tiny_detector_pt, tmp_path):
    broken = tmp_path / "map.yaml"
    broken.write_text("classes: {cup: mug}\n")
    resource = YoloWorldResource(detector_model=str(tiny_detector_pt), class_map=str(broken))
    assert "missing `version`" in resource.missing()
    assert "map.yaml" in resource.missing()


def test_a_closed_set_file_given_as_yolo_world_is_recognised(tiny_detector_pt, tmp_path):
    resource = YoloWorldResource(model=str(tiny_detector_pt), device="cpu")
    assert resource.closed_set() and resource.missing() is None
    note = resource._ref().note
    assert f"{tiny_detector_pt.name} is a closed-set detector, not YOLO-World" in note
    assert "coco_class_map.yaml" in note and "TIKTOK_ASSETS_DETECTOR_MODEL" in note
    plan = stage_plan({"clip": ClipResource(model=str(tmp_path / "none")), "yolo_world": resource})
    assert note in plan.summary() and plan.state("frame_objects") == "active"


def test_detector_model_by_manifest_name(tmp_path, tiny_detector_pt):
    models = _models_dir(tmp_path)
    resource = YoloWorldResource(detector_model="yolo11n", models_dir=str(models))
    assert resource.model_name() == "yolo11n" and resource.closed_set()
    assert "tiktok-assets models pull yolo11n" in resource.missing()
    (models / "yolo11n").mkdir()
    shutil.copy(tiny_detector_pt, models / "yolo11n" / "yolo11n.pt")  # where `models pull yolo11n` puts it
    assert resource.missing() is None


def test_environment_variables_choose_the_detector(monkeypatch, tiny_detector_pt):
    def objects_like(context, yolo_world: YoloWorldResource): ...

    monkeypatch.delenv("TIKTOK_ASSETS_DETECTOR_MODEL", raising=False)
    before = stage_code_version(objects_like)
    assert not model_resources()["yolo_world"].detector_model
    monkeypatch.setenv("TIKTOK_ASSETS_DETECTOR_MODEL", str(tiny_detector_pt))
    monkeypatch.setenv("TIKTOK_ASSETS_DETECTOR_CLASS_MAP", "/somewhere/map.yaml")
    resource = model_resources()["yolo_world"]
    assert resource.detector_model == str(tiny_detector_pt) and resource.class_map == "/somewhere/map.yaml"
    assert stage_code_version(objects_like) != before  # materialized objects show as changed code


def test_an_onnx_detector_from_the_environment_runs_closed_set(monkeypatch, random_yolo11n_onnx):
    monkeypatch.setenv("TIKTOK_ASSETS_DETECTOR_MODEL", str(random_yolo11n_onnx))
    monkeypatch.delenv("TIKTOK_ASSETS_DETECTOR_CLASS_MAP", raising=False)
    resource = model_resources()["yolo_world"]
    assert resource.closed_set() and resource.missing() is None
    assert resource.model_name() == random_yolo11n_onnx.name

    def no_clip():
        raise AssertionError("a closed-set detector must not load CLIP")

    MODEL_CACHE.release("detector")
    detector = resource.detector(load_vocabulary(), no_clip)
    assert isinstance(detector, ClosedSetDetector) and detector.format == "onnx"
    assert len(detector.model_classes) == 80 and detector.labels[41] == "mug"  # COCO cup, the packaged map
    assert any(detector.detect(square_photos(), conf=0.25))
