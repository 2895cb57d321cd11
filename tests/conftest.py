"""Shared fixtures: a tiny random SAM 3 saved to disk and loaded back the way users load the real one."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A folder with a randomly initialised SAM 3 (112 px input) in the hub checkpoint's layout."""
    from sam3kit.testing import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("sam3-tiny"))


@pytest.fixture(scope="session")
def tiny_video_checkpoint(tmp_path_factory):
    """A tiny SAM 3 whose video tracker can carry memory across frames.

    transformers' video tracker splits object pointers into 64-channel tokens, so video needs a hidden
    size above 64 (the image tests' checkpoint uses 32 to stay fast).
    """
    from sam3kit.testing import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("sam3-tiny-video"), hidden=128)


@pytest.fixture(scope="session")
def video_seg(tiny_video_checkpoint):
    """One shared Sam3VideoSegmenter over the tiny video checkpoint (CPU, float32)."""
    from sam3kit.video import Sam3VideoSegmenter

    return Sam3VideoSegmenter.from_pretrained(str(tiny_video_checkpoint), device="cpu")


@pytest.fixture
def eager(video_seg, monkeypatch):
    """``video_seg`` where every concept detection starts a track (random weights score low), at most 6
    at once; restored after the test."""
    from transformers.utils import logging as hf_logging

    monkeypatch.setattr(video_seg.model, "new_det_thresh", 0.0)
    monkeypatch.setattr(video_seg.model, "max_num_objects", 6)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "hitting max_num_objects" on every frame
    yield video_seg
    hf_logging.set_verbosity(verbosity)


@pytest.fixture(scope="session")
def segmenter(tiny_checkpoint):
    """One shared Sam3Segmenter over the tiny checkpoint (CPU, float32)."""
    from sam3kit import Sam3Segmenter

    return Sam3Segmenter.from_pretrained(str(tiny_checkpoint), device="cpu")


@pytest.fixture
def rgb_image():
    """A 60 x 90 (H x W) RGB uint8 image with a bright disc, deterministic."""
    yy, xx = np.mgrid[0:60, 0:90]
    img = np.zeros((60, 90, 3), np.uint8)
    img[..., 0] = (xx * 2).astype(np.uint8)
    img[..., 1] = (yy * 3).astype(np.uint8)
    img[(yy - 30) ** 2 + (xx - 45) ** 2 < 15**2] = 255
    return img
