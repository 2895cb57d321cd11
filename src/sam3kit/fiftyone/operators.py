"""The operator the sam3kit plugin registers: ``@sam3kit/sam3/apply_sam3``, a form over ``apply_sam3``.

It runs on the App's current dataset, view or selected samples, immediately or delegated (``fiftyone
delegated launch`` runs queued operations), reports progress through ``ctx.set_progress`` after each batch
is written, and returns a summary. FiftyOne imports this module when it lists operators, so torch and
transformers are imported only when the operator executes.
"""

from __future__ import annotations

from typing import Any

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..model import DEFAULT_MODEL
from ..request import split_concepts
from .convert import OUTPUTS
from .provenance import FieldExistsError, RunSettings, check_label_field

DEFAULTS: dict[str, Any] = {
    "prompt": "",
    "prompt_field": None,
    "output": "detections",
    "label_field": "sam3",
    "score_threshold": 0.5,
    "mask_threshold": 0.5,
    "max_masks": None,
    "model": DEFAULT_MODEL,
    "device": "auto",
    "batch_size": 4,
    "num_workers": 2,
    "overwrite": False,
    "prompt_frame": 1,
    "direction": "both",
}
DEVICES = ("auto", "cuda", "cpu", "mps")


def is_video(dataset: Any) -> bool:
    return dataset is not None and dataset.media_type == "video"


def read_params(params: dict[str, Any]) -> dict[str, Any]:
    """The operator's parameters with defaults filled in (the App omits untouched optional inputs)."""
    values = {k: (params.get(k) if params.get(k) is not None else v) for k, v in DEFAULTS.items()}
    values["prompt_field"] = values["prompt_field"] or None
    return values


