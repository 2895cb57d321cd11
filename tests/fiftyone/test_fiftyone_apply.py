"""``apply_sam3`` against FiftyOne's real database and the tiny random SAM 3."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone

import fiftyone as fo
import numpy as np
import pytest

import sam3kit
from sam3kit import SegmentRequest
from sam3kit.fiftyone import FieldExistsError, apply_sam3

TEXT = dict(prompt="person, car", score_threshold=0.0, max_masks=3)


def _boxes(sample_index):
    """Prompt boxes (normalised top-left x, y, w, h) that differ per sample."""
    f = 0.05 * sample_index
    return [[0.1 + f, 0.2, 0.5, 0.3 + f], [0.0, 0.5, 0.25 + f, 0.5]]


def test_text_prompts_label_every_instance_with_its_concept(dataset, segmenter, spy, image_files):
    summary = apply_sam3(dataset, model=segmenter, **TEXT)

    assert (summary.done, summary.failed, summary.skipped) == (5, 0, 0)
    paths = [f[0] for f in image_files]
    assert [sources for sources, _ in spy.batch_calls] == [paths]  # one batched call, in dataset order
    assert spy.segment_calls == []
    total = 0
    for sample in dataset:
        direct = segmenter.segment(sample.filepath, SegmentRequest(**TEXT))
        dets = sample.sam3.detections
        kept = [i for i in range(len(direct)) if direct.mask_crops.crops[i].any()]
        assert [d.label for d in dets] == [direct.concepts[i] for i in kept]
        assert [d.confidence for d in dets] == pytest.approx([float(direct.scores[i]) for i in kept])
        assert {d.label for d in dets} <= {"person", "car"}
        assert sum(d.label == "person" for d in dets) <= 3
        total += len(dets)
    assert summary.instances == total > 0


def test_text_is_encoded_once_per_run(dataset, segmenter):
    before = segmenter.text_cache.misses
    apply_sam3(dataset, prompt="zebra, kite", model=segmenter, batch_size=2, score_threshold=0.0)
    assert segmenter.text_cache.misses - before == 2  # one per phrase, for 5 images in 3 batches


def test_detections_prompt_field_reaches_the_core_in_pixels_of_each_image(
    dataset, segmenter, spy, image_files
):
    for i, sample in enumerate(dataset):
        sample["gt"] = fo.Detections(
            detections=[fo.Detection(label=f"obj{k}", bounding_box=b) for k, b in enumerate(_boxes(i))]
        )
        sample.save()

    summary = apply_sam3(dataset, prompt_field="gt", label_field="from_boxes", model=segmenter)

    assert summary.done == 5 and spy.batch_calls == []
    assert len(spy.segment_calls) == 5
    for i, ((size, request), (_path, height, width)) in enumerate(zip(spy.segment_calls, image_files)):
        assert size == (height, width)
        expected = [(x * width, y * height, (x + w) * width, (y + h) * height) for x, y, w, h in _boxes(i)]
        np.testing.assert_allclose([b.xyxy for b in request.box_prompts], expected, rtol=1e-6)
        assert [b.object_id for b in request.box_prompts] == [1, 2]
        assert request.point_prompts == [] and request.concepts == []
    for sample in dataset:
        prompts = {d.id: d.label for d in sample.gt.detections}
        out = sample.from_boxes.detections
        assert len(out) == 2
        assert {d.prompt_id: d.label for d in out} == prompts


def test_keypoints_prompt_field_reaches_the_core_in_pixels_of_each_image(
    dataset, segmenter, spy, image_files
):
    def points(i):
        return [[0.5, 0.25 + 0.1 * i], [0.2, 0.8]]

    for i, sample in enumerate(dataset):
        sample["clicks"] = fo.Keypoints(
            keypoints=[
                fo.Keypoint(label="cell", points=points(i), sam_labels=[1, 0]),
                fo.Keypoint(label="dot", points=[[0.9, 0.1]]),
            ]
        )
        sample.save()

    apply_sam3(dataset, prompt_field="clicks", label_field="from_points", model=segmenter, prompt="car")

    for i, ((size, request), (_path, height, width)) in enumerate(zip(spy.segment_calls, image_files)):
        assert size == (height, width)
        got = [(p.x, p.y, p.label, p.object_id) for p in request.point_prompts]
        expected = [(x * width, y * height, lab, 1) for (x, y), lab in zip(points(i), (1, 0))]
        expected.append((0.9 * width, 0.1 * height, 1, 2))
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        assert request.concepts == ["car"]  # text and object prompts together
    labels = dataset.distinct("from_points.detections.label")
    assert set(labels) <= {"cell", "dot", "car"} and {"cell", "dot"} <= set(labels)


def test_segmentation_output_is_one_label_image_per_sample_with_mask_targets(dataset, segmenter, image_files):
    apply_sam3(dataset, output="segmentation", label_field="semantic", model=segmenter, **TEXT)

    assert dataset.mask_targets["semantic"] == {1: "person", 2: "car"}
    for sample, (_path, height, width) in zip(dataset, image_files):
        mask = sample.semantic.mask
        assert mask.shape == (height, width)  # RGB, grayscale and RGBA images of different sizes
        direct = segmenter.segment(sample.filepath, SegmentRequest(**TEXT))
        values = np.array([0] + [1 if c == "person" else 2 for c in direct.concepts], np.uint8)
        np.testing.assert_array_equal(mask, values[direct.label_image()])


def test_a_field_not_made_by_sam3kit_is_never_clobbered(dataset, segmenter):
    original = fo.Detections(detections=[fo.Detection(label="keep", bounding_box=[0.1, 0.1, 0.2, 0.2])])
    dataset.set_values("gt", [original] * len(dataset))

    with pytest.raises(FieldExistsError, match="'gt'.*not made by sam3kit.*overwrite=True"):
        apply_sam3(dataset, label_field="gt", model=segmenter, **TEXT)

    assert dataset.distinct("gt.detections.label") == ["keep"]
    assert dataset.count("gt.detections") == 5


def test_other_settings_need_overwrite_which_replaces_the_whole_field(dataset, segmenter):
    apply_sam3(dataset, model=segmenter, **TEXT)
    first = dataset.values("sam3.detections.id", unwind=True)

    with pytest.raises(FieldExistsError, match="'sam3'.*score_threshold: 0.0 -> 0.2"):
        apply_sam3(dataset, model=segmenter, prompt="person, car", score_threshold=0.2, max_masks=3)
    with pytest.raises(FieldExistsError, match="resume=True"):
        apply_sam3(dataset, model=segmenter, resume=False, **TEXT)
    assert dataset.values("sam3.detections.id", unwind=True) == first

    summary = apply_sam3(dataset.limit(2), model=segmenter, prompt="dog", score_threshold=0.0, overwrite=True)

    assert summary.done == 2
    assert dataset.count("sam3") == 2  # cleared everywhere, redone on the view
    assert set(dataset.distinct("sam3.detections.label")) == {"dog"}
    assert dataset.get_field("sam3").info["sam3kit"]["prompt"] == ["dog"]


def test_overwriting_a_label_image_field_renumbers_its_classes(dataset, segmenter):
    apply_sam3(dataset, output="segmentation", label_field="semantic", model=segmenter, **TEXT)
    apply_sam3(dataset, output="segmentation", label_field="semantic", model=segmenter, prompt="tree",
               score_threshold=0.0, overwrite=True)  # fmt: skip
    assert dataset.mask_targets["semantic"] == {1: "tree"}
    assert set(np.unique(np.concatenate([m.ravel() for m in dataset.values("semantic.mask")]))) <= {0, 1}

    apply_sam3(dataset, label_field="semantic", model=segmenter, **TEXT, overwrite=True)
    assert "semantic" not in dataset.mask_targets
    assert dataset.get_field("semantic").document_type is fo.Detections
    assert dataset.count("semantic.detections") > 0


def test_an_interrupted_run_resumes_without_redoing_or_duplicating(dataset, segmenter, spy, image_files):
    def stop_after_first_batch(done, total):
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply_sam3(dataset, model=segmenter, batch_size=2, progress=stop_after_first_batch, **TEXT)

    paths = [f[0] for f in image_files]
    assert dataset.count("sam3") == 2
    finished = dataset.exists("sam3").values("id")
    kept = dataset.exists("sam3").values("sam3.detections.id")

    summary = apply_sam3(dataset, model=segmenter, batch_size=2, **TEXT)

    assert (summary.skipped, summary.done, summary.failed) == (2, 3, 0)
    assert spy.batch_calls[1][0] == paths[2:]  # only the unfinished samples were segmented again
    assert dataset.count("sam3") == 5
    assert dataset.select(finished).values("sam3.detections.id") == kept  # finished labels untouched
    for sample in dataset:
        ids = [d.id for d in sample.sam3.detections]
        assert len(ids) == len(set(ids)) == len(segmenter.segment(sample.filepath, SegmentRequest(**TEXT)))
    history = dataset.load_run_results("sam3kit_sam3").history
    assert [(h["status"], h["mode"], h["done"]) for h in history] == [
        ("interrupted", "new", 2),
        ("completed", "resume", 3),
    ]


def test_a_missing_or_unreadable_file_is_recorded_and_skipped(make_dataset, image_files, segmenter, tmp_path):
    missing = tmp_path / "missing.png"
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    dataset = make_dataset([image_files[0][0], str(missing), str(broken), image_files[1][0]])

    summary = apply_sam3(dataset, model=segmenter, **TEXT)

    assert (summary.done, summary.failed) == (2, 2)
    errors = dataset.values("sam3_error")
    assert errors[0] is None and errors[3] is None
    assert "not found" in errors[1] and str(missing) in errors[1]
    assert "cannot read" in errors[2]
    assert [s is not None for s in dataset.values("sam3")] == [True, False, False, True]

    shutil.copy(image_files[2][0], missing)
    summary = apply_sam3(dataset, model=segmenter, **TEXT)

    assert (summary.skipped, summary.done, summary.failed) == (2, 1, 1)
    assert dataset.values("sam3_error")[1] is None  # fixed: its error is cleared
    assert dataset.values("sam3")[1] is not None


def test_skip_failures_false_raises_the_first_failure(make_dataset, image_files, segmenter, tmp_path):
    dataset = make_dataset([image_files[0][0], str(tmp_path / "gone.png")])
    with pytest.raises(sam3kit.ImageError, match="gone.png"):
        apply_sam3(dataset, model=segmenter, skip_failures=False, **TEXT)
    assert dataset.count("sam3") == 1  # the batch's good sample was still written


def test_each_run_records_how_the_field_was_made(dataset, segmenter, tiny_checkpoint):
    apply_sam3(dataset.skip(1), model=segmenter, **TEXT)

    settings = dataset.get_field("sam3").info["sam3kit"]
    assert settings == {
        "model": str(tiny_checkpoint),
        "revision": None,
        "prompt": ["person", "car"],
        "prompt_field": None,
        "output": "detections",
        "score_threshold": 0.0,
        "mask_threshold": 0.5,
        "max_masks": 3,
    }
    assert "'person', 'car'" in dataset.get_field("sam3").description
    info = dataset.get_run_info("sam3kit_sam3")
    assert info.config.sam3kit_version == sam3kit.__version__
    assert info.config.prompt == ["person", "car"] and info.config.label_field == "sam3"
    assert (
        abs((datetime.now(timezone.utc) - info.timestamp.replace(tzinfo=timezone.utc)).total_seconds()) < 600
    )
    assert len(dataset.load_run_view("sam3kit_sam3")) == 4  # the view it ran on
    (entry,) = dataset.load_run_results("sam3kit_sam3").history
    assert (entry["status"], entry["done"], entry["device"], entry["dtype"]) == (
        "completed",
        4,
        "cpu",
        "float32",
    )


def test_the_run_writes_only_the_view_it_is_given(dataset, segmenter):
    view = dataset.skip(3)
    summary = apply_sam3(view, model=segmenter, **TEXT)
    assert summary.total == summary.done == 2
    assert dataset.exists("sam3").values("id") == view.values("id")


def test_nothing_to_segment_is_refused_before_the_model_loads(dataset):
    with pytest.raises(ValueError, match="text prompt, a prompt_field"):
        apply_sam3(dataset, model="no/such-model")
    with pytest.raises(ValueError, match="'nope'"):
        apply_sam3(dataset, prompt_field="nope", model="no/such-model")
    with pytest.raises(sam3kit.RequestError, match="score_threshold"):
        apply_sam3(dataset, prompt="cat", score_threshold=2, model="no/such-model")


# ---------------------------------------------------------------------------------------------- CPU sharing


@pytest.fixture
def two_torch_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_thread_share_gives_the_writer_a_core_only_when_writing_is_heavy(two_torch_threads):
    import torch

    from sam3kit.fiftyone.threads import ThreadShare

    share = ThreadShare("cpu")
    for segment, write in [(1.0, 0.1), (1.0, 0.4), (0.2, 0.0)]:  # writing takes under half as long
        share.observe(segment, write)
    assert torch.get_num_threads() == 2
    share.observe(1.0, 0.5)  # writing takes half as long as segmenting: it needs a core
    assert torch.get_num_threads() == 1
    share.observe(1.0, 0.0)
    assert torch.get_num_threads() == 1  # for the rest of the run
    share.close()
    assert torch.get_num_threads() == 2

    patient = ThreadShare("cpu", patience=2)
    patient.observe(1.0, 0.9)
    assert torch.get_num_threads() == 2  # one heavy write is not enough for it
    patient.observe(1.0, 0.9)
    assert torch.get_num_threads() == 1
    patient.close()

    accelerated = ThreadShare("cuda:0")
    for _ in range(3):
        accelerated.observe(0.01, 1.0)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("interrupt", [False, True])
def test_a_run_whose_writes_are_heavy_segments_with_a_thread_fewer_then_restores(
    dataset, segmenter, monkeypatch, two_torch_threads, interrupt
):
    import time

    import torch

    from sam3kit.fiftyone import apply as apply_module

    original = apply_module._BatchWriter.write

    def slow_write(self, batch, summary):
        time.sleep(0.3)  # a write as heavy as FiftyOne compressing many large masks
        return original(self, batch, summary)

    segmenting_with = []  # torch's threads in the thread that runs the model, after each batch is written

    def progress(done, total):
        segmenting_with.append(torch.get_num_threads())
        if interrupt and done == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(apply_module._BatchWriter, "write", slow_write)
    if interrupt:
        with pytest.raises(KeyboardInterrupt):
            apply_sam3(dataset, model=segmenter, batch_size=1, progress=progress, **TEXT)
    else:
        apply_sam3(dataset, model=segmenter, batch_size=1, progress=progress, **TEXT)
    assert set(segmenting_with) == {1}  # reduced from the first heavy write on
    assert len(segmenting_with) == (4 if interrupt else 5)
    assert torch.get_num_threads() == 2
