"""The one loaded SAM 3 that the FiftyOne front end shares between runs, operators and Model instances.

A delegated-operation worker runs many operations in one process; loading SAM 3 for each would cost
seconds to minutes and, kept around, gigabytes per copy. One slot is kept: asking for another model (or
device or dtype) drops the previous one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine import Sam3Segmenter
    from ..video import Sam3VideoSegmenter

_lock = threading.Lock()
_slot: dict[tuple[str, str, str, str], Any] = {}


def model_name(model: Any) -> str:
    """The name a run records for ``model``: a loaded segmenter's id, a folder as loading resolves it,
    or the hub id as given."""
    loaded = getattr(model, "loaded", None)
    if loaded is not None:
        return str(loaded.model_id)
    if hasattr(model, "init_video_session"):  # a loaded Sam3VideoSegmenter
        return str(model.model_id)
    name = str(model)
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        return str(path)
    return name


def model_revision(model: Any) -> str | None:
    """The hub revision a loaded model was loaded at; None for names and folders (resolved when loaded)."""
    loaded = getattr(model, "loaded", model)
    return getattr(loaded, "revision", None)


def get_segmenter(model: Any, device: str | None = "auto", dtype: Any = "auto") -> Sam3Segmenter:
    """``model`` itself if it is a loaded :class:`~sam3kit.Sam3Segmenter`, else the shared one for
    (hub id or folder, device, dtype), loading it on first use."""
    from ..engine import Sam3Segmenter

    if isinstance(model, Sam3Segmenter):
        return model
    if hasattr(model, "init_video_session"):
        raise TypeError("a Sam3VideoSegmenter segments videos; give images a Sam3Segmenter or a model name")
    return _shared(Sam3Segmenter, "image", model, device, dtype)


def get_video_segmenter(model: Any, device: str | None = "auto", dtype: Any = "auto") -> Sam3VideoSegmenter:
    """``model`` itself if it is a loaded :class:`~sam3kit.Sam3VideoSegmenter`, else the shared one for
    (hub id or folder, device, dtype); it takes the one slot, so a loaded image model is dropped first."""
    from ..video import Sam3VideoSegmenter

    if isinstance(model, Sam3VideoSegmenter):
        return model
    if hasattr(model, "loaded"):
        raise TypeError(
            "videos are tracked by Sam3VideoSegmenter: pass the model's name or folder, or "
            "Sam3VideoSegmenter.from_pretrained(...), not an image Sam3Segmenter"
        )
    return _shared(Sam3VideoSegmenter, "video", model, device, dtype)


def _shared(cls: Any, kind: str, model: Any, device: str | None, dtype: Any) -> Any:
    key = (kind, model_name(model), str(device or "auto"), str(dtype or "auto"))
    with _lock:
        if key not in _slot:
            _slot.clear()  # free the previous model before loading the next
            _slot[key] = cls.from_pretrained(key[1], device=key[2], dtype=key[3])
        return _slot[key]


def forget_models() -> None:
    """Drop the shared model (its memory is freed once nothing else holds it)."""
    with _lock:
        _slot.clear()
