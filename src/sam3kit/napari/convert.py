"""napari prompt layers -> SAM 3 prompts, as plain functions of layers (no viewer needed).

A Points or Shapes layer keeps its vertices in its own data coordinates. They are taken to world
coordinates with the layer's transform (scale, translate, rotate, shear, affine) and back into the image
layer's data coordinates with the image's inverse transform, so prompts land on the right pixel however the
two layers are placed. napari puts the centre of pixel (row r, column c) at data coordinate (r, c), and so
do SAM and sam3kit's prompts (docs/coordinates.md): that centre is SAM's (x, y) = (c, r), and the image
spans -0.5 .. width - 0.5 in x.

Only the image's last two axes (Y, X) are segmented; the leading axes (Z, T, ...) pick a plane, and only
prompts on the current plane count.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..request import BoxPrompt, PointPrompt, SegmentRequest

if TYPE_CHECKING:
    from napari.layers import Image, Layer, Points, Shapes

#: Pixel centres sit on whole numbers, so the image's outer edge is half a pixel beyond them.
HALF_PIXEL = 0.5
#: Box roles a Shapes layer may give in its ``role`` feature.
ROLES = ("object", "positive", "negative")

Plane = tuple[int, ...]


class PromptLayerError(ValueError):
    """A prompt layer holds something that cannot become a SAM prompt; the message says which and why."""


def image_shape(image: Image) -> tuple[int, ...]:
    """The image layer's data shape (full-resolution level), without the RGB(A) channel axis."""
    data = image.data[0] if image.multiscale else image.data
    shape = tuple(int(n) for n in data.shape)
    return shape[:-1] if image.rgb else shape


def plane_size(image: Image) -> tuple[int, int]:
    """(height, width) in pixels of one Y-X plane of ``image``."""
    shape = image_shape(image)
    if len(shape) < 2:
        raise PromptLayerError(f"image {image.name!r} has {len(shape)} axis; SAM 3 needs at least Y and X")
    return shape[-2], shape[-1]


def layer_transform(image: Image) -> dict[str, Any]:
    """Keyword arguments that give a new layer ``image``'s world transform, so their data coordinates agree."""
    return {
        "scale": image.scale,
        "translate": image.translate,
        "rotate": image.rotate,
        "shear": image.shear,
        "affine": image.affine,
    }


def current_plane(image: Image, world_point: Sequence[float]) -> Plane:
    """Indices of the image's leading (non Y-X) axes at ``world_point`` (the viewer's ``dims.point``).

    napari shows the plane nearest to the position, so coordinates are rounded as napari rounds them.
    """
    shape = image_shape(image)
    plane_size(image)
    data = np.asarray(image.world_to_data(np.asarray(world_point, dtype=float)), dtype=float)
    lead = np.round(data[:-2]).astype(int)
    for axis, (index, length) in enumerate(zip(lead, shape[:-2])):
        if not 0 <= index < length:
            raise PromptLayerError(
                f"the viewer's current position lies outside image {image.name!r} along axis {axis} "
                f"(plane {index} of {length}); move the slider onto the image"
            )
    return tuple(int(i) for i in lead)


def plane_reader(image: Image, plane: Plane) -> Callable[[], np.ndarray]:
    """A function reading the pixels of ``plane``, (H, W) or (H, W, C), as numpy: called in a worker, it
    keeps reading lazy (dask, zarr) data off the GUI thread."""
    data = image.data[0] if image.multiscale else image.data
    index = tuple(plane)
    return lambda: np.asarray(data[index])


