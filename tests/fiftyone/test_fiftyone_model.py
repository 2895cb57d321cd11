"""``Sam3Model`` through FiftyOne's own ``apply_model`` and ``load_model``."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.core.models as fom
import numpy as np
import pytest

from sam3kit import SegmentRequest
from sam3kit.fiftyone import Sam3Model, Sam3ModelConfig, apply_sam3

TEXT = dict(prompt="person, car", score_threshold=0.0, max_masks=2)


def test_apply_model_gives_the_labels_apply_sam3_gives(dataset, segmenter):
    apply_sam3(dataset, model=segmenter, **TEXT)
    model = Sam3Model(model=segmenter, **TEXT)

    dataset.apply_model(model, label_field="by_model", batch_size=2, skip_failures=False)

    for sample in dataset:
        ours, theirs = sample.by_model.detections, sample.sam3.detections
        assert [d.label for d in ours] == [d.label for d in theirs]
        assert [d.confidence for d in ours] == pytest.approx([d.confidence for d in theirs], abs=1e-5)
        np.testing.assert_allclose([d.bounding_box for d in ours], [d.bounding_box for d in theirs])
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.mask, b.mask)
    assert dataset.count("by_model.detections") > 0


def test_apply_model_records_its_run_on_the_dataset(dataset, segmenter, tiny_checkpoint):
    dataset.apply_model(Sam3Model(model=segmenter, **TEXT), label_field="by_model", skip_failures=False)

    info = dataset.get_field("by_model").info["sam3kit"]
    assert info["prompt"] == ["person", "car"] and info["model"] == str(tiny_checkpoint)
    assert info["max_masks"] == 2 and info["score_threshold"] == 0.0
    (entry,) = dataset.load_run_results("sam3kit_by_model").history
    assert (entry["status"], entry["mode"], entry["done"]) == ("completed", "apply_model", 5)
    assert entry["instances"] == dataset.count("by_model.detections")


def test_apply_model_reads_prompt_field_given_to_it_in_pixels(dataset, segmenter, spy, image_files):
    boxes = [[0.1, 0.2, 0.3, 0.4]]
    dataset.set_values("gt", [fo.Detections(detections=[fo.Detection(label="a", bounding_box=boxes[0])])] * 5)

    dataset.apply_model(
        Sam3Model(model=segmenter), label_field="boxed", prompt_field="gt", skip_failures=False
    )

    assert len(spy.segment_calls) == 5
    for (size, request), (_path, height, width) in zip(spy.segment_calls, image_files):
        assert size == (height, width)
        (box,) = request.box_prompts
        np.testing.assert_allclose(
            box.xyxy, (0.1 * width, 0.2 * height, 0.4 * width, 0.6 * height), rtol=1e-6
        )
    assert dataset.distinct("boxed.detections.label") == ["a"]
    assert dataset.get_field("boxed").info["sam3kit"]["prompt_field"] == "gt"


def test_load_model_builds_it_from_a_config_dict(dataset, tiny_checkpoint, image_files):
    model = fom.load_model(
        {
            "type": "sam3kit.fiftyone.Sam3Model",
            "config": {"model": str(tiny_checkpoint), "device": "cpu", "prompt": "cat", "output": "segmentation",
                       "score_threshold": 0.0},
        }
    )  # fmt: skip
    assert isinstance(model, Sam3Model) and isinstance(model.config, Sam3ModelConfig)

    dataset.apply_model(model, label_field="cats", skip_failures=False)

    assert dataset.mask_targets["cats"] == {1: "cat"}
    for sample, (_path, height, width) in zip(dataset, image_files):
        assert sample.cats.mask.shape == (height, width)
        direct = model.segmenter.segment(sample.filepath, SegmentRequest(prompt="cat", score_threshold=0.0))
        np.testing.assert_array_equal(sample.cats.mask, (direct.label_image() > 0).astype(np.uint8))


def test_a_model_with_nothing_to_segment_says_so(dataset, segmenter):
    with pytest.raises(ValueError, match="nothing to segment"):
        dataset.apply_model(Sam3Model(model=segmenter), label_field="x", skip_failures=False)
