"""One loaded SAM 3 per (model, device), shared by every widget of the session.

Loading takes seconds to minutes and gigabytes, so widgets never own a model: they ask this cache, from a
worker thread, and get the same :class:`~sam3kit.Sam3Segmenter` (whose engine is thread-safe). The video
model (:class:`~sam3kit.video.Sam3VideoSegmenter`, for propagation through Z or T) has a cache of its own.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Sam3Segmenter
    from ..video import Sam3VideoSegmenter

log = logging.getLogger(__name__)

_models: dict[tuple[str, str], Sam3Segmenter] = {}
_video_models: dict[tuple[str, str], Sam3VideoSegmenter] = {}
_lock = threading.Lock()


def _key(model: str, device: str) -> tuple[str, str]:
    return (str(model).strip(), str(device or "auto").strip().lower())


def get_segmenter(model: str, device: str = "auto") -> Sam3Segmenter:
    """The shared segmenter for ``model`` on ``device``, loading it on first use (slow: call off the GUI thread).

    Raises :class:`~sam3kit.ModelLoadError` with a message saying what to do when it cannot be loaded.
    """
    keep_triton_out_after_mesa()
    from ..engine import Sam3Segmenter

    key = _key(model, device)
    with _lock:  # a second widget asking meanwhile waits for this load instead of starting its own
        if key not in _models:
            _models[key] = Sam3Segmenter.from_pretrained(key[0], device=key[1])
        return _models[key]


def get_video_segmenter(model: str, device: str = "auto") -> Sam3VideoSegmenter:
    """The shared video segmenter for ``model`` on ``device``, loading it on first use (slow: call off the
    GUI thread). Raises :class:`~sam3kit.ModelLoadError` when it cannot be loaded."""
    keep_triton_out_after_mesa()
    from ..video import Sam3VideoSegmenter

    key = _key(model, device)
    with _lock:
        if key not in _video_models:
            _video_models[key] = Sam3VideoSegmenter.from_pretrained(key[0], device=key[1])
        return _video_models[key]


def share_video_segmenter(model: str, device: str, segmenter: Sam3VideoSegmenter) -> None:
    """Offer an already loaded video segmenter under ``(model, device)``, e.g. one a script built."""
    with _lock:
        _video_models[_key(model, device)] = segmenter


def keep_triton_out_after_mesa() -> bool:
    """Stop torch from loading triton into a process where Mesa's OpenGL has already loaded LLVM.

    napari's canvas on software OpenGL (Mesa llvmpipe: VMs, remote desktops, Xvfb) loads libLLVM; loading
    triton, which brings its own LLVM, after it kills the process with a segmentation fault. torchvision
    imports ``torch._dynamo``, which tries ``import triton`` and takes an ImportError as "no triton". The
    widget never compiles the model, so nothing is lost. Returns whether triton was kept out.
    """
    if "triton" in sys.modules or not sys.platform.startswith("linux"):
        return False
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    if "libLLVM" not in maps:
        return False
    log.info("OpenGL has loaded LLVM in this process: keeping triton (torch.compile's GPU backend) out")
    sys.modules["triton"] = None  # type: ignore[assignment]
    return True


def loaded_segmenter(model: str, device: str = "auto") -> Sam3Segmenter | None:
    """The shared segmenter if it is already loaded, else None (never loads)."""
    return _models.get(_key(model, device))


def share_segmenter(model: str, device: str, segmenter: Sam3Segmenter) -> None:
    """Offer an already loaded segmenter under ``(model, device)``, e.g. one a script built."""
    with _lock:
        _models[_key(model, device)] = segmenter


def forget_models() -> None:
    """Drop every shared model (their memory is freed once no widget holds a result that uses them)."""
    with _lock:
        _models.clear()
        _video_models.clear()
