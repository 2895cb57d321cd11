import base64
import io

import numpy as np
import pytest
from PIL import Image

from sam3kit.images import ImageError, load_image, to_rgb_uint8


def test_uint8_rgb_passes_through_unchanged(rgb_image):
    assert np.array_equal(to_rgb_uint8(rgb_image), rgb_image)


def test_grayscale_and_single_channel_become_three_equal_channels():
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6)
    for arr in (gray, gray[..., None], gray[None]):
        out = to_rgb_uint8(arr)
        assert out.shape == (5, 6, 3) and out.dtype == np.uint8
        assert all(np.array_equal(out[..., c], gray) for c in range(3))


def test_rgba_drops_alpha_and_channel_first_is_moved_last(rgb_image):
    rgba = np.dstack([rgb_image, np.full(rgb_image.shape[:2], 7, np.uint8)])
    assert np.array_equal(to_rgb_uint8(rgba), rgb_image)
    assert np.array_equal(to_rgb_uint8(np.moveaxis(rgb_image, -1, 0)), rgb_image)


def test_16bit_is_stretched_between_robust_percentiles_not_cast():
    rng = np.random.default_rng(0)
    img = rng.integers(1000, 1200, size=(64, 64)).astype(np.uint16)
    img[0, 0] = 65535  # one hot pixel must not squash the rest
    out = to_rgb_uint8(img)[..., 0]
    low, high = np.percentile(img.astype(np.float32), [0.5, 99.5])
    expected = np.clip((img.astype(np.float32) - low) * 255 / (high - low), 0, 255).round().astype(np.uint8)
    assert np.array_equal(out, expected)
    assert out.std() > 50  # a cast (img // 256) would be nearly constant
    assert out[0, 0] == 255


def test_float_images_in_unit_range_scale_by_255_and_others_stretch():
    unit = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    assert np.array_equal(to_rgb_uint8(unit)[..., 0], (unit * 255).round().astype(np.uint8))
    wide = np.linspace(-50, 3000, 400, dtype=np.float64).reshape(20, 20)
    out = to_rgb_uint8(wide)[..., 0]
    assert out.min() == 0 and out.max() == 255


def test_constant_and_nan_images_do_not_crash():
    assert to_rgb_uint8(np.full((5, 5), 300, np.uint16)).max() == 0
    img = np.ones((5, 5), np.float32)
    img[2, 2] = np.nan
    assert to_rgb_uint8(img).shape == (5, 5, 3)


@pytest.mark.parametrize("shape", [(6, 5, 2), (2, 3, 4, 5), (5,)])
def test_uninterpretable_shapes_get_a_clear_error(shape):
    with pytest.raises(ImageError, match="cannot interpret"):
        to_rgb_uint8(np.zeros(shape, np.uint8))


def test_load_from_path_pil_and_data_uri(tmp_path, rgb_image):
    path = tmp_path / "img.png"
    Image.fromarray(rgb_image).save(path)
    assert np.array_equal(load_image(path), rgb_image)
    assert np.array_equal(load_image(str(path)), rgb_image)
    assert np.array_equal(load_image(Image.fromarray(rgb_image)), rgb_image)
    buf = io.BytesIO()
    Image.fromarray(rgb_image).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    assert np.array_equal(load_image(uri), rgb_image)


def test_16bit_png_keeps_its_bit_depth(tmp_path):
    img = (np.arange(40 * 30) * 50).astype(np.uint16).reshape(40, 30)
    Image.fromarray(img).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.max() > 255 and np.array_equal(loaded.astype(np.uint16), img)


def test_missing_and_corrupt_files_raise_image_error(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageError, match="cannot read"):
        load_image(bad)


def test_http_url_is_downloaded(tmp_path, rgb_image):
    """A URL served from this machine's loopback interface (no outside network)."""
    import functools
    import http.server
    import threading

    Image.fromarray(rgb_image).save(tmp_path / "served.png")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/served.png"
        assert np.array_equal(load_image(url), rgb_image)
        with pytest.raises(ImageError, match="cannot download"):
            load_image(url.replace("served", "absent"))
    finally:
        server.shutdown()
        server.server_close()
