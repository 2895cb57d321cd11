"""The prompt/request model shared by every front end.

It mirrors the hosted SAM 3 image API (``prompt``, ``point_prompts``, ``box_prompts``, ``include_scores``,
``include_boxes``, ``return_multiple_masks``, ``max_masks``, ``apply_mask``, ``output_format``,
``sync_mode``) so that a JSON body written for the hosted service runs locally unchanged.
All coordinates in a request are **pixels of the original image, (x, y) = (column, row)**, counted as SAM
counts them: the centre of the top-left pixel is (0, 0).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

OUTPUT_FORMATS = ("png", "jpeg", "webp")


class RequestError(ValueError):
    """A request field holds a value sam3kit cannot use; the message names the field."""


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{name} must be a number of pixels, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise RequestError(f"{name} must be finite, got {value!r}")
    return float(value)


def _object_id(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be an integer or null, got {value!r}")
    return value


@dataclass(frozen=True)
class PointPrompt:
    """A click at pixel ``(x, y)``; ``label`` 1 marks the object, 0 the background."""

    x: float
    y: float
    label: int = 1
    object_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _number(self.x, "point_prompts[].x"))
        object.__setattr__(self, "y", _number(self.y, "point_prompts[].y"))
        if self.label not in (0, 1) or isinstance(self.label, bool):
            raise RequestError(
                f"point_prompts[].label must be 1 (foreground) or 0 (background), got {self.label!r}"
            )
        object.__setattr__(self, "object_id", _object_id(self.object_id, "point_prompts[].object_id"))


@dataclass(frozen=True)
class BoxPrompt:
    """A box in pixels, corners ``(x_min, y_min)`` and ``(x_max, y_max)``.

    By default a box outlines one object (the tracker segments it). With ``exemplar=True`` it is instead
    an example of the text concept: ``label`` 1 is a positive exemplar ("more like this"), 0 a negative one
    ("not this"); ``concept`` names the phrase it refines when a request asks for several.
    """

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    object_id: int | None = None
    exemplar: bool = False
    label: int = 1
    concept: str | None = None

    def __post_init__(self) -> None:
        for name in ("x_min", "y_min", "x_max", "y_max"):
            object.__setattr__(self, name, _number(getattr(self, name), f"box_prompts[].{name}"))
        if self.x_max <= self.x_min or self.y_max <= self.y_min:
            raise RequestError(
                "box_prompts[] needs x_max > x_min and y_max > y_min (pixels, corners top-left then "
                f"bottom-right), got ({self.x_min}, {self.y_min}, {self.x_max}, {self.y_max})"
            )
        object.__setattr__(self, "object_id", _object_id(self.object_id, "box_prompts[].object_id"))
        if self.label not in (0, 1) or isinstance(self.label, bool):
            raise RequestError(
                f"box_prompts[].label must be 1 (positive) or 0 (negative), got {self.label!r}"
            )
        if not self.exemplar and self.label != 1:
            raise RequestError("box_prompts[].label 0 (negative) is only meaningful with exemplar=true")

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x_min, self.y_min, self.x_max, self.y_max)


@dataclass(frozen=True)
class ObjectPrompt:
    """The points and boxes that together describe one object, as the tracker receives them."""

    object_id: int
    points: tuple[PointPrompt, ...] = ()
    boxes: tuple[BoxPrompt, ...] = ()


def split_concepts(prompt: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"cell, nucleus"`` or ``["cell", "nucleus"]`` -> ``["cell", "nucleus"]`` (order kept, duplicates dropped)."""
    if prompt is None:
        return []
    parts = prompt.split(",") if isinstance(prompt, str) else list(prompt)
    concepts: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise RequestError(f"prompt must be text or a list of text, got an item {part!r}")
        phrase = " ".join(part.split())
        if phrase and phrase not in concepts:
            concepts.append(phrase)
    return concepts


