"""The work the widget runs off the GUI thread, as plain generators (no Qt, testable alone).

Each job yields once per step, so napari's ``thread_worker`` can show progress and stop it between steps,
and returns (or yields) its results for the GUI thread to put into layers. Errors are caught here and
handed over as :class:`Failure` values carrying the core's message: raised in the worker, napari would
show them as a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from ..engine import PreparedImage
from ..errors import ModelLoadError
from ..frames import FrameSourceError
from ..images import ImageError
from ..request import RequestError, SegmentRequest
from .convert import Plane, PromptLayerError
from .labels import LabelsError, PlaneResult
from .models import get_segmenter, get_video_segmenter
from .propagate import AxisStack, Tracked

log = logging.getLogger(__name__)

#: Errors whose message already tells the user what to do.
EXPECTED_ERRORS = (RequestError, ModelLoadError, ImageError, PromptLayerError, LabelsError, FrameSourceError)


@dataclass
class Failure:
    """An error caught in a job; ``message`` is what the user is shown."""

    message: str
    error: BaseException


def failure(exc: BaseException, where: str = "") -> Failure:
    """Wrap ``exc`` for the GUI; unexpected errors are logged with their traceback for bug reports."""
    if isinstance(exc, EXPECTED_ERRORS):
        message = str(exc)
    else:
        log.error("SAM 3 failed", exc_info=exc)
        message = f"SAM 3 failed ({type(exc).__name__}): {exc}"
    return Failure(f"{where}{message}", exc)


@dataclass
class Segmented:
    """One plane's result and the prepared image (kept so the next prompt on it skips normalisation)."""

    item: PlaneResult
    prepared: PreparedImage


def load_model(model: str, device: str) -> Generator[str, None, Failure | None]:
    """Load the shared model (one progress step)."""
    try:
        yield f"loading {model}"
        get_segmenter(model, device)
    except Exception as exc:
        return failure(exc)
    return None


def segment_plane(
    model: str,
    device: str,
    pixels: np.ndarray | PreparedImage | Callable[[], np.ndarray],
    plane: Plane,
    request: SegmentRequest,
) -> Generator[str, None, Segmented | Failure]:
    """Segment one plane (three progress steps: model, image embedding, prompts); ``pixels`` may be a
    function that reads them."""
    try:
        yield f"loading {model}"
        segmenter = get_segmenter(model, device)
        yield "encoding the image"
        prepared = segmenter.set_image(
            pixels() if callable(pixels) else pixels
        )  # cached: a second prompt on this plane skips the backbone
        yield "decoding the prompts"
        return Segmented(PlaneResult(plane, segmenter.segment(prepared, request)), prepared)
    except Exception as exc:
        return failure(exc)


def segment_planes(
    model: str,
    device: str,
    stack: PlaneStack,
    request: SegmentRequest,
    batch_size: int = 4,
) -> Generator[PlaneResult | Failure | None, None, None]:
    """Segment every plane of ``stack`` with one request: yields None once the model is ready, then one
    :class:`PlaneResult` (or :class:`Failure`) per plane, in order. The backbone runs in batches."""
    try:
        segmenter = get_segmenter(model, device)
    except Exception as exc:
        yield failure(exc)
        return
    yield None
    outcomes = segmenter.iter_batch(stack, request, batch_size=batch_size, errors="return")
    for plane, outcome in zip(stack.planes, outcomes):
        if isinstance(outcome, Exception):
            yield failure(outcome, where=f"plane {plane}: ")
        else:
            yield PlaneResult(plane, outcome)


def propagate_stack(
    model: str,
    device: str,
    stack: AxisStack,
    request: SegmentRequest,
    direction: str,
) -> Generator[str, None, Tracked | Failure]:
    """Prompt frame ``stack.plane[stack.axis]`` of ``stack`` with ``request`` and track it in ``direction``
    with the shared video model: yields once when the model is ready, once for the prompt and once per frame
    visited, then returns every visited frame (or the :class:`Failure`)."""
    start = stack.plane[stack.axis]
    try:
        yield f"loading {model} (video)"
        video = get_video_segmenter(model, device)
        yield f"prompting frame {start}"
        session = video.init_video_session(stack)
        try:
            session.add_prompt(start, request)
            frames = []
            for frame in session.propagate(direction, start_frame_idx=start):
                frames.append(frame)
                yield f"frame {frame.frame_idx}: {len(frame.result)} objects"
        finally:
            session.close()
    except Exception as exc:
        return failure(exc)
    object_ids = [o.object_id for o in request.objects() if o.object_id is not None]
    return Tracked(stack.plane, stack.axis, direction, frames, object_ids)


class PlaneStack(Sequence):
    """The Y-X planes of an nD array, read lazily one by one (dask and zarr data stay on disk)."""

    def __init__(self, data: Any, planes: Sequence[Plane]) -> None:
        self.data = data
        self.planes = list(planes)

    @classmethod
    def all_planes(cls, data: Any, lead_shape: Sequence[int]) -> PlaneStack:
        return cls(data, [tuple(int(i) for i in p) for p in np.ndindex(*lead_shape)])

    def __len__(self) -> int:
        return len(self.planes)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, index: slice) -> list[np.ndarray]: ...
    def __getitem__(self, index: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(index, slice):
            return [np.asarray(self.data[p]) for p in self.planes[index]]
        return np.asarray(self.data[self.planes[index]])
