"""sam3kit: SAM 3 segmentation for napari, FiftyOne, Python and the command line.

The public API is re-exported here lazily, so that importing ``sam3kit`` (as napari and FiftyOne do when
they discover plugins) does not import torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Sam3Segmenter": "engine",
    "PreparedImage": "engine",
    "prepare_image": "engine",
    "SegmentRequest": "request",
    "PointPrompt": "request",
    "BoxPrompt": "request",
    "RequestError": "request",
    "SegmentationResult": "result",
    "MaskCandidates": "result",
    "ModelLoadError": "errors",
    "ImageError": "images",
    "load_image": "images",
    "to_rgb_uint8": "images",
    "DEFAULT_MODEL": "model",
    "Sam3VideoSegmenter": "video",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .engine import PreparedImage, Sam3Segmenter, prepare_image
    from .errors import ModelLoadError
    from .images import ImageError, load_image, to_rgb_uint8
    from .model import DEFAULT_MODEL
    from .request import BoxPrompt, PointPrompt, RequestError, SegmentRequest
    from .result import MaskCandidates, SegmentationResult
    from .video import Sam3VideoSegmenter


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'sam3kit' has no attribute {name!r}")
