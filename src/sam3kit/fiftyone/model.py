"""SAM 3 as a FiftyOne :class:`~fiftyone.core.models.Model`, for ``dataset.apply_model(model, label_field)``.

>>> model = Sam3Model(prompt="person, car")
>>> dataset.apply_model(model, label_field="sam3", skip_failures=False)
>>> dataset.apply_model(Sam3Model(), label_field="sam3_boxes", prompt_field="ground_truth")

``prompt_field`` may be given to the model or, as for FiftyOne's own SAM models, to ``apply_model``.
``apply_model`` writes every sample of the view it is given (it has no resume and no overwrite
protection); :func:`sam3kit.fiftyone.apply_sam3` is the streaming, resumable path. The model records each
``apply_model`` run on the dataset like ``apply_sam3`` does (field ``info`` and description, a custom run).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import eta.core.config as etac
import fiftyone.core.models as fom

from ..model import DEFAULT_MODEL
from ..request import split_concepts
from .convert import (
    OUTPUTS,
    ClassValues,
    build_request,
    empty_result,
    prompts_from_label,
    to_detections,
    to_segmentation,
)
from .loading import get_segmenter, model_name
from .provenance import RunRecord, RunSettings, describe_label_field

log = logging.getLogger(__name__)


class Sam3ModelConfig(etac.Config):
    """Settings of a :class:`Sam3Model`; the names and meanings of :func:`~sam3kit.fiftyone.apply_sam3`'s.

    ``model`` (hub id or folder), ``device``, ``dtype``, ``prompt`` (text or list of text),
    ``prompt_field``, ``output`` (``"detections"`` or ``"segmentation"``), ``score_threshold``,
    ``mask_threshold``, ``max_masks``.
    """

    def __init__(self, d: dict[str, Any]) -> None:
        self.model = self.parse_string(d, "model", default=DEFAULT_MODEL)
        self.device = self.parse_string(d, "device", default="auto")
        self.dtype = self.parse_string(d, "dtype", default="auto")
        self.prompt = self.parse_raw(d, "prompt", default=None)
        self.prompt_field = self.parse_string(d, "prompt_field", default=None)
        self.output = self.parse_categorical(d, "output", list(OUTPUTS), default="detections")
        self.score_threshold = self.parse_number(d, "score_threshold", default=0.5)
        self.mask_threshold = self.parse_number(d, "mask_threshold", default=0.5)
        self.max_masks = self.parse_int(d, "max_masks", default=None)


class Sam3Model(fom.Model, fom.SamplesMixin):
    """SAM 3 for ``apply_model``: text concepts, and/or object prompts read from each sample's
    ``prompt_field`` (``Detections`` boxes or ``Keypoints`` points), converted to pixels of that image.

    Build it from a :class:`Sam3ModelConfig` (as ``fiftyone.core.models.load_model`` does), a dict, or
    keyword arguments; ``model`` may also be an already loaded :class:`~sam3kit.Sam3Segmenter`.
    """

    def __init__(self, config: Sam3ModelConfig | dict[str, Any] | None = None, **options: Any) -> None:
        fom.SamplesMixin.__init__(self)
        segmenter = None
        if not isinstance(config, Sam3ModelConfig):
            options = {**(config or {}), **options}
            if hasattr(options.get("model"), "loaded"):
                segmenter = options["model"]
                options["model"] = model_name(segmenter)
            config = Sam3ModelConfig(options)
        self.config = config
        self._segmenter = segmenter
        self.concepts = split_concepts(config.prompt)
        self.needs_fields = {}
        self._classes = ClassValues(self.concepts) if config.output == "segmentation" else None
        self._run: RunRecord | None = None
        self._target: tuple[Any, str] | None = None
        self._counts = {"done": 0, "failed": 0, "instances": 0}

    # ------------------------------------------------------------------ FiftyOne's Model interface
    @property
    def media_type(self) -> str:
        return "image"

    @property
    def ragged_batches(self) -> bool:
        return False  # predict_all takes images of any sizes, so apply_model may batch them

    @property
    def transforms(self) -> None:
        return None

    @property
    def preprocess(self) -> bool:
        return False

    @preprocess.setter
    def preprocess(self, value: bool) -> None:
        pass

    @property
    def needs_fields(self) -> dict[str, str]:
        return self._fields

    @needs_fields.setter
    def needs_fields(self, fields: dict[str, str] | None) -> None:
        # apply_model replaces this dict with its own keyword arguments; keep the configured prompt field
        fields = dict(fields or {})
        if self.config.prompt_field and "prompt_field" not in fields:
            fields["prompt_field"] = self.config.prompt_field
        self._fields = fields

    @property
    def prompt_field(self) -> str | None:
        return self.needs_fields.get("prompt_field")

    @property
    def segmenter(self) -> Any:
        """The loaded :class:`~sam3kit.Sam3Segmenter` (loaded on first use, shared)."""
        if self._segmenter is None:
            self._segmenter = get_segmenter(self.config.model, self.config.device, self.config.dtype)
        return self._segmenter

    @property
    def settings(self) -> RunSettings:
        c = self.config
        return RunSettings.for_run(
            self._segmenter or c.model, self.concepts, self.prompt_field, c.output, c.score_threshold,
            c.mask_threshold, c.max_masks,
        )  # fmt: skip

    def predict(self, arg: Any, sample: Any = None) -> Any:
        """Segment one image (an array as ``apply_model`` reads it, a path or a PIL image); the object
        prompts come from ``sample[prompt_field]``, in normalised coordinates of this image."""
        from ..engine import prepare_image

        if self.prompt_field and sample is None:
            raise ValueError(f"this model reads prompts from {self.prompt_field!r}: pass the sample too")
        try:
            prepared = prepare_image(arg)
            height, width = prepared.size
            label = sample[self.prompt_field] if self.prompt_field else None
            prompts = prompts_from_label(label, width, height)
            request = build_request(self.concepts, self.settings.thresholds, prompts)
            if request is None and not self.prompt_field:
                raise ValueError("nothing to segment: give the model a prompt, or apply_model a prompt_field")
            result = self.segmenter.segment(prepared, request) if request else empty_result(prepared.size)
        except Exception:
            self._counts["failed"] += 1
            raise
        return self._to_label(result, prompts.objects)

    def predict_all(self, args: Any, samples: Any = None) -> list[Any]:
        """Segment a batch: with text prompts only, one batched backbone pass; else image by image."""
        if self.prompt_field or not self.concepts:
            samples = samples if samples is not None else [None] * len(args)
            return [self.predict(arg, sample=s) for arg, s in zip(args, samples)]
        request = build_request(self.concepts, self.settings.thresholds)
        try:
            results = list(
                self.segmenter.iter_batch(list(args), request, batch_size=len(args), errors="raise")
            )
        except Exception:
            self._counts["failed"] += len(args)
            raise
        return [self._to_label(r, {}) for r in results]

    def _to_label(self, result: Any, objects: dict) -> Any:
        label = (
            to_segmentation(result, self._classes, objects)
            if self._classes is not None
            else to_detections(result, objects)
        )
        self._counts["done"] += 1
        self._counts["instances"] += (
            len(label.detections)
            if self._classes is None
            else sum(1 for c in result.mask_crops.crops if c.size)
        )
        return label

    # ------------------------------------------------------------------ provenance of apply_model runs
    def __enter__(self) -> Sam3Model:
        samples, label_field = _apply_model_call()
        if samples is None or samples.media_type != "image" or not isinstance(label_field, str):
            return self
        self._target = (samples, label_field)
        self._counts = {"done": 0, "failed": 0, "instances": 0}
        try:
            self._run = RunRecord(
                samples,
                label_field,
                self.settings,
                "apply_model",
                pending=len(samples),
                device=self.segmenter.device,
                dtype=str(self.segmenter.dtype).replace("torch.", ""),
            )
        except Exception:
            log.exception("could not record this apply_model run on the dataset")
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if self._target is None:
            return
        (samples, label_field), self._target = self._target, None
        dataset = samples._root_dataset
        if dataset.has_sample_field(label_field):
            describe_label_field(dataset, label_field, self.settings)
            if self._classes is not None and self._classes.targets:
                dataset.mask_targets = {**dataset.mask_targets, label_field: self._classes.targets}
                dataset.save()
        if self._run is not None:
            status = (
                "completed"
                if exc_type is None
                else ("interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed")
            )
            self._run.finish(status, **self._counts)
            self._run = None


def _apply_model_call() -> tuple[Any, Any]:
    """The ``samples`` and ``label_field`` of the ``fiftyone.core.models.apply_model`` call running this
    model, or ``(None, None)``.

    FiftyOne hands a model its images but never the field its labels go to; recording how a field was
    made needs both, so they are read from the arguments of the enclosing ``apply_model`` frame (found by
    its code object, not by name). Outside ``apply_model`` nothing is recorded.
    """
    code = fom.apply_model.__code__
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return frame.f_locals.get("samples"), frame.f_locals.get("label_field")
        frame = frame.f_back
    return None, None
