"""``apply_sam3``: segment a FiftyOne dataset or view with SAM 3, batch by batch, resumably.

The run streams: sample ids are read once (a few dozen bytes each), then pages of file paths and prompt
labels are fetched, images are decoded in background threads while the model runs, and every batch of
``batch_size`` results is written with one bulk ``set_values`` per field, by a writer thread, while the
next batch is segmented. At most two batches of results are held, so memory stays flat however long the
dataset.

A sample is *done* when its label field is set (an image where nothing was found gets an empty
``Detections`` or an all-background ``Segmentation``, so it is done too). A run that stops, however it
stops, loses at most the batches in flight; running it again with the same settings segments only the
samples that are not done. A sample whose image cannot be read or segmented gets the reason in
``<label_field>_error``, keeps no label, and is tried again by the next run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from ..model import DEFAULT_MODEL
from ..request import split_concepts
from .convert import (
    ClassValues,
    ObjectPrompts,
    PromptedObject,
    build_request,
    empty_result,
    prompts_from_label,
    to_detections,
    to_segmentation,
)
from .loading import get_segmenter
from .provenance import (
    RunRecord,
    RunSettings,
    check_label_field,
    error_field_name,
    prepare_label_field,
)
from .threads import ThreadShare

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
_END = object()


@dataclass
class RunSummary:
    """What one call did. ``done`` samples were segmented now, ``skipped`` already had a label (an earlier
    run's), ``failed`` could not be segmented (see ``error_field``); ``instances`` masks were written."""

    label_field: str
    error_field: str
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    instances: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Outcome:
    """One sample's result, or the exception that stopped it, and what its prompted objects stand for."""

    sample_id: str
    result: Any
    objects: dict[int, PromptedObject] = field(default_factory=dict)


def apply_sam3(
    samples: Any,
    prompt: str | Sequence[str] | None = None,
    label_field: str = "sam3",
    *,
    prompt_field: str | None = None,
    output: str = "detections",
    score_threshold: float = 0.5,
    mask_threshold: float = 0.5,
    max_masks: int | None = None,
    prompt_frame: int | None = None,
    direction: str | None = None,
    batch_size: int = 4,
    num_workers: int = 2,
    model: Any = DEFAULT_MODEL,
    device: str = "auto",
    dtype: Any = "auto",
    overwrite: bool = False,
    resume: bool = True,
    skip_failures: bool = True,
    progress: bool | ProgressCallback | None = None,
) -> RunSummary:
    """Segment every image of ``samples`` (a dataset or view) with SAM 3 and store the masks in ``label_field``.

    ``prompt`` holds text concepts (``"person, car"`` or a list): every instance of each is segmented and
    labelled with its concept. ``prompt_field`` names a ``Detections`` field (each box outlines one object)
    or a ``Keypoints`` field (each keypoint's points mark one object; ``sam_labels`` 0/1 per point as in
    FiftyOne's SAM models) whose labels prompt objects; their masks take the prompt's ``label`` and
    ``prompt_id``. Both may be given at once.

    ``output="detections"`` writes ``fo.Detections`` with instance masks and confidences;
    ``"segmentation"`` one ``fo.Segmentation`` per image whose pixel values are classes (the dataset's
    ``mask_targets[label_field]`` names them). ``score_threshold`` and ``max_masks`` (per concept) filter
    instances; ``mask_threshold`` binarises masks.

    ``model`` is a hub id, a folder, or a loaded :class:`~sam3kit.Sam3Segmenter`. An existing
    ``label_field`` is never written unless ``overwrite=True`` (clears the whole field first) or it holds a
    sam3kit run with the same settings and ``resume=True``, which segments only samples without a label;
    otherwise :class:`~sam3kit.fiftyone.FieldExistsError` names the field. Unreadable images are recorded
    in ``<label_field>_error`` and skipped (``skip_failures=False`` raises instead). ``progress`` is
    ``callback(done, total)``, called after each batch is written, or True/False for a progress bar.

    On a video dataset or view, SAM 3 tracks each video: text concepts from frame ``prompt_frame`` (1-based,
    default 1) and the objects of a frame-level ``prompt_field`` from every frame they are labelled on,
    ``direction`` ``"forward"``, ``"backward"`` or ``"both"`` (default), into frame-level Detections
    ``frames.<label_field>`` whose ``index`` names the same object on every frame (see
    :mod:`sam3kit.fiftyone.video`). ``batch_size`` and ``num_workers`` apply to images only.
    """
    if getattr(samples, "media_type", None) == "video":
        from .video import apply_sam3_video

        return apply_sam3_video(
            samples, prompt, label_field, prompt_field=prompt_field, output=output,
            score_threshold=score_threshold, mask_threshold=mask_threshold, max_masks=max_masks,
            prompt_frame=1 if prompt_frame is None else prompt_frame, direction=direction or "both",
            model=model, device=device, dtype=dtype, overwrite=overwrite, resume=resume,
            skip_failures=skip_failures, progress=progress,
        )  # fmt: skip
    if prompt_frame is not None or direction is not None:
        raise ValueError("prompt_frame and direction are for video datasets; this collection holds images")
    settings = _settings(
        samples, prompt, prompt_field, output, score_threshold, mask_threshold, max_masks, model
    )
    if batch_size < 1 or num_workers < 0:
        raise ValueError("batch_size must be at least 1 and num_workers at least 0")
    dataset = samples._root_dataset
    mode = check_label_field(dataset, label_field, settings, overwrite, resume)
    pending = samples if mode != "resume" else samples.exists(label_field, False)
    segmenter = get_segmenter(model, device, dtype) if len(pending) else None  # before any change
    if mode != "resume":
        prepare_label_field(dataset, label_field, settings, mode)
    ids, summary, record = start_run(
        samples, label_field, settings, mode, label_field, segmenter, batch_size=batch_size
    )
    database = threading.Lock()  # the writer thread and the page reads take turns with the dataset
    batches = _segment(segmenter, samples, ids, settings, batch_size, num_workers, database)
    writer = _BatchWriter(dataset, label_field, settings, skip_failures, database)
    share = ThreadShare(segmenter.device if segmenter else None)
    with (
        progress_reporter(progress, len(ids)) as report,
        recorded_run(record, summary),
        ThreadPoolExecutor(max_workers=1) as write_pool,
        closing(batches),  # stops the image readers at once if the run stops
        closing(share),  # torch's thread count, as it was
    ):
        # batch k is written (masks compressed and sent) while batch k + 1 is segmented
        written = None
        for batch, segment_seconds in _timed(batches):
            if written is not None:
                share.observe(segment_seconds, written.result())
                report(summary.done + summary.failed)
            written = write_pool.submit(_timed_call, writer.write, batch, summary)
        if written is not None:
            written.result()
            report(summary.done + summary.failed)
    return summary


def _timed(items: Iterator[Any]) -> Iterator[tuple[Any, float]]:
    """Each item of ``items`` with the seconds it took to produce."""
    while True:
        start = time.perf_counter()
        item = next(items, _END)
        if item is _END:
            return
        yield item, time.perf_counter() - start


def _timed_call(fn: Callable[..., Any], *args: Any) -> float:
    """Call ``fn(*args)``; return how many seconds it took."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _settings(
    samples: Any,
    prompt: str | Sequence[str] | None,
    prompt_field: str | None,
    output: str,
    score_threshold: float,
    mask_threshold: float,
    max_masks: int | None,
    model: Any,
) -> RunSettings:
    """The run's settings, checked before anything loads or changes."""
    import fiftyone.core.validation as fov

    fov.validate_image_collection(samples)
    concepts = split_concepts(prompt)
    _check_prompt_field(samples, prompt_field)
    if not concepts and not prompt_field:
        raise ValueError("nothing to segment: give a text prompt, a prompt_field, or both")
    return RunSettings.for_run(
        model, concepts, prompt_field, output, score_threshold, mask_threshold, max_masks
    )


def start_run(
    samples: Any,
    label_field: str,
    settings: RunSettings,
    mode: str,
    done_field: str,
    model: Any,
    **details: Any,
) -> tuple[list[str], RunSummary, RunRecord]:
    """The ids of the samples still to do (``done_field`` unset), the run's summary, and its record on the
    dataset (which notes ``model``'s device and dtype, and ``details``)."""
    ids = samples.exists(done_field, False).values("id")
    summary = RunSummary(
        label_field, error_field_name(label_field), len(samples), skipped=len(samples) - len(ids)
    )
    record = RunRecord(
        samples,
        label_field,
        settings,
        mode,
        pending=len(ids),
        device=model.device if model else None,
        dtype=str(model.dtype).replace("torch.", "") if model else None,
        **details,
    )
    return ids, summary, record


@contextmanager
def recorded_run(record: RunRecord, summary: RunSummary) -> Iterator[None]:
    """Record how the run ended (completed, interrupted or failed) and its counts, however it ends."""
    status = "failed"
    try:
        yield
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        counts = {k: getattr(summary, k) for k in ("done", "failed", "skipped", "instances")}
        try:
            record.finish(status, **counts)
        except Exception:
            if status == "completed":
                raise
            log.exception("could not record the end of the run on the dataset")


def _check_prompt_field(samples: Any, prompt_field: str | None) -> None:
    import fiftyone.core.labels as fol

    if prompt_field is None:
        return
    field = samples.get_field(prompt_field)
    doc_type = getattr(field, "document_type", None)
    if field is None or doc_type not in (fol.Detections, fol.Keypoints):
        found = "no such field" if field is None else (doc_type or type(field)).__name__
        raise ValueError(
            f"prompt_field must name a Detections (boxes) or Keypoints (points) field; {prompt_field!r} is "
            f"{found}"
        )


def _segment(
    segmenter: Any,
    samples: Any,
    ids: list[str],
    settings: RunSettings,
    batch_size: int,
    num_workers: int,
    database: threading.Lock,
) -> Iterator[list[Outcome]]:
    """Batches of outcomes, in ``ids`` order, ``batch_size`` at a time."""
    page_size = max(64, 16 * batch_size)
    fields = ["id", "filepath"] + ([settings.prompt_field] if settings.prompt_field else [])
    for start in range(0, len(ids), page_size):
        page_ids = ids[start : start + page_size]
        rows = dict(zip(page_ids, [None] * len(page_ids)))
        with database:
            values = samples.select(page_ids).values(fields)
        for row in zip(*values):
            rows[row[0]] = row[1:]
        page = [(sid, *rows[sid]) for sid in page_ids if rows[sid] is not None]
        if settings.prompt_field:
            outcomes = _segment_prompted(segmenter, page, settings, batch_size, num_workers)
        else:
            outcomes = _segment_text(segmenter, page, settings, batch_size, num_workers)
        yield from _chunks(outcomes, batch_size)


def _segment_text(
    segmenter: Any, page: list[tuple], settings: RunSettings, batch_size: int, num_workers: int
) -> Iterator[Outcome]:
    """One request for every image: the core batches the backbone and encodes the text once."""
    request = build_request(list(settings.prompt), settings.thresholds)
    results = segmenter.iter_batch(
        [row[1] for row in page], request, batch_size=batch_size, num_workers=num_workers, errors="return"
    )
    for row, result in zip(page, results):
        yield Outcome(row[0], result)


def _segment_prompted(
    segmenter: Any, page: list[tuple], settings: RunSettings, batch_size: int, num_workers: int
) -> Iterator[Outcome]:
    """One request per image, built from its prompt label in its own pixel size; images decoded ahead."""
    from ..engine import prepare_image

    def prepare(path: str) -> Any:
        try:
            return prepare_image(path)
        except Exception as exc:  # reported as this sample's outcome
            return exc

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        decoded = _read_ahead(pool, prepare, [row[1] for row in page], ahead=2 * batch_size)
        for (sample_id, _path, label), prepared in zip(page, decoded):
            prompts = ObjectPrompts([], [], {})
            try:
                if isinstance(prepared, Exception):
                    raise prepared
                height, width = prepared.size
                prompts = prompts_from_label(label, width, height)
                request = build_request(list(settings.prompt), settings.thresholds, prompts)
                result = segmenter.segment(prepared, request) if request else empty_result(prepared.size)
            except Exception as exc:
                result = exc
            yield Outcome(sample_id, result, prompts.objects)


def _read_ahead(
    pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: list[Any], ahead: int
) -> Iterator[Any]:
    """``fn(item)`` for each item in order, with up to ``ahead`` calls running in ``pool`` meanwhile."""
    queue: deque = deque()
    upcoming = iter(items)
    for item in upcoming:
        queue.append(pool.submit(fn, item))
        if len(queue) >= ahead:
            break
    while queue:
        future = queue.popleft()
        item = next(upcoming, _END)
        if item is not _END:
            queue.append(pool.submit(fn, item))
        yield future.result()


def _chunks(outcomes: Iterator[Outcome], size: int) -> Iterator[list[Outcome]]:
    batch: list[Outcome] = []
    for outcome in outcomes:
        batch.append(outcome)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _BatchWriter:
    """Writes a batch of outcomes with one bulk update per field: errors first, then labels, so that a
    crash between the two leaves the batch not done (it is redone) rather than done with a stale error.

    Runs in a writer thread; ``database`` keeps it from using the dataset while the run reads a page.
    """

    def __init__(
        self,
        dataset: Any,
        label_field: str,
        settings: RunSettings,
        skip_failures: bool,
        database: threading.Lock,
    ) -> None:
        self.dataset = dataset
        self.database = database
        self.label_field = label_field
        self.error_field = error_field_name(label_field)
        self.skip_failures = skip_failures
        self.classes: ClassValues | None = None
        if settings.output == "segmentation":
            self.classes = ClassValues(settings.prompt, dataset.mask_targets.get(label_field))
            self._save_targets()

    def write(self, batch: list[Outcome], summary: RunSummary) -> None:
        labels: dict[str, Any] = {}
        errors: dict[str, str | None] = {}
        first_error: Exception | None = None
        for outcome in batch:
            if isinstance(outcome.result, Exception):
                exc = outcome.result
                errors[outcome.sample_id] = f"{type(exc).__name__}: {exc}"
                log.warning("sample %s not segmented: %s", outcome.sample_id, errors[outcome.sample_id])
                first_error = first_error or exc
                summary.failed += 1
                continue
            labels[outcome.sample_id] = self._label(outcome)
            errors[outcome.sample_id] = None
            summary.done += 1
            summary.instances += _count_instances(outcome.result)
        with self.database:
            if self.classes is not None:
                self._save_targets()
            if first_error is not None or self.dataset.has_sample_field(self.error_field):
                self.dataset.set_values(self.error_field, errors, key_field="id")
            if labels:
                self.dataset.set_values(self.label_field, labels, key_field="id")
        if first_error is not None and not self.skip_failures:
            raise first_error

    def _label(self, outcome: Outcome) -> Any:
        if self.classes is not None:
            return to_segmentation(outcome.result, self.classes, outcome.objects)
        return to_detections(outcome.result, outcome.objects)

    def _save_targets(self) -> None:
        targets = self.classes.targets
        if targets and self.dataset.mask_targets.get(self.label_field) != targets:
            self.dataset.mask_targets = {**self.dataset.mask_targets, self.label_field: targets}
            self.dataset.save()


def _count_instances(result: Any) -> int:
    return sum(1 for crop in result.mask_crops.crops if crop.size and crop.any())


@contextmanager
def progress_reporter(
    progress: bool | ProgressCallback | None, total: int
) -> Iterator[Callable[[int], None]]:
    """``report(done)`` for a run of ``total`` samples: the caller's ``callback(done, total)``, or a bar."""
    if callable(progress):
        yield lambda done: progress(done, total)
        return
    import fiftyone.core.utils as fou

    with fou.ProgressBar(total=total, progress=progress) as bar:
        yield bar.set_iteration
