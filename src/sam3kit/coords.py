"""Box format conversions: every format sam3kit accepts or returns (see docs/coordinates.md).

Names say the layout and the unit: ``xyxy`` pixel corners (transformers' and the hosted API's input),
``cxcywh`` normalised centre and size (SAM 3 image boxes, the hosted API's output), ``xywh`` normalised
top-left and size (FiftyOne's ``bounding_box``, SAM 3 video boxes). Arrays have shape ``(..., 4)``.
"""

from __future__ import annotations

import numpy as np


def _split(boxes: np.ndarray) -> tuple[np.ndarray, ...]:
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape[-1:] != (4,):
        raise ValueError(f"boxes need 4 numbers in the last axis, got shape {boxes.shape}")
    return tuple(boxes[..., i] for i in range(4))


def xyxy_to_cxcywh_norm(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel corners -> normalised (cx, cy, w, h) in 0..1."""
    x0, y0, x1, y1 = _split(boxes)
    return np.stack(
        [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height], -1
    )


def cxcywh_norm_to_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised (cx, cy, w, h) -> pixel corners."""
    cx, cy, w, h = _split(boxes)
    return np.stack(
        [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], -1
    )


def xyxy_to_xywh_norm(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel corners -> normalised (x, y, w, h) with (x, y) the top-left corner (FiftyOne)."""
    x0, y0, x1, y1 = _split(boxes)
    return np.stack([x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height], -1)


def xywh_norm_to_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised top-left (x, y, w, h) (FiftyOne) -> pixel corners."""
    x, y, w, h = _split(boxes)
    return np.stack([x * width, y * height, (x + w) * width, (y + h) * height], -1)