def to_image_coords(
    layer: Layer, coords: np.ndarray, image: Image, world_point: Sequence[float] | None = None
) -> np.ndarray:
    """Map (N, layer.ndim) data coordinates of ``layer`` to (N, image.ndim) data coordinates of ``image``.

    World axes the layer lacks (a 2D Points layer over a 3D image) are taken from ``world_point``, the
    viewer's current position, so such a layer's prompts apply to whatever plane is shown.
    """
    coords = np.asarray(coords, dtype=float).reshape(-1, layer.ndim)
    point = np.asarray(world_point if world_point is not None else (), dtype=float)
    ndim = max(layer.ndim, image.ndim, point.size)
    base = np.zeros(ndim)
    if point.size:
        base[-point.size :] = point
    out = np.empty((len(coords), image.ndim))
    for i, row in enumerate(coords):
        world = base.copy()
        world[-layer.ndim :] = layer.data_to_world(row)
        out[i] = np.asarray(image.world_to_data(world), dtype=float)[-image.ndim :]
    return out


def to_pixels(image_coords: np.ndarray) -> np.ndarray:
    """(N, ..., row, col) image data coordinates -> (N, 2) SAM pixels (x, y) = (col, row)."""
    coords = np.asarray(image_coords, dtype=float)
    return coords[:, [-1, -2]]


def _on_plane(image_coords: np.ndarray, plane: Plane) -> np.ndarray:
    lead = np.round(np.asarray(image_coords, dtype=float)[:, :-2]).astype(int)
    return np.all(lead == np.asarray(plane, dtype=int), axis=1)


def plane_prompt_indices(
    layer: Points | Shapes, image: Image, plane: Plane, world_point: Sequence[float] | None = None
) -> list[int]:
    """Indices of the points (or shapes, by their centre) of ``layer`` that lie on ``plane`` of ``image``."""
    if isinstance(layer.data, np.ndarray):  # points: one row per point
        coords = to_image_coords(layer, layer.data, image, world_point)
    else:  # shapes: a vertex array per shape
        centres = [np.asarray(v, dtype=float).mean(axis=0) for v in layer.data]
        coords = to_image_coords(layer, np.asarray(centres).reshape(-1, layer.ndim), image, world_point)
    return [int(i) for i in np.flatnonzero(_on_plane(coords, plane))]


def _feature(layer: Layer, name: str, default: Any) -> list[Any]:
    features = layer.features
    n = len(layer.data)
    if name not in features or len(features) != n:
        return [default] * n
    return [default if _missing(v) else v for v in features[name]]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _object_id(value: Any, what: str) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PromptLayerError(
            f"{what} has object_id {value!r}; use a whole number (0 = automatic)"
        ) from None
    if number < 0:
        raise PromptLayerError(f"{what} has object_id {number}; use 0 (automatic) or a positive number")
    return number or None


def point_prompts(
    points: Points, image: Image, plane: Plane = (), world_point: Sequence[float] | None = None
) -> list[PointPrompt]:
    """The points of ``points`` on ``plane`` of ``image`` as SAM clicks (pixels, x = column, y = row).

    The ``label`` feature gives the polarity (1 foreground, 0 background; 1 when absent) and
    ``object_id`` the object (0 or absent: the loose points, which together make one object).
    Points outside the image are refused, naming the point.
    """
    if len(points.data) == 0:
        return []
    height, width = plane_size(image)
    coords = to_image_coords(points, points.data, image, world_point)
    xy = to_pixels(coords)
    labels = _feature(points, "label", 1)
    object_ids = _feature(points, "object_id", 0)
    prompts = []
    for i in np.flatnonzero(_on_plane(coords, plane)):
        what = f"point {i} of layer {points.name!r}"
        x, y = (float(v) for v in xy[i])
        if not (-HALF_PIXEL <= x <= width - HALF_PIXEL and -HALF_PIXEL <= y <= height - HALF_PIXEL):
            raise PromptLayerError(
                f"{what} lies outside image {image.name!r}: it falls at pixel (x={x:.1f}, y={y:.1f}) of a "
                f"{width} x {height} image; move or delete it"
            )
        label = labels[i]
        if label not in (0, 1):
            raise PromptLayerError(f"{what} has label {label!r}; use 1 (foreground) or 0 (background)")
        prompts.append(PointPrompt(x, y, int(label), _object_id(object_ids[i], what)))
    return prompts


