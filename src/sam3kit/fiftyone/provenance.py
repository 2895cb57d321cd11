"""How a label field was made, kept where FiftyOne users look, and the rule for writing into a field.

Every field sam3kit writes carries its settings in ``dataset.get_field(name).info["sam3kit"]`` and a
one-line ``description`` that the App shows. Every run is also a FiftyOne custom run, key
``sam3kit_<field>`` (``dataset.get_run_info(key)``: settings, sam3kit version, view, date;
``dataset.load_run_results(key).history``: each invocation's start, end, status and counts).

A field is written only when it is new, when ``overwrite=True`` (the whole field is cleared first, so it
never mixes results of different settings), or when it holds an earlier sam3kit run with the same settings
and ``resume=True``: then only samples whose label is still unset are segmented.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from .convert import OUTPUTS

RUN_METHOD = "sam3kit"
INFO_KEY = "sam3kit"


class FieldExistsError(ValueError):
    """The label field already exists and sam3kit may not write into it; the message says what to do."""


@dataclass(frozen=True)
class RunSettings:
    """What decides a field's contents; two runs with equal settings may share (resume) a field."""

    model: str
    revision: str | None
    prompt: tuple[str, ...]
    prompt_field: str | None
    output: str
    score_threshold: float
    mask_threshold: float
    max_masks: int | None
    prompt_frame: int | None = None  # videos only: the frame (1-based) text concepts are given on
    direction: str | None = None  # videos only: forward, backward or both from the prompt frame

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", tuple(self.prompt))
        object.__setattr__(self, "score_threshold", float(self.score_threshold))
        object.__setattr__(self, "mask_threshold", float(self.mask_threshold))
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as stored; the video-only ones appear only for video runs."""
        data = asdict(self)
        data["prompt"] = list(self.prompt)
        for name in ("prompt_frame", "direction"):
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def for_run(
        cls,
        model: Any,
        concepts: Sequence[str],
        prompt_field: str | None,
        output: str,
        score_threshold: float,
        mask_threshold: float,
        max_masks: int | None,
        **video: Any,
    ) -> RunSettings:
        """The settings of a run of ``model`` (a name, folder or loaded model), its thresholds checked as a
        request's would be (:class:`~sam3kit.RequestError` if not valid)."""
        from ..request import SegmentRequest
        from .loading import model_name, model_revision

        settings = cls(
            model=model_name(model),
            revision=model_revision(model),
            prompt=tuple(concepts),
            prompt_field=prompt_field,
            output=output,
            score_threshold=score_threshold,
            mask_threshold=mask_threshold,
            max_masks=max_masks,
            **video,
        )
        SegmentRequest(prompt=list(concepts) or "check", **settings.thresholds)
        return settings

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSettings | None:
        """Settings stored by :meth:`to_dict`; None if they are not complete (another tool's, or older)."""
        required = [f.name for f in fields(cls) if f.default is MISSING]
        if not isinstance(data, dict) or any(n not in data for n in required):
            return None
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        except (TypeError, ValueError):
            return None

    @property
    def thresholds(self) -> dict[str, Any]:
        """The request fields these settings fix for every image."""
        return {
            "score_threshold": self.score_threshold,
            "mask_threshold": self.mask_threshold,
            "max_masks": self.max_masks,
        }

    def differences(self, other: RunSettings) -> list[str]:
        """``"name: theirs -> ours"`` for each setting that differs from ``other``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {theirs.get(k)!r} -> {mine[k]!r}" for k in mine if mine[k] != theirs.get(k)]

    def describe(self) -> str:
        what = ", ".join(repr(p) for p in self.prompt)
        if self.prompt_field:
            what = (
                f"{what} and the prompts in {self.prompt_field!r}"
                if what
                else f"the prompts in {self.prompt_field!r}"
            )
        tracked = f" tracked {self.direction} from frame {self.prompt_frame}" if self.direction else ""
        return (
            f"SAM 3 {self.output} of {what}{tracked} (model {self.model}, score > {self.score_threshold:g}); "
            "sam3kit"
        )


def error_field_name(label_field: str) -> str:
    """The string field that holds, per sample, why segmenting it failed (None once it succeeds)."""
    return f"{label_field}_error"


def tracks_field_name(label_field: str) -> str:
    """The sample field of a video run that holds one ``TemporalDetection`` per tracked object (its frame
    support); set once the whole video is tracked, so it also marks the video done."""
    return f"{label_field}_tracks"


def field_path(label_field: str, frames: bool) -> str:
    """The path FiftyOne knows the label field by: ``frames.<name>`` for frame-level labels of videos."""
    return f"frames.{label_field}" if frames else label_field


def _has_field(dataset: Any, label_field: str, frames: bool) -> bool:
    return dataset.has_frame_field(label_field) if frames else dataset.has_sample_field(label_field)


def run_key_for(label_field: str) -> str:
    """The FiftyOne run key of the sam3kit run that writes ``label_field``."""
    return "sam3kit_" + re.sub(r"\W", "_", label_field)


def label_type(output: str) -> Any:
    import fiftyone.core.labels as fol

    return fol.Segmentation if output == "segmentation" else fol.Detections


def stored_settings(dataset: Any, label_field: str, frames: bool = False) -> RunSettings | None:
    """The sam3kit settings recorded on an existing field, or None if it holds none."""
    info = dataset.get_field(field_path(label_field, frames)).info or {}
    return RunSettings.from_dict(info.get(INFO_KEY))


def check_label_field(
    dataset: Any, label_field: str, settings: RunSettings, overwrite: bool, resume: bool, frames: bool = False
) -> str:
    """Decide how a run may write ``label_field``: ``"new"``, ``"resume"`` or ``"overwrite"``.

    ``frames=True`` checks the frame-level field of a video dataset (and the sample-level tracks field
    beside it). Raises :class:`FieldExistsError` (naming the field and what to do) when the field exists and may
    not be written. Changes nothing.
    """
    import fiftyone.core.fields as fof
    import fiftyone.core.labels as fol

    if not label_field or "." in label_field or label_field.startswith("_"):
        raise ValueError(f"label_field must be a top-level field name, got {label_field!r}")
    if label_field == settings.prompt_field:
        raise ValueError(f"label_field {label_field!r} is the prompt field: write the masks to another field")
    _check_companion(dataset, label_field, error_field_name(label_field), fof.StringField, "why samples of")
    if frames:
        tracks = tracks_field_name(label_field)
        _check_companion(
            dataset,
            label_field,
            tracks,
            fof.EmbeddedDocumentField,
            "the object tracks of",
            fol.TemporalDetections,
        )
    if not _has_field(dataset, label_field, frames):
        return "new"
    field = dataset.get_field(field_path(label_field, frames))
    where = f"{'frame ' if frames else ''}field {label_field!r} of dataset {dataset.name!r}"
    if not isinstance(field, fof.EmbeddedDocumentField):
        raise FieldExistsError(
            f"{where} is a {type(field).__name__}, not a label field; choose another label_field"
        )
    if overwrite:
        return "overwrite"
    made = stored_settings(dataset, label_field, frames)
    if made is None:
        raise FieldExistsError(
            f"{where} already exists and was not made by sam3kit; choose another label_field, or pass "
            "overwrite=True to replace it"
        )
    if made != settings:
        raise FieldExistsError(
            f"{where} already holds a sam3kit run with other settings ({'; '.join(settings.differences(made))}); "
            "pass overwrite=True to redo it with the new settings, or choose another label_field"
        )
    if not resume:
        raise FieldExistsError(
            f"{where} already holds a sam3kit run with these settings; pass resume=True to segment only its "
            "samples that have no label yet, or overwrite=True to redo them all"
        )
    return "resume"


def _check_companion(
    dataset: Any, label_field: str, name: str, kind: type, what: str, doc_type: Any = None
) -> None:
    """Refuse a run whose sample field ``name`` (where it records ``what`` ``label_field``) has another type."""
    if not dataset.has_sample_field(name):
        return
    field = dataset.get_field(name)
    if not isinstance(field, kind) or (doc_type is not None and field.document_type is not doc_type):
        found = getattr(field, "document_type", None) or type(field)
        raise FieldExistsError(
            f"field {name!r} of dataset {dataset.name!r}, where sam3kit records {what} {label_field!r}, holds "
            f"{found.__name__}; choose another label_field"
        )


def prepare_label_field(
    dataset: Any, label_field: str, settings: RunSettings, mode: str, frames: bool = False
) -> None:
    """Declare the field (and clear it when overwriting) with its provenance in ``info`` and ``description``.

    Declared before the first sample is written, so a run killed before its first batch still leaves a
    field that the next run with the same settings resumes. ``frames=True``: the frame-level field of a
    video dataset, and the sample-level tracks field that marks each video done.
    """
    import fiftyone.core.fields as fof
    import fiftyone.core.labels as fol

    doc_type = label_type(settings.output)
    error_field = error_field_name(label_field)
    companions = [error_field] + ([tracks_field_name(label_field)] if frames else [])
    if mode == "overwrite":
        field = dataset.get_field(field_path(label_field, frames))
        if frames:
            drop, clear = dataset.delete_frame_field, dataset.clear_frame_field
        else:
            drop, clear = dataset.delete_sample_field, dataset.clear_sample_field
        (clear if field.document_type is doc_type else drop)(label_field)
        for name in companions:
            if dataset.has_sample_field(name):
                dataset.clear_sample_field(name)
        if label_field in dataset.mask_targets:  # class values of the old run mean nothing now
            dataset.mask_targets = {k: v for k, v in dataset.mask_targets.items() if k != label_field}
            dataset.save()
    if not _has_field(dataset, label_field, frames):
        add = dataset.add_frame_field if frames else dataset.add_sample_field
        add(label_field, fof.EmbeddedDocumentField, embedded_doc_type=doc_type)
    if frames and not dataset.has_sample_field(companions[1]):
        dataset.add_sample_field(
            companions[1], fof.EmbeddedDocumentField, embedded_doc_type=fol.TemporalDetections
        )
    describe_label_field(dataset, label_field, settings, frames)


def describe_label_field(dataset: Any, label_field: str, settings: RunSettings, frames: bool = False) -> None:
    """Record ``settings`` in the field's ``info`` and a summary in its ``description`` (shown in the App)."""
    field = dataset.get_field(field_path(label_field, frames))
    field.info = {**(field.info or {}), INFO_KEY: settings.to_dict(), "run_key": run_key_for(label_field)}
    field.description = settings.describe()
    field.save()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class RunRecord:
    """The FiftyOne custom run describing the runs that wrote one label field.

    Its config holds the settings, sam3kit version and field names; its results hold ``history``, one
    entry per invocation (a resumed run adds an entry), updated when the invocation starts and ends.
    """

    def __init__(self, samples: Any, label_field: str, settings: RunSettings, mode: str, **details: Any):
        from .. import __version__

        self.dataset = samples._root_dataset
        self.key = run_key_for(label_field)
        self.history: list[dict[str, Any]] = []
        if mode == "resume" and self.key in self.dataset.list_runs():
            self.history = self._previous_history()
        else:
            config = samples.init_run(
                method=RUN_METHOD,
                label_field=label_field,
                error_field=error_field_name(label_field),
                sam3kit_version=__version__,
                **settings.to_dict(),
            )
            samples.register_run(self.key, config, overwrite=True, cleanup=False)
        self.entry: dict[str, Any] = {
            "started": _now(),
            "finished": None,
            "status": "running",
            "mode": mode,
            "sam3kit_version": __version__,
            **details,
        }
        self.history.append(self.entry)
        self._save()

    def _previous_history(self) -> list[dict[str, Any]]:
        try:
            results = self.dataset.load_run_results(self.key, cache=False, load_view=False)
        except Exception:  # results written by another version or never saved: start a new history
            return []
        return list(getattr(results, "history", None) or [])

    def finish(self, status: str, **counts: Any) -> None:
        self.entry.update(finished=_now(), status=status, **counts)
        self._save()

    def _save(self) -> None:
        results = self.dataset.init_run_results(self.key, history=self.history)
        self.dataset.save_run_results(self.key, results, overwrite=True, cache=False)
