"""The engine against the tiny random SAM 3: what reaches the model, caching, batching, post-processing."""

import numpy as np
import pytest
import torch

from sam3kit import Sam3Segmenter, SegmentRequest
from sam3kit.engine import prepare_image
from sam3kit.request import BoxPrompt, PointPrompt, RequestError

TARGET = 112  # the tiny checkpoint's input size (pixels)


def _capture(module, store):
    """Record the keyword inputs of every forward call of ``module``."""
    return module.register_forward_pre_hook(lambda m, args, kwargs: store.append(kwargs), with_kwargs=True)


@pytest.fixture
def fresh(tiny_checkpoint):
    """A segmenter with empty caches (the session one shares its caches between tests)."""
    return Sam3Segmenter.from_pretrained(str(tiny_checkpoint), device="cpu")


def test_points_and_boxes_reach_the_tracker_scaled_to_its_input_size(segmenter, rgb_image):
    calls = []
    hook = _capture(segmenter.loaded.tracker, calls)
    try:
        req = SegmentRequest(
            point_prompts=[PointPrompt(30, 20, 1, object_id=1), PointPrompt(60, 50, 0, object_id=1)],
            box_prompts=[BoxPrompt(10, 5, 80, 45, object_id=1)],
        )
        segmenter.segment(rgb_image, req)
    finally:
        hook.remove()
    (call,) = calls
    h, w = rgb_image.shape[:2]  # 60 x 90
    sx, sy = TARGET / w, TARGET / h
    expected = torch.tensor(
        [[[[10 * sx, 5 * sy], [80 * sx, 45 * sy], [30 * sx, 20 * sy], [60 * sx, 50 * sy]]]]
    )
    assert torch.allclose(call["input_points"], expected, atol=1e-4)
    assert call["input_labels"].tolist() == [[[2, 3, 1, 0]]]  # box corners, then the clicks


def test_exemplar_boxes_reach_the_detector_as_normalised_centre_size(segmenter, rgb_image):
    calls = []
    hook = _capture(segmenter.loaded.detector, calls)
    try:
        req = SegmentRequest(
            prompt="cell",
            box_prompts=[
                BoxPrompt(9, 6, 45, 30, exemplar=True),
                BoxPrompt(60, 30, 90, 60, exemplar=True, label=0),
            ],
        )
        segmenter.segment(rgb_image, req)
    finally:
        hook.remove()
    (call,) = calls
    expected = [[[27 / 90, 18 / 60, 36 / 90, 24 / 60], [75 / 90, 45 / 60, 30 / 90, 30 / 60]]]
    assert torch.allclose(call["input_boxes"], torch.tensor(expected), atol=1e-6)
    assert call["input_boxes_labels"].tolist() == [[1, 0]]


def test_objects_come_back_in_prompt_order_with_their_ids(segmenter, rgb_image):
    req = SegmentRequest(
        point_prompts=[
            PointPrompt(30, 20, object_id=4),
            PointPrompt(70, 40, object_id=9),
            PointPrompt(72, 42, 0, 9),
        ],
        box_prompts=[BoxPrompt(5, 5, 40, 40)],
    )
    result = segmenter.segment(rgb_image, req)
    assert result.object_ids.tolist() == [4, 9, 10]
    assert result.sources == ["object"] * 3 and result.concepts == [None] * 3
    assert result.masks.shape == (3, 60, 90) and result.masks.dtype == bool


def test_object_masks_do_not_depend_on_the_other_objects_in_the_request(segmenter, rgb_image):
    alone = segmenter.segment(rgb_image, point_prompts=[PointPrompt(30, 20, object_id=1)])
    together = segmenter.segment(
        rgb_image,
        point_prompts=[PointPrompt(30, 20, object_id=1), PointPrompt(70, 40, object_id=2)],
        box_prompts=[BoxPrompt(5, 5, 40, 40, object_id=3)],
    )
    assert np.array_equal(alone.masks[0], together.masks[0])
    assert np.isclose(alone.scores[0], together.scores[0], atol=1e-6)


def test_multiple_masks_returns_ranked_candidates(segmenter, rgb_image):
    result = segmenter.segment(
        rgb_image, point_prompts=[PointPrompt(30, 20)], return_multiple_masks=True, max_masks=2
    )
    (cand,) = result.candidates
    assert cand.masks.shape == (2, 60, 90)
    assert cand.scores[0] >= cand.scores[1]
    assert np.array_equal(cand.masks[0], result.masks[0]) and cand.scores[0] == result.scores[0]
    single = segmenter.segment(rgb_image, point_prompts=[PointPrompt(30, 20)])
    assert single.candidates == [None]


