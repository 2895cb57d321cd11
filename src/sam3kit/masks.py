"""Masks kept lean: each stored as the crop of its tight box, upsampled only where it can be non-zero.

A 4096 x 4096 image with 100 instances would need 1.7 GB as full-resolution boolean masks and ten times
that as the float maps transformers' post-processing interpolates. SAM 3 predicts masks at 288 x 288;
bilinear upsampling is separable, so the full-resolution probability map inside a window is
``Wy[rows] @ P @ Wx[cols].T`` with ``Wy``/``Wx`` the interpolation matrices, and a pixel can only pass the
threshold if one of its low-resolution neighbours does. Only those windows are ever computed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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


def bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """The (out, in) matrix of PyTorch's bilinear upsampling along one axis (``align_corners=False``)."""
    scale = in_size / out_size
    src = np.maximum((np.arange(out_size) + 0.5) * scale - 0.5, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = src - i0
    matrix = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, i0), 1.0 - w1)
    np.add.at(matrix, (rows, i1), w1)
    return matrix


def upsample_to_crops(probs: np.ndarray, size: tuple[int, int], threshold: float) -> MaskCrops:
    """Low-resolution probability maps (N, h, w) -> masks ``bilinear(probs) > threshold`` at ``size``, as crops."""
    probs = np.asarray(probs, dtype=np.float64)
    height, width = size
    if len(probs) == 0:
        return MaskCrops(size, [], [])
    wy = bilinear_matrix(height, probs.shape[1])
    wx = bilinear_matrix(width, probs.shape[2])
    offsets, crops = [], []
    for prob in probs:
        above = prob > threshold
        if not above.any():
            offsets.append((0, 0))
            crops.append(np.zeros((0, 0), bool))
            continue
        low_rows = np.flatnonzero(above.any(axis=1))
        low_cols = np.flatnonzero(above.any(axis=0))
        rows = np.flatnonzero(wy[:, low_rows[0] : low_rows[-1] + 1].any(axis=1))
        cols = np.flatnonzero(wx[:, low_cols[0] : low_cols[-1] + 1].any(axis=1))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        window = wy[y0:y1] @ prob @ wx[x0:x1].T > threshold
        ty, tx, crop = _tighten(window, int(y0), int(x0))
        offsets.append((ty, tx))
        crops.append(crop)
    return MaskCrops(size, offsets, crops)