def box_prompts(
    shapes: Shapes, image: Image, plane: Plane = (), world_point: Sequence[float] | None = None
) -> list[BoxPrompt]:
    """The rectangles of ``shapes`` on ``plane`` of ``image`` as SAM boxes (pixel corners).

    The ``role`` feature says what a box is: ``object`` (outline of one object, grouped with points by
    ``object_id``), ``positive`` or ``negative`` (an exemplar of the text concept, named by the ``concept``
    feature when the prompt holds several). A rotated rectangle gives its axis-aligned bounding box; boxes
    reaching past the image edge are clipped, boxes wholly outside it refused.
    """
    if len(shapes.data) == 0:
        return []
    height, width = plane_size(image)
    roles = _feature(shapes, "role", "object")
    object_ids = _feature(shapes, "object_id", 0)
    concepts = _feature(shapes, "concept", "")
    prompts = []
    for i, (vertices, kind) in enumerate(zip(shapes.data, shapes.shape_type)):
        what = f"shape {i} of layer {shapes.name!r}"
        if kind != "rectangle":
            raise PromptLayerError(
                f"{what} is a {kind}; only rectangles are box prompts: delete or redraw it"
            )
        coords = to_image_coords(shapes, vertices, image, world_point)
        if not _on_plane(coords.mean(axis=0, keepdims=True), plane)[0]:
            continue
        xy = to_pixels(coords)
        (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
        low, right, bottom = -HALF_PIXEL, width - HALF_PIXEL, height - HALF_PIXEL
        if x1 <= low or y1 <= low or x0 >= right or y0 >= bottom:
            raise PromptLayerError(
                f"{what} lies outside image {image.name!r} (pixels x {x0:.1f}..{x1:.1f}, y {y0:.1f}..{y1:.1f} "
                f"of a {width} x {height} image); move or delete it"
            )
        x0, x1 = max(x0, low), min(x1, right)
        y0, y1 = max(y0, low), min(y1, bottom)
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            raise PromptLayerError(f"{what} has no area inside image {image.name!r}; redraw it")
        role = str(roles[i])
        if role not in ROLES:
            raise PromptLayerError(f"{what} has role {role!r}; use one of {', '.join(ROLES)}")
        if role == "object":
            box = BoxPrompt(x0, y0, x1, y1, object_id=_object_id(object_ids[i], what))
        else:
            concept = str(concepts[i]).strip() or None
            box = BoxPrompt(x0, y0, x1, y1, exemplar=True, label=int(role == "positive"), concept=concept)
        prompts.append(box)
    return prompts


def with_explicit_ids(request: SegmentRequest) -> SegmentRequest:
    """The same request with every object's id written out, as :meth:`SegmentRequest.objects` assigns them.

    Loose points and boxes without an id get their ids here once, so a later request for one object
    (live mode) addresses the same object as the full run did.
    """
    points, boxes = [], [b for b in request.box_prompts if b.exemplar]
    for obj in request.objects():
        points += [replace(p, object_id=obj.object_id) for p in obj.points]
        boxes += [replace(b, object_id=obj.object_id) for b in obj.boxes]
    return replace(request, point_prompts=points, box_prompts=boxes)


def loose_points_id(request: SegmentRequest) -> int | None:
    """The object id :meth:`SegmentRequest.objects` gives the points that name no object, if any."""
    for obj in request.objects():
        if any(p.object_id is None for p in obj.points):
            return obj.object_id
    return None


def object_request(request: SegmentRequest, object_ids: Collection[int]) -> SegmentRequest | None:
    """A request for some objects of ``request`` (ids explicit): their points and boxes, no text or
    exemplars; None when none of them has prompts left."""
    points = [p for p in request.point_prompts if p.object_id in object_ids]
    boxes = [b for b in request.box_prompts if not b.exemplar and b.object_id in object_ids]
    if not points and not boxes:
        return None
    return replace(request, prompt=None, point_prompts=points, box_prompts=boxes)