def test_concept_masks_match_transformers_post_processing(segmenter, rgb_image):
    """Our cropped post-processing must agree with Sam3Processor.post_process_instance_segmentation."""
    proc, det = segmenter.loaded.processor, segmenter.loaded.detector
    inputs = proc(images=rgb_image, text="cell", return_tensors="pt")
    with torch.inference_mode():
        out = det(**inputs)
    (ref,) = proc.post_process_instance_segmentation(
        out, threshold=0.2, mask_threshold=0.5, target_sizes=[(60, 90)]
    )
    result = segmenter.segment(rgb_image, prompt="cell", score_threshold=0.2)
    order = torch.argsort(ref["scores"], descending=True)
    assert len(result) == len(order) > 0
    assert np.allclose(result.scores, ref["scores"][order].numpy(), atol=1e-5)
    assert np.allclose(result.boxes, ref["boxes"][order].numpy(), atol=1e-3)
    ref_masks = ref["masks"][order].numpy().astype(bool)
    # Pixels may only differ where transformers' float32 interpolation sits within rounding of the threshold.
    keep = (out.pred_logits[0].sigmoid() * out.presence_logits[0].sigmoid()) > 0.2
    probs = torch.nn.functional.interpolate(
        out.pred_masks[0][keep][order][None].sigmoid(), size=(60, 90), mode="bilinear", align_corners=False
    )[0].numpy()
    differ = result.masks != ref_masks
    assert np.all(np.abs(probs[differ] - 0.5) < 1e-4)
    assert differ.mean() < 1e-3


def test_several_concepts_label_each_instance_and_max_masks_caps_each(segmenter, rgb_image):
    result = segmenter.segment(rgb_image, prompt="cell, dust", score_threshold=0.0, max_masks=3)
    assert result.concepts == ["cell"] * 3 + ["dust"] * 3
    assert result.sources == ["concept"] * 6
    assert result.scores[0] >= result.scores[1] >= result.scores[2]


def test_text_and_objects_in_one_request(segmenter, rgb_image):
    result = segmenter.segment(
        rgb_image,
        prompt="cell",
        score_threshold=0.0,
        max_masks=2,
        point_prompts=[PointPrompt(10, 10, object_id=3)],
    )
    assert result.sources == ["concept", "concept", "object"]
    assert result.object_ids.tolist()[-1] == 3


def test_tracker_features_from_the_shared_trunk_equal_the_trackers_own(segmenter, rgb_image):
    prepared = segmenter.set_image(rgb_image)
    emb = segmenter.image_cache.get(prepared.key)
    ours = segmenter._tracker_features(emb)
    pixels = segmenter.loaded.processor(images=rgb_image, return_tensors="pt")["pixel_values"]
    theirs = segmenter.loaded.tracker.get_image_embeddings(pixels)
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-5)


def test_second_prompt_on_a_cached_image_skips_the_backbone_and_gives_the_same_masks(fresh, rgb_image):
    calls = []
    hook = fresh.loaded.detector.vision_encoder.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        cold = fresh.segment(rgb_image, prompt="cell", score_threshold=0.0)
        cold_obj = fresh.segment(rgb_image, point_prompts=[PointPrompt(30, 20)])
        warm = fresh.segment(rgb_image, prompt="cell", score_threshold=0.0)
        warm_obj = fresh.segment(rgb_image.copy(), point_prompts=[PointPrompt(30, 20)])
        other = fresh.segment(rgb_image, prompt="dust", score_threshold=0.0)
    finally:
        hook.remove()
    assert len(calls) == 1  # one backbone pass served five requests (detector and tracker)
    assert np.array_equal(cold.masks, warm.masks) and np.array_equal(cold.scores, warm.scores)
    assert np.array_equal(cold_obj.masks, warm_obj.masks)
    assert len(other) > 0
    assert fresh.text_cache.misses == 2 and fresh.text_cache.hits >= 1


def test_cache_is_bounded_and_evicts_least_recent(tiny_checkpoint, rgb_image):
    seg = Sam3Segmenter.from_pretrained(str(tiny_checkpoint), device="cpu", cache_size=2)
    images = [np.roll(rgb_image, i, axis=1) for i in range(3)]
    keys = [seg.set_image(img).key for img in images]
    assert len(seg.image_cache) == 2 and keys[0] not in seg.image_cache and keys[2] in seg.image_cache


