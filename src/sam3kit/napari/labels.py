"""SAM 3 results -> napari Labels layers: fresh ids, one undo step, a features table and provenance.

The output layer has the image's shape (without RGB channels) and transform, so label pixel (…, r, c)
lies on image pixel (…, r, c). New masks get ids above every id the layer already uses; existing labels
are kept unless the caller asks to replace them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..result import SegmentationResult
from .convert import Plane, image_shape, layer_transform

if TYPE_CHECKING:
    from napari.layers import Image, Labels

#: Key of sam3kit's entry in ``Labels.metadata``.
METADATA_KEY = "sam3kit"
FEATURE_COLUMNS = (
    "index",
    "score",
    "source",
    "concept",
    "object_id",
    "x_min",
    "y_min",
    "x_max",
    "y_max",
    "plane",
)


class LabelsError(ValueError):
    """Results cannot be written into the chosen Labels layer; the message says why."""


@dataclass
class PlaneResult:
    """The result for one Y-X ``plane`` of an image (indices of its leading axes; ``()`` for 2D)."""

    plane: Plane
    result: SegmentationResult


def output_name(image: Image) -> str:
    return f"{image.name} SAM 3"


def preview_name(image: Image) -> str:
    return f"{image.name} SAM 3 preview"


def new_labels_for(image: Image, name: str, dtype: Any = np.uint32, **kwargs: Any) -> Labels:
    """An empty Labels layer covering ``image`` pixel for pixel (same shape and world transform)."""
    from napari.layers import Labels

    return Labels(
        np.zeros(image_shape(image), dtype=dtype),
        name=name,
        **layer_transform(image),
        **kwargs,
    )


def fits(labels: Labels, image: Image) -> bool:
    """Whether ``labels`` covers ``image`` pixel for pixel, so that results can be written into it."""
    if labels.multiscale or tuple(labels.data.shape) != image_shape(image):
        return False
    return all(
        np.allclose(np.asarray(getattr(labels, name)), np.asarray(getattr(image, name)))
        for name in ("scale", "translate", "rotate", "shear")
    ) and np.allclose(labels.affine.affine_matrix, image.affine.affine_matrix)


def next_label(labels: Labels) -> int:
    """The first id above every id in the layer's pixels and in its features table."""
    used = int(np.max(labels.data)) if labels.data.size else 0
    if "index" in labels.features and len(labels.features):
        used = max(used, int(np.nanmax(labels.features["index"])))
    return used + 1


def by_plane(items: Sequence[PlaneResult]) -> dict[Plane, SegmentationResult]:
    """Results of the same plane merged into one (masks in order), planes in order of first appearance."""
    grouped: dict[Plane, list[SegmentationResult]] = {}
    for item in items:
        grouped.setdefault(tuple(item.plane), []).append(item.result)
    return {plane: SegmentationResult.concat(parts, parts[0].image_size) for plane, parts in grouped.items()}


def split_result(result: SegmentationResult, concepts_key: str) -> dict[str | int, SegmentationResult]:
    """Split a result into its concept masks (under ``concepts_key``) and each object's mask (under its id),
    so that one object can be re-segmented without touching the rest."""
    groups: dict[str | int, list[int]] = {}
    for i, source in enumerate(result.sources):
        key = concepts_key if source == "concept" else int(result.object_ids[i])
        groups.setdefault(key, []).append(i)
    parts = {}
    for key, index in groups.items():
        part = result.take(index)
        part.provenance = result.provenance
        parts[key] = part
    return parts


