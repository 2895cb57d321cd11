"""Turning whatever a user holds into the 8-bit RGB image SAM 3 expects.

SAM 3 was trained on 8-bit RGB photographs. Microscopy data are often 12/16-bit or float with most of the
range empty, so a plain cast would give a black or clipped image; those are stretched between robust
percentiles instead.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any, Union

import numpy as np

ImageInput = Union[np.ndarray, "Any", str, Path]  # numpy array, PIL image, path, URL or data URI

#: Percentiles that map to 0 and 255 for data that are not already 8-bit.
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5


class ImageError(ValueError):
    """An image could not be read or has a layout sam3kit cannot interpret."""


def load_image(source: ImageInput) -> np.ndarray:
    """Read an image from an array, PIL image, file path, http(s) URL or data URI, as a numpy array.

    The array keeps its dtype and channels; use :func:`to_rgb_uint8` to prepare it for the model.
    """
    from PIL import Image

    if isinstance(source, np.ndarray):
        return source
    if isinstance(source, Image.Image):
        return _pil_to_array(source)
    if isinstance(source, Path) or isinstance(source, str):
        text = str(source)
        if text.startswith("data:"):
            return _pil_to_array(_open_bytes(_decode_data_uri(text), "data URI"))
        if re.match(r"^https?://", text):
            return _pil_to_array(_open_bytes(_download(text), text))
        path = Path(text).expanduser()
        if not path.is_file():
            raise ImageError(f"image file not found: {path}")
        try:
            with Image.open(path) as img:
                return _pil_to_array(img)
        except Exception as exc:  # PIL raises several unrelated types for bad files
            raise ImageError(f"cannot read image {path}: {exc}") from exc
    raise ImageError(f"unsupported image input of type {type(source).__name__}")


def _pil_to_array(img: Any) -> np.ndarray:
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    return np.array(img)  # a writable copy: torch warns on read-only buffers


def _open_bytes(data: bytes, what: str) -> Any:
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except Exception as exc:
        raise ImageError(f"cannot decode the image in {what}: {exc}") from exc


def _decode_data_uri(uri: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep:
        raise ImageError("malformed data URI: no ',' separates header and data")
    try:
        return base64.b64decode(payload) if header.endswith(";base64") else payload.encode("latin-1")
    except Exception as exc:
        raise ImageError(f"malformed data URI: {exc}") from exc


def _download(url: str) -> bytes:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - user-given image URL
            return response.read()
    except Exception as exc:
        raise ImageError(f"cannot download {url}: {exc}") from exc


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Return an (H, W, 3) uint8 RGB view of ``image``.

    Accepts (H, W) grayscale, (H, W, 1|3|4) and channel-first (1|3|4, H, W) arrays; alpha is dropped.
    uint8 passes through; bool maps to 0/255; floats already in 0..1 are scaled by 255; everything else
    (uint16, other integers, floats in another range) is stretched between the 0.5th and 99.5th percentiles.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.ndim == 2:
        arr = arr[..., None]
    elif arr.ndim != 3 or arr.shape[-1] != 3:
        raise ImageError(
            f"cannot interpret an image of shape {np.shape(image)}: expected (H, W), (H, W, 1/3/4) or "
            "(1/3/4, H, W); for a stack or multichannel data, pick one plane or up to 3 channels first"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"the image is empty (shape {np.shape(image)})")
    arr = _to_uint8(arr)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind not in "uif":
        raise ImageError(f"unsupported image dtype {arr.dtype}")
    data = arr.astype(np.float32, copy=False)
    finite = np.isfinite(data)
    if not finite.all():
        data = np.where(finite, data, np.nan)
    if arr.dtype.kind == "f" and np.nanmin(data) >= 0.0 and np.nanmax(data) <= 1.0:
        low, high = 0.0, 1.0
    else:
        low, high = (float(v) for v in np.nanpercentile(data, [LOW_PERCENTILE, HIGH_PERCENTILE]))
    return stretch_to_uint8(data, low, high)


def stretch_to_uint8(data: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``low``..``high`` linearly to 0..255 (clipped; NaN to 0), keeping the array's shape."""
    if not np.isfinite(low) or not high > low:
        return np.zeros(data.shape, dtype=np.uint8)
    scaled = (data.astype(np.float32, copy=False) - np.float32(low)) * np.float32(255.0 / (high - low))
    return np.nan_to_num(np.clip(scaled, 0, 255), nan=0.0).round().astype(np.uint8)