def test_batch_equals_one_by_one_and_encodes_text_once(fresh, rgb_image, tmp_path):
    from PIL import Image

    images = [rgb_image, np.flipud(rgb_image).copy(), rgb_image[:40, :50].copy()]
    path = tmp_path / "third.png"
    Image.fromarray(images[2]).save(path)
    backbone_batches = []
    hook = fresh.loaded.detector.vision_encoder.backbone.register_forward_hook(
        lambda m, args, out: backbone_batches.append(args[0].shape[0])
    )
    seen = []
    try:
        batch = fresh.segment_batch(
            [images[0], images[1], path],
            batch_size=3,
            prompt="cell",
            score_threshold=0.0,
            progress=lambda done, total: seen.append((done, total)),
        )
    finally:
        hook.remove()
    assert backbone_batches == [3]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert fresh.text_cache.misses == 1
    single = Sam3Segmenter(fresh.loaded)
    for img, res in zip(images, batch):
        ref = single.segment(img, prompt="cell", score_threshold=0.0)
        assert np.allclose(res.scores, ref.scores, atol=1e-4)
        assert (res.masks == ref.masks).mean() > 0.999


def test_batch_reports_unreadable_images_and_goes_on(segmenter, rgb_image, tmp_path):
    results = segmenter.segment_batch(
        [rgb_image, tmp_path / "missing.png", rgb_image], prompt="cell", errors="return", batch_size=2
    )
    assert isinstance(results[1], Exception) and "not found" in str(results[1])
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    with pytest.raises(Exception, match="not found"):
        segmenter.segment_batch([tmp_path / "missing.png"], prompt="cell")


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "bool"])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_every_dtype_and_channel_layout_segments(segmenter, dtype, channels):
    rng = np.random.default_rng(3)
    shape = (40, 50) if channels is None else (40, 50, channels)
    img = (rng.random(shape) * {"uint8": 255, "uint16": 4000, "float32": 1, "bool": 1}[dtype]).astype(dtype)
    result = segmenter.segment(img, prompt="cell", score_threshold=0.0, max_masks=2)
    assert result.masks.shape == (2, 40, 50) and result.image_size == (40, 50)


def test_prompts_outside_the_image_are_refused(segmenter, rgb_image):
    with pytest.raises(RequestError, match="outside"):
        segmenter.segment(rgb_image, point_prompts=[PointPrompt(91, 10)])


def test_equal_content_shares_a_cache_key(rgb_image):
    assert prepare_image(rgb_image).key == prepare_image(rgb_image.copy()).key
    assert prepare_image(rgb_image).key != prepare_image(rgb_image[:, ::-1]).key


def test_result_records_its_provenance(segmenter, rgb_image, tiny_checkpoint):
    result = segmenter.segment(rgb_image, prompt="cell")
    prov = result.provenance
    assert prov.model == str(tiny_checkpoint) and prov.request["prompt"] == "cell"
    assert prov.device == "cpu" and prov.dtype == "float32"


def test_bfloat16_path_runs_on_cpu(tiny_checkpoint, rgb_image):
    seg = Sam3Segmenter.from_pretrained(str(tiny_checkpoint), device="cpu", dtype="bfloat16")
    assert seg.loaded.detector.dtype == torch.bfloat16
    result = seg.segment(
        rgb_image, prompt="cell", score_threshold=0.0, max_masks=2, point_prompts=[PointPrompt(30, 20)]
    )
    ref = Sam3Segmenter.from_pretrained(str(tiny_checkpoint), device="cpu").segment(
        rgb_image, prompt="cell", score_threshold=0.0, max_masks=2, point_prompts=[PointPrompt(30, 20)]
    )
    assert result.scores.dtype == np.float32 and result.masks.shape == (3, 60, 90)
    assert np.allclose(result.scores, ref.scores, atol=0.05)


def test_compiled_backbone_gives_the_same_result(tiny_checkpoint, rgb_image):
    compiled = Sam3Segmenter.from_pretrained(str(tiny_checkpoint), device="cpu", compile=True)
    eager = Sam3Segmenter.from_pretrained(str(tiny_checkpoint), device="cpu")
    a = compiled.segment(rgb_image, prompt="cell", score_threshold=0.0, point_prompts=[PointPrompt(30, 20)])
    b = eager.segment(rgb_image, prompt="cell", score_threshold=0.0, point_prompts=[PointPrompt(30, 20)])
    assert compiled.loaded.tracker.vision_encoder.backbone is compiled.loaded.detector.vision_encoder.backbone
    assert np.allclose(a.scores, b.scores, atol=1e-4) and (a.masks == b.masks).mean() > 0.999


def test_batch_runs_the_backbone_once_per_image_even_with_a_tiny_cache(tiny_checkpoint, rgb_image):
    seg = Sam3Segmenter.from_pretrained(str(tiny_checkpoint), device="cpu", cache_size=0)
    images = [np.roll(rgb_image, i, axis=1) for i in range(5)]
    seen = []
    hook = seg.loaded.detector.vision_encoder.backbone.register_forward_hook(
        lambda m, args, out: seen.append(args[0].shape[0])
    )
    try:
        results = seg.segment_batch(images, prompt="cell", batch_size=2)
    finally:
        hook.remove()
    assert seen == [2, 2, 1] and len(results) == 5
