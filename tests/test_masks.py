import numpy as np
import torch

from sam3kit.masks import MaskCrops, bilinear_taps, upsample_to_crops


def test_bilinear_taps_reproduce_torch_interpolation():
    rng = np.random.default_rng(0)
    low = rng.random((7, 9)).astype(np.float32)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(low)[None, None], size=(20, 31), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    y0, y1, wy = bilinear_taps(20, 7)
    x0, x1, wx = bilinear_taps(31, 9)
    rows = low[y0] * (1 - wy[:, None]) + low[y1] * wy[:, None]
    assert np.allclose(rows[:, x0] * (1 - wx) + rows[:, x1] * wx, ref, atol=1e-6)


def test_crops_equal_full_resolution_upsampling_then_threshold():
    rng = np.random.default_rng(1)
    low = np.zeros((4, 24, 24), np.float32)
    low[0, 3:9, 4:12] = rng.random((6, 8))  # a blob: upsampled in its window
    low[1] = rng.random((24, 24))  # everywhere: upsampled whole
    low[2, 20:, 0:2] = 0.9  # a corner
    # low[3] stays empty
    crops = upsample_to_crops(low, (301, 413), 0.5)
    full = (
        torch.nn.functional.interpolate(
            torch.from_numpy(low)[None], size=(301, 413), mode="bilinear", align_corners=False
        )[0].numpy()
        > 0.5
    )
    assert np.array_equal(crops.to_array(), full)
    assert crops.crops[3].shape == (0, 0) and crops.boxes()[3].tolist() == [0, 0, 0, 0]
    assert crops.nbytes < full[:3].nbytes / 2  # the blob and corner are small


def test_mask_crops_round_trip_and_boxes():
    masks = np.zeros((2, 10, 12), bool)
    masks[0, 2:5, 3:9] = True
    masks[0, 7, 1] = True
    crops = MaskCrops.from_array(masks)
    assert crops.offsets == [(2, 1), (0, 0)] and crops.crops[0].shape == (6, 8)
    assert np.array_equal(crops.to_array(), masks) and np.array_equal(crops[0], masks[0])
    assert crops.boxes().tolist() == [[1, 2, 9, 8], [0, 0, 0, 0]]
    assert crops.areas().tolist() == [19, 0]
    assert np.array_equal(crops.take([1, 0]).to_array(), masks[::-1])


def test_mask_box_spans_pixel_edges():
    mask = np.zeros((1, 100, 200), bool)
    mask[0, 10:50, 20:60] = True  # rows 10..49, cols 20..59
    assert MaskCrops.from_array(mask).boxes().tolist() == [[20.0, 10.0, 60.0, 50.0]]
