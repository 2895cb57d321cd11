"""Masks kept lean: each stored as the crop of its tight box, upsampled only where it can be non-zero.

A 4096 x 4096 image with 100 instances would need 1.7 GB as full-resolution boolean masks and ten times
that as the float maps transformers' post-processing interpolates. SAM 3 predicts masks at 288 x 288;
bilinear upsampling is separable (two taps along each axis), so the full-resolution probability map can be
computed inside any window, and a pixel can only pass the threshold if one of its four low-resolution
neighbours does. Only those windows are ever computed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


class MaskCrops:
    """``N`` boolean masks of an ``(H, W)`` image, each stored as ``(y0, x0, crop)``; empty masks as 0 x 0 crops.

    Indexing gives one full-resolution mask; :meth:`to_array` all of them (as much memory as N x H x W).
    """

    def __init__(
        self, size: tuple[int, int], offsets: Sequence[tuple[int, int]], crops: Sequence[np.ndarray]
    ):
        if len(offsets) != len(crops):
            raise ValueError("one offset per crop")
        self.size = (int(size[0]), int(size[1]))
        self.offsets = [(int(y), int(x)) for y, x in offsets]
        self.crops = [np.asarray(c, dtype=bool) for c in crops]

    @classmethod
    def from_array(cls, masks: np.ndarray) -> MaskCrops:
        """Crop each (H, W) mask of an (N, H, W) array to its tight box."""
        masks = np.asarray(masks, dtype=bool)
        offsets, crops = [], []
        for mask in masks:
            y0, x0, crop = _tighten(mask, 0, 0)
            offsets.append((y0, x0))
            crops.append(crop)
        return cls(masks.shape[1:], offsets, crops)

    @classmethod
    def concat(cls, parts: Sequence[MaskCrops], size: tuple[int, int]) -> MaskCrops:
        return cls(size, [o for p in parts for o in p.offsets], [c for p in parts for c in p.crops])

    def take(self, index: Sequence[int]) -> MaskCrops:
        return MaskCrops(self.size, [self.offsets[i] for i in index], [self.crops[i] for i in index])

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> np.ndarray:
        full = np.zeros(self.size, dtype=bool)
        y0, x0 = self.offsets[i]
        crop = self.crops[i]
        full[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        return full

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def to_array(self) -> np.ndarray:
        out = np.zeros((len(self), *self.size), dtype=bool)
        for i, ((y0, x0), crop) in enumerate(zip(self.offsets, self.crops)):
            out[i, y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        return out

    def boxes(self) -> np.ndarray:
        """Tight pixel boxes (x_min, y_min, x_max, y_max), pixel edges; zeros for empty masks."""
        boxes = np.zeros((len(self), 4), np.float32)
        for i, ((y0, x0), crop) in enumerate(zip(self.offsets, self.crops)):
            if crop.size:
                boxes[i] = (x0, y0, x0 + crop.shape[1], y0 + crop.shape[0])
        return boxes

    def areas(self) -> np.ndarray:
        return np.array([int(c.sum()) for c in self.crops], dtype=np.int64)

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.crops)


def _tighten(mask: np.ndarray, y0: int, x0: int) -> tuple[int, int, np.ndarray]:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return 0, 0, np.zeros((0, 0), bool)
    cols = np.flatnonzero(mask.any(axis=0))
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return y0 + int(rows[0]), x0 + int(cols[0]), np.ascontiguousarray(crop)


def bilinear_taps(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's bilinear upsampling along one axis (``align_corners=False``) as two taps per output:
    output ``i`` = ``(1 - w[i]) * input[i0[i]] + w[i] * input[i1[i]]``."""
    scale = np.float32(in_size / out_size)
    src = np.maximum((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, (src - i0).astype(np.float32)


#: Windows covering more than this share of the image are upsampled whole, several masks per call.
WHOLE_IMAGE_SHARE = 0.25
WHOLE_IMAGE_CHUNK = 8


def upsample_to_crops(probs: Any, size: tuple[int, int], threshold: float) -> MaskCrops:
    """Low-resolution probability maps (N, h, w) -> masks ``bilinear(probs) > threshold`` at ``size``, as crops.

    Each mask is upsampled only inside the window where it can pass the threshold (in numpy: small
    per-mask work is cheaper there than as many tiny torch calls); masks whose window covers much of the
    image are upsampled whole with ``torch.nn.functional.interpolate``, a few at a time.
    """
    import torch

    probs_np = np.asarray(probs.detach().cpu().float() if hasattr(probs, "detach") else probs, np.float32)
    height, width = size
    n = len(probs_np)
    offsets: list[tuple[int, int]] = [(0, 0)] * n
    crops: list[np.ndarray] = [np.zeros((0, 0), bool)] * n
    if n == 0:
        return MaskCrops(size, [], [])
    ry0, ry1, wy = bilinear_taps(height, probs_np.shape[1])
    rx0, rx1, wx = bilinear_taps(width, probs_np.shape[2])
    whole: list[int] = []
    for i, prob in enumerate(probs_np):
        above = prob > threshold
        low_rows = np.flatnonzero(above.any(axis=1))
        if low_rows.size == 0:
            continue
        low_cols = np.flatnonzero(above.any(axis=0))
        rows = _window(ry0, ry1, low_rows[0], low_rows[-1])
        cols = _window(rx0, rx1, low_cols[0], low_cols[-1])
        if (rows[1] - rows[0]) * (cols[1] - cols[0]) > WHOLE_IMAGE_SHARE * height * width:
            whole.append(i)
            continue
        y, x = slice(*rows), slice(*cols)
        along_rows = prob[ry0[y]] * (1 - wy[y, None]) + prob[ry1[y]] * wy[y, None]
        window = along_rows[:, rx0[x]] * (1 - wx[x]) + along_rows[:, rx1[x]] * wx[x]
        ty, tx, crops[i] = _tighten(window > threshold, rows[0], cols[0])
        offsets[i] = (ty, tx)
    tensor = torch.from_numpy(probs_np)
    for start in range(0, len(whole), WHOLE_IMAGE_CHUNK):
        chunk = whole[start : start + WHOLE_IMAGE_CHUNK]
        full = torch.nn.functional.interpolate(tensor[chunk][None], size=size, mode="bilinear", align_corners=False)
        for i, mask in zip(chunk, (full[0] > threshold).numpy()):
            ty, tx, crops[i] = _tighten(mask, 0, 0)
            offsets[i] = (ty, tx)
    return MaskCrops(size, offsets, crops)


def _window(i0: np.ndarray, i1: np.ndarray, low: int, high: int) -> tuple[int, int]:
    """The output range [start, stop) whose taps touch input rows low..high."""
    hit = np.flatnonzero(((i0 >= low) & (i0 <= high)) | ((i1 >= low) & (i1 <= high)))
    return int(hit[0]), int(hit[-1]) + 1
