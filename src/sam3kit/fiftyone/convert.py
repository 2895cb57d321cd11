"""Conversions between FiftyOne labels and sam3kit requests and results, as plain functions.

FiftyOne stores geometry normalised to the image: a ``Detection.bounding_box`` is ``[x, y, w, h]`` with
``(x, y)`` the top-left corner, a ``Keypoint.points`` entry is ``[x, y]``, all in 0..1. sam3kit's requests
are in pixels of the image, (x, y) = (column, row). Every conversion here takes the image's pixel size,
which callers read from the decoded image (sample metadata may be missing or stale).

A ``Detection.mask`` covers its bounding box only (FiftyOne's convention); sam3kit keeps each mask as the
crop of its tight box, so a crop becomes a detection's mask unchanged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..coords import xywh_norm_to_xyxy, xyxy_to_xywh_norm
from ..request import BoxPrompt, PointPrompt, SegmentRequest

log = logging.getLogger(__name__)

#: The class name given to prompted objects whose prompt label has no ``label``.
UNLABELLED = "object"

#: The output types :func:`sam3kit.fiftyone.apply_sam3` can write.
OUTPUTS = ("detections", "segmentation")


@dataclass(frozen=True)
class PromptedObject:
    """Where a prompted object came from: the prompt label's class name and id."""

    label: str | None
    prompt_id: str | None


@dataclass
class ObjectPrompts:
    """The pixel prompts of one image, and what each ``object_id`` stands for."""

    boxes: list[BoxPrompt]
    points: list[PointPrompt]
    objects: dict[int, PromptedObject]

    def __bool__(self) -> bool:
        return bool(self.boxes or self.points)


def prompts_from_label(
    label: Any, width: int, height: int, object_ids: Sequence[int] | None = None
) -> ObjectPrompts:
    """Turn ``fo.Detections`` (one box per object) or ``fo.Keypoints`` (one object per keypoint's points)
    into pixel prompts for an image of ``width`` x ``height`` pixels.

    The n-th detection or keypoint is object ``object_ids[n]`` (default n, from 1): a video gives each its
    track (``index``), so that labels of one object on several frames prompt one object.

    Keypoint points may carry ``sam_labels`` (1 foreground, 0 background), as FiftyOne's own SAM models
    read them; NaN points (FiftyOne's "not visible") are left out. Boxes with no area are left out.
    ``None`` or an empty label gives no prompts.
    """
    import fiftyone.core.labels as fol

    prompts = ObjectPrompts([], [], {})
    if label is None:
        return prompts
    if isinstance(label, fol.Detections):
        ids = object_ids or range(1, len(label.detections) + 1)
        for object_id, det in zip(ids, label.detections):
            box = _box_prompt(det, width, height, object_id)
            if box is not None:
                prompts.boxes.append(box)
                prompts.objects[object_id] = PromptedObject(det.label, det.id)
        return prompts
    if isinstance(label, fol.Keypoints):
        ids = object_ids or range(1, len(label.keypoints) + 1)
        for object_id, kp in zip(ids, label.keypoints):
            points = _point_prompts(kp, width, height, object_id)
            if points:
                prompts.points.extend(points)
                prompts.objects[object_id] = PromptedObject(kp.label, kp.id)
        return prompts
    raise TypeError(
        f"prompt labels must be fo.Detections (boxes) or fo.Keypoints (points), got {type(label).__name__}"
    )


def _box_prompt(det: Any, width: int, height: int, object_id: int) -> BoxPrompt | None:
    if det.bounding_box is None or len(det.bounding_box) != 4:
        log.warning("prompt detection %s has no bounding box; left out", det.id)
        return None
    x0, y0, x1, y1 = (float(v) for v in xywh_norm_to_xyxy(np.asarray(det.bounding_box), width, height))
    if not all(map(math.isfinite, (x0, y0, x1, y1))) or x1 <= x0 or y1 <= y0:
        log.warning("prompt detection %s has an empty box %s; left out", det.id, det.bounding_box)
        return None
    return BoxPrompt(x0, y0, x1, y1, object_id=object_id)


def _point_prompts(kp: Any, width: int, height: int, object_id: int) -> list[PointPrompt]:
    points = kp.points or []
    sam_labels = kp["sam_labels"] if kp.has_field("sam_labels") else None
    if sam_labels is not None and len(sam_labels) != len(points):
        raise ValueError(
            f"keypoint {kp.id} has {len(points)} points but {len(sam_labels)} sam_labels; give one per point"
        )
    out = []
    for i, (x, y) in enumerate(points):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        click = 1 if sam_labels is None else int(sam_labels[i])
        out.append(PointPrompt(float(x) * width, float(y) * height, label=click, object_id=object_id))
    return out


