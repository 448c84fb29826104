"""Closed-set detector backend: the real YOLO11n (COCO-80, INT8 OpenVINO export in ../shared) on real photos,
a tiny random 3-class .pt through the same code, a random YOLO11n's ONNX export against its .pt, and the class
map onto the product vocabulary."""

import ast
from pathlib import Path

import pytest
import ultralytics
import yaml
from PIL import Image
from skimage import data as skimage_data

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.closed_set import (
    CACHE_FAMILY,
    OPENVINO_SUFFIX,
    checkpoint_model_classes,
    detector_format,
    is_open_vocabulary,
    load_closed_set_detector,
    ultralytics_source,
)
from tiktok_assets.lib.models.detection import Detection
from tiktok_assets.lib.vision.class_map import ClassMap, ClassMapError, load_class_map
from tiktok_assets.lib.vision.vocabulary import load_vocabulary
from tiktok_assets_tests.lib.vision_fixtures import *

BUS_JPG = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"  # ships inside the ultralytics package
COCO_NAMES = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
TOLERANCE = 0.05  # of the image's width / height

# Reference boxes, measured once with the real weights (../shared/models/yolo11n-coco-int8-openvino, conf 0.25,
# imgsz 640), as x1, y1, x2, y2 fractions of width / height. bus.jpg (810x1080):
BUS_BOX = (0.0148, 0.2120, 0.9857, 0.6810)  # bus 0.937
PERSON_BOXES = [
    (0.0588, 0.3683, 0.2985, 0.8374),  # person 0.899
    (0.2731, 0.3740, 0.4272, 0.7964),  # person 0.827
    (0.8274, 0.3617, 1.0000, 0.8150),  # person 0.823 (a fourth, 0.443, is cut by the left edge)
]
# scikit-image's coffee photo (600x400): COCO `cup` 0.876 (mapped to the vocabulary's `mug`), dining table 0.803.
CUP_BOX = (0.2836, 0.0447, 0.7021, 0.7909)


def near(box: tuple[float, ...], reference: tuple[float, ...]) -> bool:
    return max(abs(a - b) for a, b in zip(box, reference, strict=True)) <= TOLERANCE


def same_detection(a: Detection, b: Detection, width: int, height: int) -> bool:
    """Same label and mapping, confidences within 1e-3, box corners within a pixel."""
    corners = max(abs(p - q) * side for p, q, side in zip(a.box_xyxy_norm, b.box_xyxy_norm,
                                                          (width, height, width, height), strict=True))
    return ((a.label, a.is_product, a.model_label) == (b.label, b.is_product, b.model_label)
            and abs(a.confidence - b.confidence) < 1e-3 and corners < 1.0)


def coffee() -> Image.Image:
    return Image.fromarray(skimage_data.coffee())


@pytest.fixture(scope="module")
def vocabulary():
    return load_vocabulary()


@pytest.fixture(scope="module")
def yolo11n(vision_env, vocabulary):
    return load_closed_set_detector(YOLO11N_OPENVINO, load_class_map(), vocabulary, device="cpu")


@needs_shared
def test_real_detector_finds_the_bus_and_the_people(yolo11n):
    [dets] = yolo11n.detect([BUS_JPG], conf=0.25)
    buses = [d for d in dets if d.label == "bus"]
    assert len(buses) == 1 and buses[0].confidence > 0.8 and near(buses[0].box_xyxy_norm, BUS_BOX)
    persons = [d for d in dets if d.label == "person"]
    assert len(persons) >= 3
    for reference in PERSON_BOXES:
        assert any(near(p.box_xyxy_norm, reference) and p.confidence > 0.6 for p in persons), reference
    assert not any(d.is_product for d in dets)  # a bus and people: no product
    assert all(d.model_label is None for d in dets)  # COCO's own names, kept as they are
    assert {d.label for d in dets} <= set(COCO_NAMES.values())


@needs_shared
def test_real_detector_finds_the_cup_as_a_product(yolo11n):
    [dets] = yolo11n.detect([coffee()], conf=0.25)
    cups = [d for d in dets if d.model_label == "cup"]
    assert len(cups) == 1
    cup = cups[0]
    assert cup.label == "mug" and cup.is_product and cup.confidence > 0.6 and near(cup.box_xyxy_norm, CUP_BOX)
    table = [d for d in dets if d.label == "dining table"]
    assert table and not table[0].is_product  # unmapped COCO class: a non-product object
    assert cup.to_json()["model_label"] == "cup" and Detection.from_json(cup.to_json()) == Detection(
        "mug", round(cup.confidence, 4), tuple(round(v, 4) for v in cup.box_xyxy_norm), True, "cup")