def write_results(labels: Labels, items: Sequence[PlaneResult], *, replace: bool = False) -> list[int]:
    """Paint ``items`` into ``labels`` with fresh ids, as one undoable step; return the ids used, in order.

    Where masks overlap the higher score wins. Without ``replace`` masks only fill unlabelled (0) pixels,
    so a user's labels survive, and a mask hidden entirely by them gets no id. Each id gets a row in
    ``labels.features`` (score, source: the concept phrase or ``object <id>``, concept, object_id, box in
    plane pixels x_min..y_max, plane) and each item's request goes into ``labels.metadata["sam3kit"]``.
    """
    next_id = next_label(labels)
    writes: list[tuple[tuple[np.ndarray, ...], np.ndarray]] = []
    rows: list[dict[str, Any]] = []
    for plane, result in by_plane(items).items():
        numbers = result.label_image(np.uint32)  # mask i is i + 1
        target = numbers > 0
        if not replace:
            target &= np.asarray(labels.data[plane]) == 0
        visible = np.unique(numbers[target])
        ids = next_id + np.arange(len(visible), dtype=np.int64)
        next_id += len(visible)
        lookup = np.zeros(len(result) + 1, dtype=np.int64)
        lookup[visible] = ids
        rr, cc = np.nonzero(target)
        indices = tuple(np.full(rr.size, p, dtype=np.intp) for p in plane) + (rr, cc)
        writes.append((indices, lookup[numbers[rr, cc]]))
        rows += [_feature_row(result, plane, int(n) - 1, int(i)) for n, i in zip(visible, ids)]
    _check_capacity(labels, next_id - 1)
    write_undoable(labels, writes)
    _append_features(labels, rows)
    _append_runs(labels, items)
    return [row["index"] for row in rows]


def write_undoable(labels: Labels, writes: list[tuple[tuple[np.ndarray, ...], np.ndarray]]) -> None:
    """Set ``labels.data[indices] = values`` for every write as one undo step, then redraw once."""
    with labels.block_history():
        for indices, values in writes:
            if indices[0].size:
                labels.data_setitem(indices, values.astype(labels.data.dtype), refresh=False)
    labels.refresh()


def _check_capacity(labels: Labels, largest: int) -> None:
    dtype = labels.data.dtype
    if dtype.kind in "ui" and largest > np.iinfo(dtype).max:
        raise LabelsError(
            f"layer {labels.name!r} stores {dtype} labels, too small for id {largest}; "
            "convert it to uint32 or let SAM 3 write into a new layer"
        )


def _feature_row(result: SegmentationResult, plane: Plane, i: int, label: int) -> dict[str, Any]:
    concept = result.concepts[i]
    is_object = result.sources[i] == "object"
    x_min, y_min, x_max, y_max = (float(v) for v in result.boxes[i])
    return {
        "index": label,
        "score": float(result.scores[i]),
        "source": f"object {int(result.object_ids[i])}" if is_object else concept,
        "concept": concept or "",
        "object_id": int(result.object_ids[i]) if is_object else 0,
        "x_min": x_min,
        "y_min": y_min,
        "x_max": x_max,
        "y_max": y_max,
        "plane": ",".join(str(p) for p in plane),
    }


def _append_features(labels: Labels, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    new = pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))
    old = labels.features
    if len(old) and "index" not in old:
        old = old.assign(index=np.arange(len(old)))  # napari's convention without an index column
    labels.features = pd.concat([old, new], ignore_index=True) if len(old) else new


def _append_runs(labels: Labels, items: Sequence[PlaneResult]) -> None:
    entry = labels.metadata.setdefault(METADATA_KEY, {"runs": []})
    for item in items:
        provenance = item.result.provenance
        if provenance is None:
            continue
        entry["model"] = provenance.model
        entry.setdefault("runs", []).append({"plane": list(item.plane), **provenance.to_dict()})


def show_preview(preview: Labels, items: Sequence[PlaneResult], planes: Sequence[Plane] = ()) -> None:
    """Show ``items`` in ``preview``, numbered 1.. per plane; ``planes`` are cleared first."""
    merged = by_plane(items)
    for plane in {*map(tuple, planes), *merged}:
        preview.data[plane] = 0
    for plane, result in merged.items():
        preview.data[plane] = result.label_image(np.uint32).astype(preview.data.dtype)
    preview.refresh()