def _coerce(items: Any, cls: type, name: str) -> tuple:
    if items is None:
        return ()
    if not isinstance(items, (list, tuple)):
        raise RequestError(f"{name} must be a list, got {type(items).__name__}")
    allowed = {f.name for f in fields(cls)}
    out = []
    for i, item in enumerate(items):
        if isinstance(item, cls):
            out.append(item)
            continue
        if not isinstance(item, dict):
            raise RequestError(f"{name}[{i}] must be an object with named fields, got {item!r}")
        unknown = set(item) - allowed
        if unknown:
            raise RequestError(
                f"{name}[{i}] has unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        try:
            out.append(cls(**item))
        except TypeError as exc:
            raise RequestError(f"{name}[{i}]: {exc}") from None
        except RequestError as exc:
            raise RequestError(f"{name}[{i}]: {exc}") from None
    return tuple(out)


@dataclass
class SegmentRequest:
    """What to segment and what to return, in the hosted SAM 3 API's vocabulary.

    ``prompt`` is a noun phrase ("cell nucleus"), several comma-separated phrases, or a list: every
    instance of every concept is segmented. ``point_prompts`` and ``box_prompts`` sharing an
    ``object_id`` describe one object; each box without one is an object of its own; points without an
    ``object_id`` together describe one object. A request may hold concepts and objects at once.
    """

    prompt: str | list[str] | None = None
    point_prompts: list[PointPrompt] = field(default_factory=list)
    box_prompts: list[BoxPrompt] = field(default_factory=list)
    include_scores: bool = True
    include_boxes: bool = True
    return_multiple_masks: bool = False
    max_masks: int | None = None
    apply_mask: bool = True
    output_format: Literal["png", "jpeg", "webp"] = "png"
    sync_mode: bool = False
    score_threshold: float = 0.5
    mask_threshold: float = 0.5
    text_prompt: str | list[str] | None = None
    image_url: str | None = None

    def __post_init__(self) -> None:
        if self.text_prompt is not None:
            warnings.warn("text_prompt is deprecated; use prompt", DeprecationWarning, stacklevel=3)
            if self.prompt is not None and split_concepts(self.prompt) != split_concepts(self.text_prompt):
                raise RequestError("give either prompt or its deprecated alias text_prompt, not both")
            self.prompt, self.text_prompt = self.text_prompt, None
        if self.prompt is not None and not isinstance(self.prompt, (str, list, tuple)):
            raise RequestError(f"prompt must be text or a list of text, got {type(self.prompt).__name__}")
        split_concepts(self.prompt)  # validates list items
        self.point_prompts = list(_coerce(self.point_prompts, PointPrompt, "point_prompts"))
        self.box_prompts = list(_coerce(self.box_prompts, BoxPrompt, "box_prompts"))
        for name in ("include_scores", "include_boxes", "return_multiple_masks", "apply_mask", "sync_mode"):
            if not isinstance(getattr(self, name), bool):
                raise RequestError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.max_masks is not None and (
            isinstance(self.max_masks, bool) or not isinstance(self.max_masks, int) or self.max_masks < 1
        ):
            raise RequestError(f"max_masks must be a positive integer or null, got {self.max_masks!r}")
        fmt = str(self.output_format).lower()
        fmt = "jpeg" if fmt == "jpg" else fmt
        if fmt not in OUTPUT_FORMATS:
            raise RequestError(
                f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {self.output_format!r}"
            )
        self.output_format = fmt  # type: ignore[assignment]
        for name in ("score_threshold", "mask_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise RequestError(f"{name} must be a number between 0 and 1, got {value!r}")
        concepts = self.concepts
        for box in self.exemplar_boxes:
            if box.concept is not None and box.concept not in concepts:
                raise RequestError(
                    f"box_prompts[].concept {box.concept!r} is not one of the prompt's concepts {concepts}"
                )
            if box.concept is None and len(concepts) > 1:
                raise RequestError(
                    "an exemplar box must name its concept (box_prompts[].concept) when the prompt holds "
                    f"several concepts {concepts}"
                )
        if not concepts and not self.point_prompts and not self.box_prompts:
            raise RequestError(
                "the request has nothing to segment: give a prompt, point_prompts or box_prompts"
            )

    @property
    def concepts(self) -> list[str]:
        """The text concepts, in order; exemplar boxes with no text make the visual concept ``"visual"``."""
        concepts = split_concepts(self.prompt)
        if not concepts and self.exemplar_boxes:
            concepts = ["visual"]
        return concepts

    @property
    def exemplar_boxes(self) -> list[BoxPrompt]:
        return [b for b in self.box_prompts if b.exemplar]

    def exemplars_for(self, concept: str) -> list[BoxPrompt]:
        """The exemplar boxes that refine ``concept``."""
        concepts = self.concepts
        return [
            b
            for b in self.exemplar_boxes
            if b.concept == concept or (b.concept is None and len(concepts) == 1)
        ]

    def objects(self) -> list[ObjectPrompt]:
        """Group point and (non-exemplar) box prompts into objects, in order of first appearance.

        Prompts sharing an ``object_id`` form one object; each box without an id is its own object;
        points without an id form one object together. Objects without an id get fresh ids above
        every id the user gave.
        """
        boxes = [b for b in self.box_prompts if not b.exemplar]
        given = [p.object_id for p in (*self.point_prompts, *boxes) if p.object_id is not None]
        next_id = max(given, default=0) + 1
        grouped: dict[int, tuple[list[PointPrompt], list[BoxPrompt]]] = {}
        loose_points_id: int | None = None
        for point in self.point_prompts:
            oid = point.object_id
            if oid is None:
                if loose_points_id is None:
                    loose_points_id, next_id = next_id, next_id + 1
                oid = loose_points_id
            grouped.setdefault(oid, ([], []))[0].append(point)
        for box in boxes:
            oid = box.object_id
            if oid is None:
                oid, next_id = next_id, next_id + 1
            grouped.setdefault(oid, ([], []))[1].append(box)
        return [ObjectPrompt(oid, tuple(pts), tuple(bxs)) for oid, (pts, bxs) in grouped.items()]

    def check_inside(self, width: int, height: int) -> None:
        """Refuse prompts that fall outside a ``width`` x ``height`` image.

        Pixel centres are whole numbers, so the image spans -0.5 .. width - 0.5 in x (and likewise in y).
        """
        right, bottom = width - 0.5, height - 0.5
        for i, p in enumerate(self.point_prompts):
            if not (-0.5 <= p.x <= right and -0.5 <= p.y <= bottom):
                raise RequestError(
                    f"point_prompts[{i}] at (x={p.x:g}, y={p.y:g}) lies outside the {width}x{height} image"
                )
        for i, b in enumerate(self.box_prompts):
            if b.x_max <= -0.5 or b.y_max <= -0.5 or b.x_min >= right or b.y_min >= bottom:
                raise RequestError(f"box_prompts[{i}] {b.xyxy} lies outside the {width}x{height} image")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict in the hosted API's field names (used for provenance)."""
        data = asdict(self)
        data.pop("text_prompt")
        if data["image_url"] is None:
            data.pop("image_url")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentRequest:
        """Build a request from a hosted-API JSON body; unknown fields are refused by name."""
        if not isinstance(data, dict):
            raise RequestError(f"a request must be a JSON object, got {type(data).__name__}")
        allowed = {f.name for f in fields(cls)}
        unknown = set(data) - allowed
        if unknown:
            raise RequestError(f"unknown request field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        return cls(**data)
