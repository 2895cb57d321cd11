"""The prompt layers the widget creates: colours mapped from features, and the polarity toggle.

Points carry ``label`` (1 foreground, 0 background) and ``object_id`` (0 = automatic); their face colour
is mapped from ``label``. Shapes carry ``role`` (object, positive, negative), ``object_id`` and
``concept``; their edge colour is mapped from ``role``. New points and boxes take the values in the
layer's ``feature_defaults``, which the widget sets.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .convert import ROLES, image_shape, layer_transform

if TYPE_CHECKING:
    from napari.layers import Image, Points, Shapes

FOREGROUND, BACKGROUND = 1, 0
POINT_COLOURS = {FOREGROUND: "#39ff14", BACKGROUND: "#ff2a2a"}
BOX_COLOURS = {"object": "#ffd400", "positive": "#39ff14", "negative": "#ff2a2a"}

#: Keyboard shortcuts bound on the prompt layers (documented in docs/napari.md).
SHORTCUTS = {
    "segment": "Shift-S",
    "accept": "Shift-C",
    "clear": "Shift-X",
    "toggle_polarity": "T",
    "new_object": "N",
}


def _marker_size(image: Image) -> float:
    """A point size (data pixels) that is easy to see and to grab: 2% of the image's short side."""
    return float(max(3.0, 0.02 * min(image_shape(image)[-2:])))


def new_points_layer(image: Image, name: str | None = None) -> Points:
    """An empty Points layer for object clicks on ``image`` (same axes and transform as the image)."""
    features = pd.DataFrame({"label": pd.Series([], dtype=int), "object_id": pd.Series([], dtype=int)})
    with warnings.catch_warnings():  # napari says the 0/1 labels look categorical: they are, on purpose
        warnings.filterwarnings("ignore", message="Feature 'label' looks like categorical")
        layer = _points(image, name, features)
    layer.feature_defaults["label"] = FOREGROUND
    layer.feature_defaults["object_id"] = 0
    layer.mode = "add"
    return layer


def _points(image: Image, name: str | None, features: pd.DataFrame) -> Points:
    from napari.layers import Points

    return Points(
        np.empty((0, image.ndim)),
        ndim=image.ndim,
        name=name or f"{image.name} SAM 3 points",
        features=features,
        face_color="label",
        face_color_cycle=POINT_COLOURS,
        border_color="white",
        border_width=0.1,
        size=_marker_size(image),
        **layer_transform(image),
    )


def new_boxes_layer(image: Image, name: str | None = None) -> Shapes:
    """An empty Shapes layer for object and exemplar boxes on ``image``, in rectangle mode."""
    from napari.layers import Shapes

    features = pd.DataFrame(
        {
            "role": pd.Series([], dtype=object),
            "object_id": pd.Series([], dtype=int),
            "concept": pd.Series([], dtype=object),
        }
    )
    layer = Shapes(
        ndim=image.ndim,
        name=name or f"{image.name} SAM 3 boxes",
        features=features,
        edge_color="role",
        edge_color_cycle=list(BOX_COLOURS.values()),
        face_color="transparent",
        edge_width=max(1.0, _marker_size(image) / 4),
        **layer_transform(image),
    )
    from napari.utils.colormaps.standardize_color import transform_color

    # napari assigns cycle colours in order of appearance; fix them per role instead
    layer.edge_color_cycle_map = {role: transform_color(BOX_COLOURS[role])[0] for role in ROLES}
    layer.feature_defaults["role"] = "object"
    layer.feature_defaults["object_id"] = 0
    layer.feature_defaults["concept"] = ""
    layer.mode = "add_rectangle"
    return layer


def toggle_polarity(points: Points) -> int:
    """Flip foreground/background of the selected points, or else of the points added next; return the new one.

    Without a selection only the default for new points flips, so a click never changes an old prompt.
    """
    selected = sorted(points.selected_data)
    if selected and "label" in points.features:
        labels = points.features["label"].to_numpy().copy()
        labels[selected] = 1 - labels[selected]
        points.features = points.features.assign(label=labels)
        points.refresh_colors(update_color_mapping=False)
        return int(labels[selected[-1]])
    new = 1 - int(points.feature_defaults["label"].iloc[0])
    points.feature_defaults["label"] = new
    return new


def set_polarity(points: Points, label: int) -> None:
    """Make new points foreground (1) or background (0)."""
    points.feature_defaults["label"] = int(label)
