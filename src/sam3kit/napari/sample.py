"""Sample data made in code (no downloads): synthetic cells to try prompts on.

Deterministic (fixed seed), small, and built with numpy only, so opening the sample is instant.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _blobs(shape: tuple[int, int], centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Soft discs (values 0..1) at ``centres`` (row, col) with ``radii`` pixels."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = np.zeros(shape, np.float32)
    for (cy, cx), r in zip(centres, radii):
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        image = np.maximum(image, np.clip((r - d) / 2 + 0.5, 0, 1))
    return image


def synthetic_cells(size: tuple[int, int] = (256, 256), n: int = 14, seed: int = 0) -> np.ndarray:
    """An (H, W, 3) uint8 picture of stained cells: pink cytoplasm, dark purple nuclei, pale background."""
    rng = np.random.default_rng(seed)
    margin = 24
    centres = np.column_stack(
        [rng.uniform(margin, size[0] - margin, n), rng.uniform(margin, size[1] - margin, n)]
    )
    radii = rng.uniform(12, 22, n)
    cells = _blobs(size, centres, radii)
    nuclei = _blobs(size, centres + rng.normal(0, 2, centres.shape), radii * 0.45)
    background = np.array([235, 225, 230], np.float32)
    cytoplasm = np.array([225, 120, 170], np.float32)
    nucleus = np.array([80, 40, 120], np.float32)
    rgb = background * (1 - cells[..., None]) + cytoplasm * cells[..., None]
    rgb = rgb * (1 - nuclei[..., None]) + nucleus * nuclei[..., None]
    rgb += rng.normal(0, 4, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def synthetic_nuclei_stack(planes: int = 8, size: tuple[int, int] = (128, 128), seed: int = 1) -> np.ndarray:
    """A (Z, H, W) uint16 fluorescence stack of nuclei drifting through the planes (12-bit range)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(16, size[0] - 16, (10, 2))
    radii = rng.uniform(7, 12, 10)
    drift = rng.normal(0, 1.0, (10, 2))
    stack = np.stack([_blobs(size, centres + z * drift, radii) for z in range(planes)])
    signal = 200 + 3000 * stack + rng.normal(0, 40, stack.shape)
    return np.clip(signal, 0, 4095).astype(np.uint16)


def cells() -> list[tuple[Any, dict[str, Any], str]]:
    """napari sample: synthetic stained cells (2D RGB)."""
    return [(synthetic_cells(), {"name": "synthetic cells", "rgb": True}, "image")]


def nuclei_stack() -> list[tuple[Any, dict[str, Any], str]]:
    """napari sample: a synthetic 16-bit nuclei stack (Z, Y, X)."""
    return [(synthetic_nuclei_stack(), {"name": "synthetic nuclei", "colormap": "gray"}, "image")]
