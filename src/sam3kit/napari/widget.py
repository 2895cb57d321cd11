"""The dock widget: prompts from layers in, SAM 3 off the GUI thread, labels out.

The widget is thin: geometry is in :mod:`.convert`, writing labels in :mod:`.labels`, the work in
:mod:`.jobs` and the shared model in :mod:`.models`. It keeps only what the user is doing right now: the
results shown in the preview layer and not yet accepted, and the running worker.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Labels, Points, Shapes
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from ..model import DEFAULT_MODEL
from ..request import RequestError, SegmentRequest, split_concepts
from ..video import DIRECTIONS
from . import jobs
from .convert import (
    Plane,
    PromptLayerError,
    box_prompts,
    current_plane,
    image_shape,
    loose_points_id,
    object_request,
    plane_prompt_indices,
    plane_reader,
    point_prompts,
    with_explicit_ids,
)
from .labels import (
    LabelsError,
    PlaneResult,
    fits,
    new_labels_for,
    output_name,
    preview_name,
    show_preview,
    split_result,
    write_results,
)
from .layers import (
    BACKGROUND,
    FOREGROUND,
    SHORTCUTS,
    new_boxes_layer,
    new_points_layer,
    set_polarity,
    toggle_polarity,
)
from .propagate import AxisStack, Tracked, axis_choices, frames_visited, leading_axes, write_tracks

if TYPE_CHECKING:
    import napari

    from ..engine import PreparedImage
    from ..result import SegmentationResult

DEVICES = ("auto", "cpu", "cuda", "mps")
TEXT = "text"  # key of a plane's text-concept result among its pending results (objects use their id)


class Sam3Widget(Container):
    """SAM 3 in napari: text concepts, clicks and boxes on the current plane, results as labels."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._worker: Any = None
        self._live_again = False
        self._pending: dict[Plane, dict[str | int, SegmentationResult]] = {}
        self._pending_image: Image | None = None
        self._prepared: tuple[tuple[str, int, Plane], PreparedImage] | None = None
        # napari hands plugins proxies of its layers, a new one per access: layers are told apart by
        # equality or unique_id, never by identity or weak references
        self._outputs: dict[str, Labels] = {}
        self._bound: set[str] = set()
        self._failures: list[str] = []
        self._live_paused = False
        self._build()
        self._connect()
        self.reset_choices()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.model = LineEdit(value=DEFAULT_MODEL, label="model", tooltip="hub id or local folder")
        self.device = ComboBox(value="auto", choices=DEVICES, label="device")
        self.image = ComboBox(choices=self._choices(Image), label="image")
        self.points = ComboBox(choices=self._choices(Points), nullable=True, label="points")
        self.boxes = ComboBox(choices=self._choices(Shapes), nullable=True, label="boxes")
        self.new_points = PushButton(text="New points layer")
        self.new_boxes = PushButton(text="New boxes layer")
        self.text = LineEdit(
            value="", label="text prompt", tooltip="concepts, comma separated: cell, nucleus"
        )
        self.threshold = FloatSpinBox(value=0.5, min=0.0, max=1.0, step=0.05, label="score threshold")
        self.object_id = SpinBox(value=0, min=0, max=2**31 - 1, label="object id", tooltip="0 = automatic")
        self.new_object = PushButton(text=f"New object ({SHORTCUTS['new_object']})")
        self.polarity = ComboBox(
            value=FOREGROUND, choices=[("foreground", FOREGROUND), ("background", BACKGROUND)], label="clicks"
        )
        self.role = ComboBox(value="object", choices=["object", "positive", "negative"], label="boxes are")
        self.live = CheckBox(value=False, text="live: re-segment when a point is added or moved")
        self.all_planes = CheckBox(value=False, text="text prompt on every plane")
        self.replace = CheckBox(value=False, text="replace existing labels")
        self.along = ComboBox(choices=self._axis_choices, label="propagate along")
        self.direction = ComboBox(value="both", choices=list(DIRECTIONS), label="direction")
        self.propagate_button = PushButton(text="Propagate")
        self.segment_button = PushButton(text=f"Segment ({SHORTCUTS['segment']})")
        self.accept_button = PushButton(text=f"Accept ({SHORTCUTS['accept']})")
        self.clear_button = PushButton(text=f"Clear ({SHORTCUTS['clear']})")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.load_button = PushButton(text="Load model")
        self.status = Label(value="")
        self.extend(
            [
                self.model,
                self.device,
                self.load_button,
                self.image,
                self.text,
                self.threshold,
                self.points,
                self.new_points,
                self.boxes,
                self.new_boxes,
                self.object_id,
                self.new_object,
                self.polarity,
                self.role,
                self.live,
                self.all_planes,
                self.replace,
                self.along,
                self.direction,
                self.propagate_button,
                Container(
                    widgets=[self.segment_button, self.accept_button], layout="horizontal", labels=False
                ),
                Container(widgets=[self.clear_button, self.cancel_button], layout="horizontal", labels=False),
                self.status,
            ]
        )

    def _choices(self, kind: type) -> Callable[[Any], list]:
        viewer = weakref.ref(self.viewer)

        def choices(_: Any) -> list:
            v = viewer()
            return [(layer.name, layer) for layer in (v.layers if v else []) if isinstance(layer, kind)]

        return choices

    def _axis_choices(self, *_: Any) -> list[tuple[str, int]]:
        image = getattr(getattr(self, "image", None), "value", None)
        return axis_choices(image, self.viewer.dims.axis_labels)

    def _connect(self) -> None:
        events = self.viewer.layers.events
        for event in (events.inserted, events.removed, events.reordered):
            event.connect(self.reset_choices)
        self.new_points.changed.connect(self.add_points_layer)
        self.new_boxes.changed.connect(self.add_boxes_layer)
        self.new_object.changed.connect(self.next_object)
        self.load_button.changed.connect(self.load_model)
        self.segment_button.changed.connect(self.segment)
        self.propagate_button.changed.connect(self.propagate)
        self.accept_button.changed.connect(self.accept)
        self.clear_button.changed.connect(self.clear)
        self.cancel_button.changed.connect(self.cancel)
        self.points.changed.connect(self._on_points_layer)
        self.boxes.changed.connect(self._on_boxes_layer)
        self.object_id.changed.connect(self._apply_defaults)
        self.polarity.changed.connect(self._apply_defaults)
        self.role.changed.connect(self._apply_defaults)
        self.image.changed.connect(self._on_image)

    def reset_choices(self, *_: Any) -> None:
        super().reset_choices()
        image = self.image.value
        if image is None:
            return
        for combo, kind, suffix in ((self.points, Points, "points"), (self.boxes, Shapes, "boxes")):
            name = f"{image.name} SAM 3 {suffix}"  # the names new_points_layer / new_boxes_layer give
            if combo.value is None and name in self.viewer.layers:
                layer = self.viewer.layers[name]
                if isinstance(layer, kind):
                    combo.value = layer

    # ------------------------------------------------------------------ prompt layers
    def add_points_layer(self, *_: Any) -> Points | None:
        """Add an empty points layer for clicks on the chosen image and select it for prompting."""
        image = self._image_or_error()
        if image is None:
            return None
        layer = self.viewer.add_layer(new_points_layer(image))
        self.points.value = layer
        return layer

    def add_boxes_layer(self, *_: Any) -> Shapes | None:
        """Add an empty shapes layer for object and exemplar boxes on the chosen image."""
        image = self._image_or_error()
        if image is None:
            return None
        layer = self.viewer.add_layer(new_boxes_layer(image))
        self.boxes.value = layer
        return layer

    def _on_points_layer(self, layer: Points | None) -> None:
        if layer is not None:
            self._hook(layer, self._on_points_data)
            self._apply_defaults()

    def _on_boxes_layer(self, layer: Shapes | None) -> None:
        if layer is not None:
            self._hook(layer, self._on_boxes_data)
            self._apply_defaults()

    def _hook(self, layer: Points | Shapes, on_data: Callable[[Any], None]) -> None:
        """Bind the shortcuts on a prompt layer and follow its edits for live mode (once per layer)."""
        if layer.unique_id in self._bound:
            return
        layer.events.data.connect(on_data)
        me = weakref.ref(self)

        def action(name: str) -> Callable[[Any], None]:
            def run(_: Any) -> None:
                widget = me()
                if widget is not None:
                    getattr(widget, name)()

            return run

        keys = {"segment": "segment", "accept": "accept", "clear": "clear", "new_object": "next_object"}
        if isinstance(layer, Points):
            keys["toggle_polarity"] = "toggle_polarity"
        for shortcut, method in keys.items():
            layer.bind_key(SHORTCUTS[shortcut], action(method), overwrite=True)
        self._bound.add(layer.unique_id)

    def _apply_defaults(self, *_: Any) -> None:
        """New points and boxes take the object id, polarity and box role shown in the widget."""
        if self.points.value is not None:
            self.points.value.feature_defaults["object_id"] = self.object_id.value
            set_polarity(self.points.value, self.polarity.value)
        if self.boxes.value is not None:
            self.boxes.value.feature_defaults["object_id"] = self.object_id.value
            self.boxes.value.feature_defaults["role"] = self.role.value

    def next_object(self, *_: Any) -> int:
        """Start a new object: the object id becomes one above every id in the prompt layers."""
        used = [0, self.object_id.value]
        for layer in (self.points.value, self.boxes.value):
            if layer is not None and "object_id" in layer.features and len(layer.features):
                used.append(int(np.nanmax(layer.features["object_id"])))
        self.object_id.value = max(used) + 1
        return self.object_id.value

    def toggle_polarity(self, *_: Any) -> None:
        """Flip the selected points between foreground and background, or else the polarity of new clicks."""
        layer = self.points.value
        if layer is None:
            return
        selected = bool(layer.selected_data)
        new = toggle_polarity(layer)
        if not selected:
            self.polarity.value = new
        elif self.live.value:
            self._run_live(None)

    # ------------------------------------------------------------------ gathering prompts
    def _image_or_error(self) -> Image | None:
        image = self.image.value
        if image is None:
            show_error("SAM 3: open an image and choose it in the widget's 'image' list first")
        return image

    def _check_view(self, image: Image) -> None:
        dims = self.viewer.dims
        world_axes = {dims.ndim - 2, dims.ndim - 1}
        if dims.ndisplay != 2 or set(dims.displayed) != world_axes:
            raise PromptLayerError(
                f"SAM 3 segments the last two axes (Y, X) of image {image.name!r} in a 2D view: switch to 2D "
                "and restore the axis order (View > Axes) so that Y and X are displayed"
            )

    def _plane_request(self, image: Image, plane: Plane, with_objects: bool = True) -> SegmentRequest:
        """The request the prompt layers and text make on ``plane`` (loose points and boxes without an
        object id not yet numbered: see :func:`with_explicit_ids`)."""
        point = self.viewer.dims.point
        points = point_prompts(self.points.value, image, plane, point) if self.points.value else []
        boxes = box_prompts(self.boxes.value, image, plane, point) if self.boxes.value else []
        if not with_objects:
            points, boxes = [], [b for b in boxes if b.exemplar]
        concepts = split_concepts(self.text.value)
        if not concepts and not points and not boxes:
            where = f" on plane {plane}" if plane else ""
            raise PromptLayerError(
                "SAM 3 has nothing to segment: type a text prompt, or add points or boxes"
                f"{where} of image {image.name!r} (use 'New points layer' / 'New boxes layer')"
            )
        unnamed = [b for b in boxes if b.exemplar and b.concept is None]
        if len(concepts) > 1 and unnamed:
            raise PromptLayerError(
                f"the text prompt holds several concepts ({', '.join(concepts)}): set the 'concept' feature of "
                "each positive/negative box (layer controls > features table) to the one it illustrates"
            )
        return SegmentRequest(
            prompt=concepts or None,
            point_prompts=points,
            box_prompts=boxes,
            score_threshold=float(self.threshold.value),
        )

    def _pixels(self, image: Image, plane: Plane) -> PreparedImage | Callable[[], np.ndarray]:
        """The prepared image from the last run on this plane (skips reading and normalising it again),
        else a reader of the plane's pixels for the worker to call."""
        key = (image.unique_id, id(image.data), plane)
        if self._prepared is not None and self._prepared[0] == key:
            return self._prepared[1]
        return plane_reader(image, plane)

    # ------------------------------------------------------------------ running
    @property
    def busy(self) -> bool:
        return self._worker is not None

    def _start(self, job: Callable[..., Any], args: tuple, total: int, desc: str, **callbacks: Any) -> None:
        worker = thread_worker(job, progress={"total": total, "desc": desc})(*args)
        for signal, slot in callbacks.items():
            getattr(worker, signal).connect(slot)
        worker.yielded.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.segment_button.enabled = self.propagate_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = desc
        worker.start()

    def _settings(self) -> tuple[str, str]:
        return (self.model.value.strip() or DEFAULT_MODEL, self.device.value)

    def load_model(self, *_: Any) -> None:
        """Load the chosen model in the background (it is shared by every SAM 3 widget)."""
        if self._refuse_if_busy():
            return
        self._start(jobs.load_model, self._settings(), 1, "SAM 3: loading model", returned=self._on_loaded)

    def segment(self, *_: Any) -> None:
        """Segment the current plane from the text and prompt layers (or every plane for text only)."""
        if self._refuse_if_busy():
            return
        image = self._image_or_error()
        if image is None:
            return
        try:
            self._check_view(image)
            plane = current_plane(image, self.viewer.dims.point)
            if self.all_planes.value and len(image_shape(image)) > 2:
                return self._segment_all_planes(image, plane)
            request = with_explicit_ids(self._plane_request(image, plane))
        except (PromptLayerError, RequestError) as exc:
            show_error(str(exc))
            return
        self._adopt(image)
        args = (*self._settings(), self._pixels(image, plane), plane, request)
        callback = partial(self._on_segmented, image)
        self._start(jobs.segment_plane, args, 3, "SAM 3: segmenting", returned=callback)

    def _segment_all_planes(self, image: Image, plane: Plane) -> None:
        """The text concepts (and exemplar boxes of this plane) on every plane, the backbone batched."""
        if not split_concepts(self.text.value):
            raise PromptLayerError(
                "'text prompt on every plane' needs a text prompt: type one, or untick it to segment the "
                "points and boxes of this plane"
            )
        request = self._plane_request(image, plane, with_objects=False)
        if self._plane_request(image, plane).objects():
            show_info("SAM 3: points and object boxes are left out when the text runs on every plane")
        self._adopt(image)
        data = image.data[0] if image.multiscale else image.data
        stack = jobs.PlaneStack.all_planes(data, image_shape(image)[:-2])
        self._failures = []
        args = (*self._settings(), stack, request)
        callback = partial(self._on_plane, image)
        self._start(jobs.segment_planes, args, len(stack) + 1, "SAM 3: every plane", yielded=callback)

    def _run_live(self, object_ids: Collection[int] | None) -> None:
        """Re-segment the objects whose ``object_id`` feature is in ``object_ids`` (0: the loose points;
        None: every object) on the current plane, from the cached image embedding."""
        if self.busy:
            self._live_again = True
            return
        image = self.image.value
        if image is None or self.points.value is None:
            return
        try:
            self._check_view(image)
            plane = current_plane(image, self.viewer.dims.point)
            raw = self._plane_request(image, plane)
            request = with_explicit_ids(raw)
        except (PromptLayerError, RequestError) as exc:
            show_error(str(exc))
            return
        self._adopt(image)
        if object_ids is not None:
            object_ids = {loose_points_id(raw) if i == 0 else i for i in object_ids}
        present = {o.object_id for o in request.objects()}
        pending = self._pending.setdefault(plane, {})
        for key in [k for k in pending if k != TEXT and k not in present]:
            del pending[key]  # objects whose prompts are gone
        # objects not in the preview yet (new, or renumbered because the ids given changed) run too
        ids = present if object_ids is None else (set(object_ids) | (present - set(pending))) & present
        sub = object_request(request, ids)
        if sub is None:
            self._refresh_preview([plane])
            return
        args = (*self._settings(), self._pixels(image, plane), plane, sub)
        callback = partial(self._on_segmented_objects, image)
        self._start(jobs.segment_plane, args, 3, "SAM 3: live", returned=callback)

    def propagate(self, *_: Any) -> None:
        """Track the current plane's prompts through the stack along the chosen axis and direction with SAM
        3's video model; the labels go into ``<image> SAM 3`` when every frame is done (one undo step)."""
        if self._refuse_if_busy():
            return
        image = self._image_or_error()
        if image is None:
            return
        direction = self.direction.value
        try:
            lead = leading_axes(image)
            self._check_view(image)
            plane = current_plane(image, self.viewer.dims.point)
            axis = int(self.along.value or 0)
            if not 0 <= axis < lead:
                raise PromptLayerError(f"image {image.name!r} has no leading axis {axis}: choose another")
            request = with_explicit_ids(self._plane_request(image, plane))
        except (PromptLayerError, RequestError) as exc:
            show_error(str(exc))
            return
        data = image.data[0] if image.multiscale else image.data
        stack = AxisStack(data, plane, axis)
        total = 2 + len(frames_visited(len(stack), plane[axis], direction))
        args = (*self._settings(), stack, request, direction)
        callback = partial(self._on_propagated, image, request)
        self._start(jobs.propagate_stack, args, total, "SAM 3: propagating", returned=callback)

    def _refuse_if_busy(self) -> bool:
        if self.busy:
            show_info("SAM 3 is still working: wait for it, or press Cancel")
        return self.busy

    def cancel(self, *_: Any) -> None:
        """Stop the running job at its next step; its results are discarded."""
        if self._worker is not None:
            self._worker.quit()
            self.status.value = "cancelling…"

    # ------------------------------------------------------------------ results (GUI thread)
    def _on_progress(self, value: Any) -> None:
        if isinstance(value, str):
            self.status.value = f"SAM 3: {value}"

    def _on_finished(self) -> None:
        worker, self._worker = self._worker, None
        self.segment_button.enabled = self.propagate_button.enabled = True
        self.cancel_button.enabled = False
        if worker is not None and worker.abort_requested:
            self.status.value = "cancelled"
        if self._failures:
            more = f" (and {len(self._failures) - 1} more failed)" if len(self._failures) > 1 else ""
            show_error(self._failures[0] + more)
            self._failures = []
        if self._live_again:
            self._live_again = False
            self._run_live(None)

    def _on_loaded(self, outcome: jobs.Failure | None) -> None:
        if isinstance(outcome, jobs.Failure):
            return self._fail(outcome)
        self.status.value = f"model {self._settings()[0]} loaded"

    def _fail(self, failure: jobs.Failure) -> None:
        self.status.value = "failed"
        show_error(failure.message)

    def _on_segmented(self, image: Image, outcome: jobs.Segmented | jobs.Failure) -> None:
        if isinstance(outcome, jobs.Failure):
            return self._fail(outcome)
        item = outcome.item
        self._adopt(image)
        self._remember(outcome)
        self._pending[item.plane] = split_result(item.result, TEXT)
        self._refresh_preview([item.plane])
        self.status.value = f"{len(item.result)} masks: Accept ({SHORTCUTS['accept']}) to keep them"

    def _on_segmented_objects(self, image: Image, outcome: jobs.Segmented | jobs.Failure) -> None:
        if isinstance(outcome, jobs.Failure):
            return self._fail(outcome)
        item = outcome.item
        self._adopt(image)
        self._remember(outcome)
        self._pending.setdefault(item.plane, {}).update(split_result(item.result, TEXT))
        self._refresh_preview([item.plane])
        self.status.value = "live: preview updated"

    def _on_propagated(self, image: Image, request: SegmentRequest, outcome: Tracked | jobs.Failure) -> None:
        if isinstance(outcome, jobs.Failure):
            return self._fail(outcome)
        if image not in self.viewer.layers:
            return
        try:
            labels = self._layer_for(image, output_name(image))
            mapping = write_tracks(labels, outcome, replace=self.replace.value, request=request)
        except LabelsError as exc:
            show_error(str(exc))
            return
        self.status.value = (
            f"propagated {len(mapping)} objects through {len(outcome.frames)} planes into {labels.name!r}"
        )

    def _on_plane(self, image: Image, outcome: PlaneResult | jobs.Failure | None) -> None:
        if isinstance(outcome, jobs.Failure):
            self._failures.append(outcome.message)
        elif isinstance(outcome, PlaneResult):
            self._adopt(image)
            self._pending.setdefault(outcome.plane, {})[TEXT] = outcome.result
            self._refresh_preview([outcome.plane])
            self.status.value = f"plane {outcome.plane}: {len(outcome.result)} masks"

    def _remember(self, outcome: jobs.Segmented) -> None:
        image = self._pending_image
        if image is not None:
            self._prepared = ((image.unique_id, id(image.data), outcome.item.plane), outcome.prepared)

    def _adopt(self, image: Image) -> None:
        """Make ``image`` the one the pending results belong to (dropping another image's)."""
        if self._pending_image is None or self._pending_image != image:
            self._pending.clear()
            self._pending_image = image

    def _on_image(self, image: Image | None) -> None:
        if image is not None and image == self._pending_image:
            return  # the same layer offered again (layers were added or renamed)
        self._discard_pending()
        self._pending_image = None
        self.reset_choices()

    # ------------------------------------------------------------------ layers out
    def pending_items(self) -> list[PlaneResult]:
        """The results shown in the preview and not yet accepted, text first, then objects by id."""
        items = []
        for plane, parts in self._pending.items():
            keys = sorted(parts, key=lambda k: (k != TEXT, k if isinstance(k, int) else 0))
            items += [PlaneResult(plane, parts[k]) for k in keys if len(parts[k])]
        return items

    def _refresh_preview(self, planes: list[Plane]) -> None:
        image = self._pending_image
        if image is None or image not in self.viewer.layers:
            return
        preview = self._layer_for(image, preview_name(image), preview=True)
        show_preview(preview, [i for i in self.pending_items() if i.plane in planes], planes)

    def _layer_for(self, image: Image, name: str, preview: bool = False) -> Labels:
        """The Labels layer ``name`` covering ``image``; added (without stealing the selection) if missing."""
        known = None if preview else self._outputs.get(image.unique_id)
        if known is not None and known in self.viewer.layers and fits(known, image):
            return known
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            if isinstance(layer, Labels) and fits(layer, image):
                if not preview:
                    self._outputs[image.unique_id] = layer
                return layer
        options = {"opacity": 0.6, "blending": "translucent"} if preview else {}
        layer = new_labels_for(image, name, **options)
        layers, active = self.viewer.layers, self.viewer.layers.selection.active
        output = self._outputs.get(image.unique_id) if preview else None
        anchor = output if output is not None and output in layers else image
        # labels sit just above their image (the preview above the accepted labels), under the prompts
        layers.insert(layers.index(anchor) + 1 if anchor in layers else len(layers), layer)
        if active is not None:
            layers.selection.active = active  # keep the prompt layer's shortcuts working
        if not preview:
            self._outputs[image.unique_id] = layer
        return layer

    def output_layer(self, image: Image | None = None) -> Labels | None:
        """The Labels layer accepted results of ``image`` (default: the chosen one) go into, if any yet."""
        image = image or self.image.value
        return None if image is None else self._outputs.get(image.unique_id)

    def accept(self, *_: Any) -> list[int]:
        """Write the previewed masks into ``<image> SAM 3`` with fresh ids (one undo step); clear their prompts."""
        image, items = self._pending_image, self.pending_items()
        if image is None or not items:
            show_info("SAM 3: nothing to accept yet: press Segment first")
            return []
        try:
            labels = self._layer_for(image, output_name(image))
            ids = write_results(labels, items, replace=self.replace.value)
        except LabelsError as exc:
            show_error(str(exc))
            return []
        planes = list(self._pending)
        self._remove_prompts(image, planes)
        self._discard_pending()
        self.object_id.value = 0
        self.status.value = f"accepted {len(ids)} labels into {labels.name!r}"
        return ids

    def clear(self, *_: Any) -> None:
        """Discard the preview and the prompts on the current plane (the text prompt stays)."""
        image = self._pending_image or self.image.value
        if image is not None:
            try:
                plane = current_plane(image, self.viewer.dims.point)
            except PromptLayerError:
                plane = None
            if plane is not None:
                self._remove_prompts(image, [plane])
        self._discard_pending()
        self.object_id.value = 0
        self.status.value = "cleared"

    def _discard_pending(self) -> None:
        planes = list(self._pending)
        self._pending.clear()
        image = self._pending_image
        if image is not None and planes and preview_name(image) in self.viewer.layers:
            self._refresh_preview(planes)

    def _remove_prompts(self, image: Image, planes: list[Plane]) -> None:
        point = self.viewer.dims.point
        for layer in (self.points.value, self.boxes.value):
            if layer is None or not len(layer.data):
                continue
            doomed = set()
            for plane in planes:
                doomed |= set(plane_prompt_indices(layer, image, plane, point))
            if doomed:
                with _live_paused(self):
                    layer.selected_data = doomed
                    layer.remove_selected()

    # ------------------------------------------------------------------ live mode
    def _on_points_data(self, event: Any) -> None:
        if not self.live.value or self._live_paused or event.source != self.points.value:
            return
        action = str(getattr(event, "action", "")).lower()
        if action in ("added", "changed"):
            layer = self.points.value
            indices = [int(i) for i in getattr(event, "data_indices", ()) or ()]
            self._run_live(_object_ids_of(layer, indices) if layer is not None else None)
        elif action == "removed":
            self._run_live(None)

    def _on_boxes_data(self, event: Any) -> None:
        action = str(getattr(event, "action", "")).lower()
        if not self.live.value or self._live_paused or event.source != self.boxes.value:
            return
        if action in ("added", "changed", "removed"):
            self._run_live(None)


def _object_ids_of(points: Points, indices: list[int]) -> set[int] | None:
    """The ``object_id`` features of points ``indices`` (0: loose points); None (every object) if unknown."""
    if not indices:
        return None
    if "object_id" not in points.features:
        return {0}
    values = {int(points.features["object_id"].iloc[i]) for i in indices if i < len(points.features)}
    return values or None


class _live_paused:
    """Within it, prompt edits the widget makes itself do not trigger live re-segmentation."""

    def __init__(self, widget: Sam3Widget) -> None:
        self.widget = widget

    def __enter__(self) -> None:
        self.widget._live_paused = True

    def __exit__(self, *_: Any) -> None:
        self.widget._live_paused = False