def build_request(
    concepts: list[str],
    thresholds: Mapping[str, Any],
    prompts: ObjectPrompts | None = None,
) -> SegmentRequest | None:
    """The request for one image: its text concepts plus its object prompts; None if there is nothing
    to segment (no concept and no usable prompt)."""
    prompts = prompts or ObjectPrompts([], [], {})
    if not concepts and not prompts:
        return None
    return SegmentRequest(
        prompt=list(concepts) or None,
        box_prompts=list(prompts.boxes),
        point_prompts=list(prompts.points),
        **thresholds,
    )


def empty_result(size: tuple[int, int]) -> Any:
    """A result with no masks for an image of ``size`` = (height, width): nothing was asked of it."""
    from ..result import SegmentationResult

    return SegmentationResult(
        size, np.zeros((0, *size), bool), np.zeros(0), np.zeros((0, 4)), np.zeros(0, np.int64), [], []
    )


def instance_names(result: Any, objects: Mapping[int, PromptedObject] | None = None) -> list[str | None]:
    """The class name of each mask: its concept, or its prompt label's ``label`` for prompted objects."""
    objects = objects or {}
    names: list[str | None] = []
    for source, concept, oid in zip(result.sources, result.concepts, result.object_ids):
        if source == "concept":
            names.append(concept)
        else:
            obj = objects.get(int(oid))
            names.append(obj.label if obj is not None else None)
    return names


def to_detections(
    result: Any, objects: Mapping[int, PromptedObject] | None = None, with_index: bool = False
) -> Any:
    """A :class:`~sam3kit.SegmentationResult` as ``fo.Detections``, one per non-empty mask.

    Each detection's ``bounding_box`` is the mask's tight box (normalised top-left ``[x, y, w, h]``), its
    ``mask`` the boolean crop of that box, its ``confidence`` the mask's score and its ``label`` its
    concept or, for prompted objects, the prompt's label (and ``prompt_id`` the prompt label's id).
    ``with_index`` sets ``index`` to the object id, FiftyOne's field for "the same object on every frame".
    Empty masks are left out, as FiftyOne's SAM models do.
    """
    import fiftyone.core.labels as fol

    objects = objects or {}
    height, width = result.image_size
    names = instance_names(result, objects)
    crops = result.mask_crops
    detections = []
    for i in range(len(result)):
        (y0, x0), crop = crops.offsets[i], crops.crops[i]
        if crop.size == 0 or not crop.any():
            continue
        box = xyxy_to_xywh_norm(np.array([x0, y0, x0 + crop.shape[1], y0 + crop.shape[0]]), width, height)
        extra = {}
        if result.sources[i] == "object" and int(result.object_ids[i]) in objects:
            extra["prompt_id"] = objects[int(result.object_ids[i])].prompt_id
        if with_index:
            extra["index"] = int(result.object_ids[i])
        detections.append(
            fol.Detection(
                label=names[i],
                bounding_box=[float(v) for v in box],
                mask=np.ascontiguousarray(crop, dtype=bool),
                confidence=float(result.scores[i]),
                **extra,
            )
        )
    return fol.Detections(detections=detections)


class ClassValues:
    """Pixel values of a semantic label image: class name -> value 1, 2, ... (0 is background).

    Built from the run's concepts (in order) and from existing ``mask_targets`` when a run resumes, so a
    class keeps its value across runs; prompt labels met along the way get the next free value.
    """

    def __init__(self, concepts: Sequence[str] = (), targets: Mapping[Any, str] | None = None) -> None:
        self._values: dict[str, int] = {}
        for value, name in sorted((int(k), v) for k, v in (targets or {}).items()):
            self._values.setdefault(name, value)
        for name in concepts:
            self.value(name)

    def value(self, name: str | None) -> int:
        name = UNLABELLED if name is None else name
        if name not in self._values:
            self._values[name] = max(self._values.values(), default=0) + 1
        return self._values[name]

    @property
    def targets(self) -> dict[int, str]:
        """FiftyOne ``mask_targets``: pixel value -> class name."""
        return {v: k for k, v in sorted(self._values.items(), key=lambda kv: kv[1])}


def to_segmentation(
    result: Any, classes: ClassValues, objects: Mapping[int, PromptedObject] | None = None
) -> Any:
    """A :class:`~sam3kit.SegmentationResult` as one ``fo.Segmentation``: each pixel holds the class value
    of the mask covering it (see :class:`ClassValues`), 0 where none does; where masks overlap the higher
    score wins. The mask has the image's size, uint8 up to 255 classes, uint16 beyond.
    """
    import fiftyone.core.labels as fol

    values = [classes.value(name) for name in instance_names(result, objects)]
    dtype = np.uint8 if max(values, default=0) <= 255 else np.uint16
    lookup = np.array([0, *values], dtype=dtype)
    return fol.Segmentation(mask=lookup[result.label_image()])
