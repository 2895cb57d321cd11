import base64
import io

import numpy as np
from PIL import Image

from sam3kit.result import SegmentationResult, mask_to_rle, rle_to_mask


def _result():
    masks = np.zeros((3, 6, 8), bool)
    masks[0, 0:4, 0:4] = True  # score 0.5
    masks[1, 2:6, 2:6] = True  # score 0.9: wins the overlap with mask 0
    masks[2, 0:2, 6:8] = True  # score 0.7
    return SegmentationResult(
        image_size=(6, 8),
        masks=masks,
        scores=np.array([0.5, 0.9, 0.7], np.float32),
        boxes=np.array([[0, 0, 4, 4], [2, 2, 6, 6], [6, 0, 8, 2]], np.float32),
        object_ids=np.array([1, 2, 7]),
        sources=["concept", "concept", "object"],
        concepts=["a", "a", None],
    )


def test_label_image_numbers_masks_from_one_and_higher_score_wins_overlaps():
    labels = _result().label_image()
    assert labels.dtype == np.uint16
    assert labels[0, 0] == 1 and labels[3, 3] == 2 and labels[0, 7] == 3 and labels[5, 0] == 0
    assert (labels == 1).sum() == 16 - 4  # 4 pixels of mask 0 lost to mask 1


def test_normalised_boxes_follow_the_hosted_api():
    assert np.allclose(_result().boxes_cxcywh[1], [4 / 8, 4 / 6, 4 / 8, 4 / 6])


def test_seed_schema_response_with_inline_images():
    image = np.full((6, 8, 3), 200, np.uint8)
    body = _result().to_dict(image, output_format="png", sync_mode=True)
    assert set(body) >= {"image", "masks", "scores", "boxes", "metadata"}
    assert body["scores"] == [0.5, 0.8999999761581421, 0.699999988079071]
    assert all(0 <= v <= 1 for box in body["boxes"] for v in box)
    mask1 = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["masks"][1]["url"].split(",", 1)[1]))))
    assert np.array_equal(mask1 > 0, _result().masks[1])
    assert body["metadata"][2] == {
        "index": 2,
        "score": body["scores"][2],
        "box": body["boxes"][2],
        "box_xyxy": [6.0, 0.0, 8.0, 2.0],
        "object_id": 7,
        "source": "object",
        "concept": None,
    }
    lean = _result().to_dict(image, include_scores=False, include_boxes=False)
    assert "scores" not in lean and "boxes" not in lean


def test_preview_cuts_out_or_tints_the_masks():
    image = np.full((6, 8, 3), 100, np.uint8)
    cut = _result().preview(image, apply_mask=True)
    assert (cut[5, 0] == 0).all() and (cut[0, 0] == 100).all()
    tint = _result().preview(image, apply_mask=False)
    assert (tint[5, 0] == 100).all() and not (tint[0, 0] == 100).all()


def test_rle_round_trips_and_matches_coco_column_major_order():
    mask = np.array([[0, 1], [1, 1], [0, 0]], bool)
    rle = mask_to_rle(mask)
    # column-major pixels: col 0 = 0,1,0 ; col 1 = 1,1,0 -> runs 1 zero, 1 one, 1 zero, 2 ones, 1 zero
    assert rle == {"size": [3, 2], "counts": [1, 1, 1, 2, 1]}
    starts_on = np.ones((2, 2), bool)
    assert mask_to_rle(starts_on)["counts"] == [0, 4]
    for m in [mask, starts_on, *(_result().masks)]:
        assert np.array_equal(rle_to_mask(mask_to_rle(m)), m)