@needs_shared
def test_real_detector_batches_and_caches(yolo11n, vocabulary):
    frames = [BUS_JPG, coffee(), str(BUS_JPG)]
    batched = yolo11n.detect(frames, conf=0.25, batch_size=2)
    one_by_one = [yolo11n.detect([f], conf=0.25)[0] for f in frames]
    assert [[(d.label, round(d.confidence, 3)) for d in r] for r in batched] == [
        [(d.label, round(d.confidence, 3)) for d in r] for r in one_by_one]
    assert batched[0] == batched[2]
    again = load_closed_set_detector(YOLO11N_OPENVINO, load_class_map(), vocabulary, device="cpu")
    assert again is yolo11n
    assert yolo11n.format == "openvino" and len(yolo11n.model_classes) == 80
    assert yolo11n.model_classes == [COCO_NAMES[i] for i in range(80)]
    assert [c for c, p in zip(yolo11n.labels, yolo11n.products, strict=True) if p] == [
        "bicycle", "backpack", "handbag", "mug", "chair", "sofa", "laptop", "keyboard", "smartphone", "book",
        "plush toy", "hair dryer"]


@needs_shared
def test_openvino_folder_is_linked_not_copied():
    assert detector_format(YOLO11N_OPENVINO) == "openvino"
    assert detector_format(YOLO11N_OPENVINO / "yolo11n.xml") == "openvino"
    assert not is_open_vocabulary(YOLO11N_OPENVINO)
    source = ultralytics_source(YOLO11N_OPENVINO)
    assert source.name.endswith(OPENVINO_SUFFIX) and source.is_symlink()
    assert source.resolve() == YOLO11N_OPENVINO.resolve()
    assert ultralytics_source(YOLO11N_OPENVINO) == source  # one link per folder and process


def test_formats_are_told_from_the_files(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "best.pt").write_bytes(b"x")
    ov = tmp_path / "exported"
    ov.mkdir()
    (ov / "best.xml").write_text("<net/>")
    (ov / "best.bin").write_bytes(b"x")
    only_onnx = tmp_path / "onnx_folder"
    only_onnx.mkdir()
    (only_onnx / "model.onnx").write_bytes(b"x")
    assert [detector_format(p) for p in (tmp_path / "m.onnx", tmp_path / "best.pt", ov, only_onnx)] == [
        "onnx", "pt", "openvino", "onnx"]
    assert ultralytics_source(only_onnx) == only_onnx / "model.onnx"
    assert checkpoint_model_classes(tmp_path / "best.pt") == frozenset()  # not a torch zip: nothing claimed


def test_an_onnx_export_detects_what_its_pt_detects(random_yolo11n_pt, random_yolo11n_onnx, vocabulary):
    import onnx

    MODEL_CACHE.release(CACHE_FAMILY)
    class_map = load_class_map()
    pt = load_closed_set_detector(random_yolo11n_pt, class_map, vocabulary, device="cpu", imgsz=RANDOM_YOLO11N_IMGSZ)
    exported = load_closed_set_detector(random_yolo11n_onnx, class_map, vocabulary, device="cpu",
                                        imgsz=RANDOM_YOLO11N_IMGSZ)
    assert (pt.format, exported.format) == ("pt", "onnx")
    metadata = {p.key: p.value for p in onnx.load(random_yolo11n_onnx, load_external_data=False).metadata_props}
    assert ast.literal_eval(metadata["names"]) == COCO_NAMES  # the class names travel in the export's metadata
    assert exported.model_classes == [COCO_NAMES[i] for i in range(80)] == pt.model_classes
    assert exported.labels == pt.labels and exported.products == pt.products
    assert exported.labels[41] == "mug" and exported.labels[67] == "smartphone"  # cup, cell phone: mapped

    frames = square_photos()
    conf = 0.25
    by_pt = pt.detect(frames, conf=conf, max_det=300)
    by_onnx = exported.detect(frames, conf=conf, max_det=300)
    for frame, expected, got in zip(frames, by_pt, by_onnx, strict=True):
        # random weights: boxes of any class, but the same ones whichever format runs them
        assert 0 < len(expected) < 300 and len(got) == len(expected)
        height, width = frame.shape[:2]
        unmatched = list(got)
        for det in expected:
            match = next((d for d in unmatched if same_detection(d, det, width, height)), None)
            assert match is not None, det
            unmatched.remove(match)
    assert any(d.model_label for r in by_onnx for d in r)  # some mapped through the class map (e.g. cup -> mug)
    # A static export runs at the size it was exported at (ultralytics reads it from the metadata), whatever
    # imgsz the detector is given: the detection resource's default 640 runs this one at 320.
    at_640 = load_closed_set_detector(random_yolo11n_onnx, class_map, vocabulary, device="cpu", imgsz=640)
    assert at_640 is not exported and at_640.detect(frames, conf=conf, max_det=300) == by_onnx


