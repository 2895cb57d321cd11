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
from dataclasses import asdict, dataclass, fields
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", tuple(self.prompt))
        object.__setattr__(self, "score_threshold", float(self.score_threshold))
        object.__setattr__(self, "mask_threshold", float(self.mask_threshold))
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prompt"] = list(self.prompt)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSettings | None:
        """Settings stored by :meth:`to_dict`; None if they are not complete (another tool's, or older)."""
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or any(n not in data for n in names):
            return None
        try:
            return cls(**{n: data[n] for n in names})
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
        return [f"{k}: {theirs[k]!r} -> {mine[k]!r}" for k in mine if mine[k] != theirs[k]]

    def describe(self) -> str:
        what = ", ".join(repr(p) for p in self.prompt)
        if self.prompt_field:
            what = (
                f"{what} and the prompts in {self.prompt_field!r}"
                if what
                else f"the prompts in {self.prompt_field!r}"
            )
        return (
            f"SAM 3 {self.output} of {what} (model {self.model}, score > {self.score_threshold:g}); sam3kit"
        )


def error_field_name(label_field: str) -> str:
    """The string field that holds, per sample, why segmenting it failed (None once it succeeds)."""
    return f"{label_field}_error"


def run_key_for(label_field: str) -> str:
    """The FiftyOne run key of the sam3kit run that writes ``label_field``."""
    return "sam3kit_" + re.sub(r"\W", "_", label_field)


def label_type(output: str) -> Any:
    import fiftyone.core.labels as fol

    return fol.Segmentation if output == "segmentation" else fol.Detections


def stored_settings(dataset: Any, label_field: str) -> RunSettings | None:
    """The sam3kit settings recorded on an existing field, or None if it holds none."""
    info = dataset.get_field(label_field).info or {}
    return RunSettings.from_dict(info.get(INFO_KEY))


def check_label_field(
    dataset: Any, label_field: str, settings: RunSettings, overwrite: bool, resume: bool
) -> str:
    """Decide how a run may write ``label_field``: ``"new"``, ``"resume"`` or ``"overwrite"``.

    Raises :class:`FieldExistsError` (naming the field and what to do) when the field exists and may
    not be written. Changes nothing.
    """
    import fiftyone.core.fields as fof

    if not label_field or "." in label_field or label_field.startswith("_"):
        raise ValueError(f"label_field must be a top-level field name, got {label_field!r}")
    if label_field == settings.prompt_field:
        raise ValueError(f"label_field {label_field!r} is the prompt field: write the masks to another field")
    error_field = error_field_name(label_field)
    if dataset.has_sample_field(error_field) and not isinstance(
        dataset.get_field(error_field), fof.StringField
    ):
        raise FieldExistsError(
            f"field {error_field!r} of dataset {dataset.name!r}, where sam3kit records why samples of "
            f"{label_field!r} failed, is a {type(dataset.get_field(error_field)).__name__}; choose another "
            "label_field"
        )
    if not dataset.has_sample_field(label_field):
        return "new"
    field = dataset.get_field(label_field)
    where = f"field {label_field!r} of dataset {dataset.name!r}"
    if not isinstance(field, fof.EmbeddedDocumentField):
        raise FieldExistsError(
            f"{where} is a {type(field).__name__}, not a label field; choose another label_field"
        )
    if overwrite:
        return "overwrite"
    made = stored_settings(dataset, label_field)
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


def prepare_label_field(dataset: Any, label_field: str, settings: RunSettings, mode: str) -> None:
    """Declare the field (and clear it when overwriting) with its provenance in ``info`` and ``description``.

    Declared before the first sample is written, so a run killed before its first batch still leaves a
    field that the next run with the same settings resumes.
    """
    import fiftyone.core.fields as fof

    doc_type = label_type(settings.output)
    error_field = error_field_name(label_field)
    if mode == "overwrite":
        field = dataset.get_field(label_field)
        if field.document_type is not doc_type:
            dataset.delete_sample_field(label_field)
        else:
            dataset.clear_sample_field(label_field)
        if dataset.has_sample_field(error_field):
            dataset.clear_sample_field(error_field)
        if label_field in dataset.mask_targets:  # class values of the old run mean nothing now
            dataset.mask_targets = {k: v for k, v in dataset.mask_targets.items() if k != label_field}
            dataset.save()
    if not dataset.has_sample_field(label_field):
        dataset.add_sample_field(label_field, fof.EmbeddedDocumentField, embedded_doc_type=doc_type)
    describe_label_field(dataset, label_field, settings)


def describe_label_field(dataset: Any, label_field: str, settings: RunSettings) -> None:
    """Record ``settings`` in the field's ``info`` and a summary in its ``description`` (shown in the App)."""
    field = dataset.get_field(label_field)
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
