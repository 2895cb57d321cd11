"""Label <-> request/result conversions, without a database or a model."""

from __future__ import annotations

import fiftyone as fo
import numpy as np
import pytest

from sam3kit.fiftyone.convert import (
    ClassValues,
    PromptedObject,
    build_request,
    prompts_from_label,
    to_detections,
    to_segmentation,
)
from sam3kit.result import SegmentationResult


def _result(masks, scores, sources, concepts, object_ids):
    masks = np.asarray(masks, bool)
    return SegmentationResult(
        masks.shape[1:], masks, np.asarray(scores, np.float32), np.zeros((len(masks), 4)),
        np.asarray(object_ids), sources, concepts,
    )  # fmt: skip


def test_detection_prompt_becomes_pixel_box_of_that_image():
    dets = fo.Detections(
        detections=[
            fo.Detection(label="cat", bounding_box=[0.25, 0.5, 0.5, 0.25]),
            fo.Detection(label="empty", bounding_box=[0.1, 0.1, 0.0, 0.3]),
            fo.Detection(label="dog", bounding_box=[0.0, 0.0, 1.0, 1.0]),
        ]
    )
    prompts = prompts_from_label(dets, width=80, height=40)
    assert [b.xyxy for b in prompts.boxes] == [(20.0, 20.0, 60.0, 30.0), (0.0, 0.0, 80.0, 40.0)]
    assert [b.object_id for b in prompts.boxes] == [1, 3]  # the empty box is left out
    assert prompts.objects == {
        1: PromptedObject("cat", dets.detections[0].id),
        3: PromptedObject("dog", dets.detections[2].id),
    }
    assert prompts.points == []


def test_keypoints_become_pixel_points_one_object_each_with_sam_labels():
    kps = fo.Keypoints(
        keypoints=[
            fo.Keypoint(label="a", points=[[0.5, 0.25], [float("nan"), float("nan")], [0.1, 0.9]]),
            fo.Keypoint(label="b", points=[[0.75, 0.5], [0.2, 0.2]], sam_labels=[1, 0]),
        ]
    )
    prompts = prompts_from_label(kps, width=64, height=48)
    got = np.array([(p.x, p.y, p.label, p.object_id) for p in prompts.points])
    np.testing.assert_allclose(got, [(32, 12, 1, 1), (6.4, 43.2, 1, 1), (48, 24, 1, 2), (12.8, 9.6, 0, 2)])
    assert set(prompts.objects) == {1, 2}
    assert prompts.boxes == []


def test_no_prompt_label_and_no_concept_asks_nothing():
    assert not prompts_from_label(None, 10, 10)
    assert build_request([], {"score_threshold": 0.5}, prompts_from_label(None, 10, 10)) is None
    request = build_request(["cell"], {"score_threshold": 0.2, "max_masks": 3})
    assert request.concepts == ["cell"] and request.score_threshold == 0.2 and request.max_masks == 3


def test_other_label_types_are_refused_by_name():
    with pytest.raises(TypeError, match="Detections"):
        prompts_from_label(fo.Classification(label="x"), 10, 10)


def test_detection_mask_covers_its_bounding_box_and_rebuilds_the_full_mask():
    h, w = 30, 40
    a = np.zeros((h, w), bool)
    a[5:12, 8:20] = True
    a[11, 25] = True  # the tight box reaches column 25
    b = np.zeros((h, w), bool)
    b[20:30, 0:4] = True
    empty = np.zeros((h, w), bool)
    result = _result(
        [a, b, empty], [0.9, 0.7, 0.6], ["concept", "object", "concept"], ["cat", None, "cat"], [1, 7, 2]
    )
    dets = to_detections(result, {7: PromptedObject("box-label", "abc")}).detections
    assert len(dets) == 2  # the empty mask is left out
    for det, full in zip(dets, (a, b)):
        x, y, bw, bh = det.bounding_box
        x0, y0 = round(x * w), round(y * h)
        assert det.mask.shape == (round(bh * h), round(bw * w))
        rebuilt = np.zeros((h, w), bool)
        rebuilt[y0 : y0 + det.mask.shape[0], x0 : x0 + det.mask.shape[1]] = det.mask
        assert np.array_equal(rebuilt, full)
    assert dets[0].bounding_box == pytest.approx([8 / 40, 5 / 30, 18 / 40, 7 / 30])
    assert (dets[0].label, dets[1].label) == ("cat", "box-label")
    assert dets[0].confidence == pytest.approx(0.9) and dets[1].confidence == pytest.approx(0.7)
    assert dets[1].prompt_id == "abc" and not dets[0].has_field("prompt_id")


def test_segmentation_holds_class_values_and_higher_score_wins():
    a = np.zeros((6, 8), bool)
    a[0:4, 0:4] = True
    b = np.zeros((6, 8), bool)
    b[2:6, 2:8] = True
    c = np.zeros((6, 8), bool)
    c[5, 0] = True
    result = _result(
        [a, b, c], [0.5, 0.8, 0.9], ["concept", "concept", "object"], ["car", "person", None], [1, 1, 3]
    )
    classes = ClassValues(["person", "car"])
    seg = to_segmentation(result, classes, {3: PromptedObject(None, "id3")})
    assert seg.mask.dtype == np.uint8
    assert classes.targets == {1: "person", 2: "car", 3: "object"}
    assert seg.mask[0, 0] == 2 and seg.mask[3, 3] == 1 and seg.mask[5, 0] == 3 and seg.mask[0, 7] == 0
    assert int((seg.mask == 1).sum()) == int(b.sum())


def test_class_values_keep_existing_targets_when_a_run_resumes():
    classes = ClassValues(["car"], targets={1: "person", 2: "tree"})
    assert classes.value("car") == 3 and classes.value("person") == 1
    assert classes.targets == {1: "person", 2: "tree", 3: "car"}