def test_tiny_pt_is_loaded_with_weights_only_and_its_classes_mapped(tiny_detector_pt, vocabulary, frame_files,
                                                                    monkeypatch):
    from ultralytics.nn import tasks

    calls = []
    real = tasks.torch_load

    def recording(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "torch_load", recording)
    MODEL_CACHE.release(CACHE_FAMILY)
    assert checkpoint_model_classes(tiny_detector_pt) == {"DetectionModel"}
    assert detector_format(tiny_detector_pt.parent) == "pt" and not is_open_vocabulary(tiny_detector_pt)
    detector = load_closed_set_detector(tiny_detector_pt, ClassMap("t", {"cup": "mug"}, "test map"), vocabulary,
                                        device="cpu", imgsz=320)
    assert calls and all(calls)  # every checkpoint read went through weights_only=True
    assert detector.model_classes == ["lipstick", "cup", "car"]
    assert detector.labels == ["lipstick", "mug", "car"]  # same-named vocabulary class, mapped, unmapped
    assert detector.products == [True, True, False]
    results = detector.detect(frame_files, conf=0.05, batch_size=3)  # random weights: a low threshold
    assert len(results) == len(frame_files) and sum(len(r) for r in results) > 0
    for det in (d for r in results for d in r):
        assert det.label in detector.labels
        assert det.is_product == (det.label != "car")
        assert det.model_label == ("cup" if det.label == "mug" else None)
        x1, y1, x2, y2 = det.box_xyxy_norm
        assert 0.0 <= x1 <= x2 <= 1.0 and 0.0 <= y1 <= y2 <= 1.0


def test_a_class_map_that_does_not_fit_the_model_is_refused(tiny_detector_pt, vocabulary):
    refused = "coco_class_map.yaml: maps \\['person', 'cell phone'.*does not have.*lipstick, cup, car"
    with pytest.raises(ClassMapError, match=refused):
        load_closed_set_detector(tiny_detector_pt, load_class_map(), vocabulary, device="cpu", imgsz=320)


def test_a_yolo_world_checkpoint_is_not_taken_for_a_closed_set_detector(tiny_yolo_world_pt, vocabulary):
    assert "WorldModel" in checkpoint_model_classes(tiny_yolo_world_pt) and is_open_vocabulary(tiny_yolo_world_pt)
    with pytest.raises(ModelUnavailableError, match="open-vocabulary YOLO-World.*TIKTOK_ASSETS_YOLO_WORLD_MODEL"):
        load_closed_set_detector(tiny_yolo_world_pt, load_class_map(), vocabulary, device="cpu")


def test_packaged_coco_map_fits_coco_and_the_vocabulary(vocabulary):
    class_map = load_class_map()
    class_map.check([COCO_NAMES[i] for i in range(80)], vocabulary)
    assert class_map.label("cup") == "mug" and class_map.label("cell phone") == "smartphone"
    assert class_map.label("bus") == "bus" and not vocabulary.is_product(class_map.label("bus"))
    assert class_map.label("person") == "person" and not vocabulary.is_product("person")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("classes: {cup: mug}\n", "missing `version`"),
        ("version: 1\nclasses: []\n", "non-empty mapping"),
        ("version: 1\nclasses: {cup: ''}\n", "non-empty strings"),
        ("version: 1\nclasses: {cup: mug}\nextra: 1\n", "unknown keys \\['extra'\\]"),
        ("version: 1\nclasses:\n  cup: mug\n  cup: smartphone\n", "duplicate"),
    ],
)
def test_malformed_class_map_files(tmp_path, text, message):
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(ClassMapError, match=message):
        load_class_map(path)


def test_a_target_outside_the_vocabulary_is_refused(vocabulary):
    with pytest.raises(ClassMapError, match="'cup' -> 'teacup': not a class of the product vocabulary"):
        ClassMap("1", {"cup": "teacup"}, "my_map.yaml").check(["cup"], vocabulary)
