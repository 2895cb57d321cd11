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

_lock = threading.Lock()
_slot: dict[tuple[str, str, str], Sam3Segmenter] = {}


def model_name(model: Any) -> str:
    """The name a run records for ``model``: a loaded segmenter's id, a folder as loading resolves it,
    or the hub id as given."""
    loaded = getattr(model, "loaded", None)
    if loaded is not None:
        return str(loaded.model_id)
    name = str(model)
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        return str(path)
    return name


def get_segmenter(model: Any, device: str | None = "auto", dtype: Any = "auto") -> Sam3Segmenter:
    """``model`` itself if it is a loaded :class:`~sam3kit.Sam3Segmenter`, else the shared one for
    (hub id or folder, device, dtype), loading it on first use."""
    from ..engine import Sam3Segmenter

    if isinstance(model, Sam3Segmenter):
        return model
    key = (model_name(model), str(device or "auto"), str(dtype or "auto"))
    with _lock:
        if key not in _slot:
            _slot.clear()  # free the previous model before loading the next
            _slot[key] = Sam3Segmenter.from_pretrained(key[0], device=key[1], dtype=key[2])
        return _slot[key]


def forget_models() -> None:
    """Drop the shared model (its memory is freed once nothing else holds it)."""
    with _lock:
        _slot.clear()