class ApplySam3(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="apply_sam3",
            label="Segment with SAM 3",
            description="Segment every instance of text concepts, or the objects of box or keypoint labels",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        inputs.view_target(ctx)
        p = read_params(ctx.params)
        prompt = inputs.str(
            "prompt",
            label="Text prompt",
            description="Noun phrases separated by commas (e.g. 'person, car'): every instance of each",
        )
        fields = prompt_fields(ctx.dataset)
        if fields:
            choices = types.Dropdown()
            for name, kind in fields.items():
                choices.add_choice(name, label=f"{name} ({kind})")
            inputs.enum(
                "prompt_field",
                choices.values(),
                label="Prompt field",
                description="Boxes (Detections: one object per box) or points (Keypoints: one object each)"
                + ("; labels sharing an index are one object" if is_video(ctx.dataset) else ""),
                view=choices,
            )
        if not split_concepts(p["prompt"]) and not p["prompt_field"]:
            prompt.invalid = True
            prompt.error_message = "Give a text prompt, a prompt field, or both"
        if is_video(ctx.dataset):
            inputs.int("prompt_frame", default=1, min=1, label="Prompt frame",
                       description="The frame (from 1) where the text prompt is given")  # fmt: skip
            directions = types.RadioGroup()
            for name in ("both", "forward", "backward"):
                directions.add_choice(name, label=name.capitalize())
            inputs.enum(
                "direction", list(directions.values()), default="both", label="Track", view=directions
            )
        else:
            outputs = types.RadioGroup()
            outputs.add_choice(
                "detections", label="Detections", description="instance masks, with confidences"
            )
            outputs.add_choice("segmentation", label="Segmentation", description="one label image per sample")
            inputs.enum("output", list(OUTPUTS), default="detections", label="Output", view=outputs)
        label_field = inputs.str(
            "label_field",
            default="sam3",
            label="Label field",
            description="Frame-level Detections; each object's index is the same on every frame"
            if is_video(ctx.dataset)
            else None,
        )
        inputs.float("score_threshold", default=0.5, min=0.0, max=1.0, label="Score threshold")
        inputs.float("mask_threshold", default=0.5, min=0.0, max=1.0, label="Mask threshold")
        inputs.int("max_masks", min=1, label="Max masks per concept", description="empty: no limit")
        inputs.str(
            "model",
            default=DEFAULT_MODEL,
            label="Model",
            description="Hub id or a folder on the machine that runs the operation",
        )
        inputs.enum("device", list(DEVICES), default="auto", label="Device")
        if not is_video(ctx.dataset):
            inputs.int("batch_size", default=4, min=1, label="Batch size")
            inputs.int("num_workers", default=2, min=0, label="Image-reading threads")
        inputs.bool(
            "overwrite",
            default=False,
            label="Overwrite",
            description="Clear and redo the label field if it exists with other settings",
        )
        notice = field_notice(ctx.dataset, p)
        if notice is not None and notice[0] == "error":
            label_field.invalid = True
            label_field.error_message = notice[1]
        elif notice is not None:
            inputs.view("field_notice", types.Notice(label=notice[1]))
        return types.Property(inputs, view=types.View(label="Segment with SAM 3"))

    def resolve_run_name(self, ctx: Any) -> str:
        return f"SAM 3 -> {read_params(ctx.params)['label_field']}"

    def execute(self, ctx: Any) -> dict[str, Any]:
        from .apply import apply_sam3

        p = read_params(ctx.params)
        video = is_video(ctx.dataset)

        def progress(done: int, total: int) -> None:
            what = "videos" if video else "samples"
            ctx.set_progress(progress=done / total if total else 1.0, label=f"{done} of {total} {what}")

        summary = apply_sam3(
            ctx.target_view(),
            prompt=p["prompt"] or None,
            label_field=p["label_field"],
            prompt_field=p["prompt_field"],
            output=p["output"],
            score_threshold=p["score_threshold"],
            mask_threshold=p["mask_threshold"],
            max_masks=p["max_masks"],
            batch_size=p["batch_size"],
            num_workers=p["num_workers"],
            model=p["model"],
            device=p["device"],
            overwrite=p["overwrite"],
            progress=progress,
            **({"prompt_frame": p["prompt_frame"], "direction": p["direction"]} if video else {}),
        )
        if not ctx.delegated:
            ctx.trigger("reload_dataset")
        return summary.to_dict()

    def resolve_output(self, ctx: Any) -> types.Property:
        outputs = types.Object()
        outputs.str("label_field", label="Label field")
        outputs.int("done", label="Samples segmented")
        outputs.int("skipped", label="Skipped (labelled by an earlier run)")
        outputs.int("failed", label="Failed (reason in the error field)")
        outputs.int("instances", label="Instances found")
        outputs.str("error_field", label="Error field")
        return types.Property(outputs, view=types.View(label="SAM 3 run"))


def prompt_fields(dataset: Any) -> dict[str, str]:
    """The dataset's fields that can prompt objects: name -> ``"Detections"`` or ``"Keypoints"``."""
    import fiftyone.core.labels as fol

    if dataset is None:
        return {}
    kinds = {fol.Detections: "Detections", fol.Keypoints: "Keypoints"}
    if is_video(dataset):  # frame-level labels prompt the frames they are on
        schema = dataset.get_frame_field_schema(embedded_doc_type=tuple(kinds))
        return {f"frames.{name}": kinds[field.document_type] for name, field in schema.items()}
    return {
        name: kinds[field.document_type]
        for name, field in dataset.get_field_schema(embedded_doc_type=tuple(kinds)).items()
    }


def field_notice(dataset: Any, p: dict[str, Any]) -> tuple[str, str] | None:
    """What running with ``p`` would do to an existing label field: ``("error", why)`` if it would be
    refused, ``("info", what)`` if it would resume or overwrite, None for a new field."""
    if dataset is None or not p["label_field"]:
        return None
    video = is_video(dataset)
    try:
        settings = RunSettings.for_run(
            p["model"], split_concepts(p["prompt"]), p["prompt_field"], p["output"], p["score_threshold"],
            p["mask_threshold"], p["max_masks"],
            **({"prompt_frame": p["prompt_frame"], "direction": p["direction"]} if video else {}),
        )  # fmt: skip
        mode = check_label_field(dataset, p["label_field"], settings, p["overwrite"], True, frames=video)
    except (FieldExistsError, ValueError) as exc:
        return ("error", str(exc))
    if mode == "resume":
        return (
            "info",
            f"'{p['label_field']}' holds a run with these settings: only "
            + (
                "videos not yet tracked will be tracked"
                if video
                else "samples without a label will be segmented"
            ),
        )
    if mode == "overwrite":
        return ("info", f"'{p['label_field']}' will be cleared and redone")
    return None


def register(plugin: Any) -> None:
    """Register this module's operators on a FiftyOne plugin context."""
    plugin.register(ApplySam3)
