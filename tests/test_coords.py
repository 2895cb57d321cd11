"""Each box format against values worked out by hand for a 200 x 100 (W x H) image."""

import numpy as np
import pytest

from sam3kit import coords

W, H = 200, 100
XYXY = np.array([[20.0, 10.0, 60.0, 50.0]])  # pixels: 40 wide, 40 tall, centre (40, 30)


def test_xyxy_to_normalised_centre_size():
    assert np.allclose(coords.xyxy_to_cxcywh_norm(XYXY, W, H), [[0.2, 0.3, 0.2, 0.4]])


def test_xyxy_to_fiftyone_top_left_size():
    assert np.allclose(coords.xyxy_to_xywh_norm(XYXY, W, H), [[0.1, 0.1, 0.2, 0.4]])


@pytest.mark.parametrize(
    "forward, back",
    [
        (coords.xyxy_to_cxcywh_norm, coords.cxcywh_norm_to_xyxy),
        (coords.xyxy_to_xywh_norm, coords.xywh_norm_to_xyxy),
    ],
)
def test_conversions_round_trip(forward, back):
    rng = np.random.default_rng(1)
    boxes = np.sort(rng.uniform(0, 100, size=(20, 2, 2)), axis=1).transpose(0, 2, 1).reshape(20, 4)
    boxes = boxes[:, [0, 2, 1, 3]]  # x0, y0, x1, y1 with x0 <= x1, y0 <= y1
    assert np.allclose(back(forward(boxes, W, H), W, H), boxes)


def test_wrong_box_shape_is_refused():
    with pytest.raises(ValueError, match="4 numbers"):
        coords.xyxy_to_cxcywh_norm(np.zeros((2, 3)), W, H)
