"""Propagation through a stack's Z or T axis: frames along one axis in, tracked labels into their planes out.

Plain functions of arrays and layers (no viewer, no Qt): :class:`AxisStack` shows the planes of an nD
image along one leading axis as the frames of a video (the other leading axes stay at the current plane),
and :func:`write_tracks` paints the tracked objects into the matching planes of a Labels layer, one id per
object on every plane, as one undo step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..video import DIRECTIONS, FrameResult, label_image_by_id
from .convert import Plane, PromptLayerError, image_shape
from .labels import METADATA_KEY, _append_features, _check_capacity, _feature_row, next_label, write_undoable

if TYPE_CHECKING:
    from napari.layers import Image, Labels

    from ..request import SegmentRequest


class AxisStack:
    """The Y-X planes of ``data`` along leading ``axis``, the other leading axes fixed at ``plane``: an
    array-like ``(frames, H, W[, C])`` read one frame at a time (dask and zarr data stay on disk)."""

    def __init__(self, data: Any, plane: Plane, axis: int) -> None:
        self.data = data
        self.plane = tuple(int(i) for i in plane)
        self.axis = int(axis)
        lead = len(self.plane)
        self.shape = (int(data.shape[axis]), *(int(n) for n in data.shape[lead:]))
        self.dtype = data.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.data[frame_plane(self.plane, self.axis, int(index))])


@dataclass
class Tracked:
    """The frames a propagation visited, in visiting order, along ``axis`` through ``plane`` (the prompt
    plane); ``object_ids`` are the point/box objects prompted (concept instances come on their own)."""

    plane: Plane
    axis: int
    direction: str
    frames: list[FrameResult]
    object_ids: list[int]


def frame_plane(plane: Plane, axis: int, index: int) -> Plane:
    """``plane`` with its index along ``axis`` replaced by ``index``."""
    out = list(plane)
    out[axis] = int(index)
    return tuple(out)


def leading_axes(image: Image) -> int:
    """How many axes of ``image`` lie before Y and X; refuses images that have none."""
    lead = len(image_shape(image)) - 2
    if lead < 1:
        raise PromptLayerError(
            f"image {image.name!r} is a single 2D plane: propagation needs a stack (Z or T, then Y, X); "
            "use Segment for one plane"
        )
    return lead


def frames_visited(count: int, start: int, direction: str) -> list[int]:
    """The frame indices a propagation of ``count`` frames from ``start`` visits, in order (as the core)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    forward, backward = list(range(start, count)), list(range(start, -1, -1))
    return {"forward": forward, "backward": backward, "both": forward + backward[1:]}[direction]


def track_key(plane: Plane, axis: int) -> str:
    """Names the line of planes a propagation runs through: ``plane`` with ``:`` along ``axis`` ("1,:")."""
    return ",".join(":" if i == axis else str(p) for i, p in enumerate(plane))


def write_tracks(
    labels: Labels, tracked: Tracked, *, replace: bool = False, request: SegmentRequest | None = None
) -> dict[int, int]:
    """Paint ``tracked`` into the planes of ``labels`` it visited (one undo step); return object id -> label id.

    Each object keeps one label id on every plane. A point/box object propagated before along the same line
    of planes keeps the id it got then, and what that run wrote for it on the planes visited now is cleared
    first (a correction replaces it); other objects, and every concept instance, get ids above every id in
    the layer. Without ``replace`` masks only fill unlabelled (0) pixels.
    """
    entry = labels.metadata.setdefault(METADATA_KEY, {"runs": []})
    key = track_key(tracked.plane, tracked.axis)
    previous = {int(k): int(v) for k, v in entry.setdefault("tracks", {}).get(key, {}).items()}
    objects = set(tracked.object_ids)
    seen: dict[int, tuple[FrameResult, int]] = {}  # object id -> first frame showing it, its index there
    for frame in tracked.frames:
        for i, oid in enumerate(frame.result.object_ids):
            seen.setdefault(int(oid), (frame, i))
    mapping: dict[int, int] = {o: previous[o] for o in sorted(objects) if o in previous}
    next_id = next_label(labels)
    rows = []
    for oid in sorted(seen):
        if oid not in mapping:
            mapping[oid] = next_id
            frame, i = seen[oid]
            plane = frame_plane(tracked.plane, tracked.axis, frame.frame_idx)
            rows.append(_feature_row(frame.result, plane, i, next_id))
            next_id += 1
    if mapping:
        _check_capacity(labels, max(mapping.values()))
    lookup = np.zeros(max([0, *seen]) + 1, dtype=np.int64)
    for oid in seen:
        lookup[oid] = mapping[oid]
    stale = np.array([previous[o] for o in objects if o in previous], dtype=np.int64)
    write_undoable(labels, [_plane_write(labels, tracked, f, lookup, stale, replace) for f in tracked.frames])
    _append_features(labels, rows)
    entry["tracks"][key] = {str(o): mapping[o] for o in sorted(objects & set(mapping))}
    _append_run(labels, tracked, request)
    return mapping


def _plane_write(
    labels: Labels, tracked: Tracked, frame: FrameResult, lookup: np.ndarray, stale: np.ndarray, replace: bool
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    plane = frame_plane(tracked.plane, tracked.axis, frame.frame_idx)
    current = np.asarray(labels.data[plane])
    out = current.copy()
    if stale.size:
        out[np.isin(out, stale)] = 0  # what the last run wrote for the re-tracked objects
    new = lookup[label_image_by_id(frame.result, np.uint32)] if len(frame.result) else np.zeros_like(out)
    target = new > 0
    if not replace:
        target &= out == 0
    out[target] = new[target]
    rr, cc = np.nonzero(out != current)
    indices = tuple(np.full(rr.size, p, dtype=np.intp) for p in plane) + (rr, cc)
    return indices, out[rr, cc]


def _append_run(labels: Labels, tracked: Tracked, request: SegmentRequest | None) -> None:
    entry = labels.metadata[METADATA_KEY]
    provenance = next((f.result.provenance for f in tracked.frames if f.result.provenance), None)
    run: dict[str, Any] = {
        "plane": list(tracked.plane),
        "axis": tracked.axis,
        "direction": tracked.direction,
        "frames": [f.frame_idx for f in tracked.frames],
    }
    if request is not None:
        run["request"] = request.to_dict()
    if provenance is not None:
        entry["model"] = provenance.model
        run["video"] = provenance.to_dict()
    entry.setdefault("runs", []).append(run)


def axis_choices(image: Image | None, labels: Sequence[str]) -> list[tuple[str, int]]:
    """(name, axis) of each leading axis of ``image``, named by the viewer's axis ``labels``."""
    if image is None:
        return [("axis 0", 0)]
    lead = max(len(image_shape(image)) - 2, 1)
    names = list(labels)[-len(image_shape(image)) :] if labels else []
    return [(f"axis {a} ({names[a]})" if a < len(names) else f"axis {a}", a) for a in range(lead)]
