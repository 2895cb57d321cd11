"""Video datasets: SAM 3 tracks text concepts and prompted objects through each video into frame labels.

:func:`~sam3kit.fiftyone.apply_sam3` comes here for video collections. Each video is one
:class:`~sam3kit.VideoSession` that streams frames from the file. Text concepts are given on frame
``prompt_frame``; a frame-level ``prompt_field`` (``Detections`` boxes or ``Keypoints`` points) prompts
objects on every frame it has labels on, one object per track: labels sharing an ``index`` are one object
(prompting it on several frames corrects it there), a label without an ``index`` is an object of its own.
The session tracks ``direction`` from the first prompted frame and every frame it visits gets
``frames.<label_field>``: ``fo.Detections`` whose ``index`` is the object's id, the same on every frame.

Frames are written in chunks while the video is tracked, so memory stays flat for long videos. A video is
*done* when ``<label_field>_tracks`` is set: one ``TemporalDetection`` per object (label, first and last
frame, best score, ``index``), written after all its frames. A run that stops mid-video leaves that video
not done; the next run with the same settings tracks it again and skips the done ones. A video that
cannot be read or tracked gets the reason in ``<label_field>_error`` and keeps no frame labels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..request import RequestError, split_concepts
from ..video import DIRECTIONS
from .apply import RunSummary, progress_reporter, recorded_run, start_run
from .convert import ObjectPrompts, PromptedObject, build_request, prompts_from_label, to_detections
from .loading import get_video_segmenter
from .provenance import (
    RunSettings,
    check_label_field,
    error_field_name,
    field_path,
    prepare_label_field,
    tracks_field_name,
)

log = logging.getLogger(__name__)

#: Frames whose labels are written together while a video is tracked.
FRAME_CHUNK = 16


def apply_sam3_video(
    samples: Any,
    prompt: str | Sequence[str] | None,
    label_field: str,
    *,
    prompt_field: str | None,
    output: str,
    score_threshold: float,
    mask_threshold: float,
    max_masks: int | None,
    prompt_frame: int,
    direction: str,
    model: Any,
    device: str,
    dtype: Any,
    overwrite: bool,
    resume: bool,
    skip_failures: bool,
    progress: Any,
) -> RunSummary:
    """Track SAM 3 through every video of ``samples``: :func:`~sam3kit.fiftyone.apply_sam3` on videos, which
    holds the defaults."""
    import fiftyone.core.validation as fov

    fov.validate_video_collection(samples)
    label_field = _strip_frames(label_field)
    prompt_field = _check_prompt_field(samples, prompt_field)
    concepts = split_concepts(prompt)
    _check_options(concepts, prompt_field, output, max_masks, prompt_frame, direction)
    settings = RunSettings.for_run(
        model, concepts, prompt_field, output, score_threshold, mask_threshold, max_masks,
        prompt_frame=prompt_frame, direction=direction,
    )  # fmt: skip
    dataset = samples._root_dataset
    mode = check_label_field(dataset, label_field, settings, overwrite, resume, frames=True)
    tracks = tracks_field_name(label_field)
    pending = samples if mode == "new" else samples.exists(tracks, False)
    video = get_video_segmenter(model, device, dtype) if len(pending) else None  # before any change
    if mode != "resume":
        prepare_label_field(dataset, label_field, settings, mode, frames=True)
    ids, summary, record = start_run(samples, label_field, settings, mode, tracks, video)
    writer = _VideoWriter(dataset, label_field)
    with progress_reporter(progress, len(ids)) as report, recorded_run(record, summary):
        for sample_id in ids:
            try:
                summary.instances += _track_video(video, dataset, sample_id, settings, writer)
                summary.done += 1
            except Exception as exc:
                summary.failed += 1
                message = f"{type(exc).__name__}: {exc}"
                log.warning("video %s not tracked: %s", sample_id, message)
                writer.failed(sample_id, message)
                if not skip_failures:
                    raise
            report(summary.done + summary.failed)
    return summary


def _strip_frames(name: str) -> str:
    return name[len("frames.") :] if name.startswith("frames.") else name


def _check_prompt_field(samples: Any, prompt_field: str | None) -> str | None:
    """``frames.<name>`` of a frame-level Detections or Keypoints field, or a clear error."""
    import fiftyone.core.labels as fol

    if prompt_field is None:
        return None
    path = field_path(_strip_frames(prompt_field), frames=True)
    field = samples.get_field(path)
    doc_type = getattr(field, "document_type", None)
    if field is None or doc_type not in (fol.Detections, fol.Keypoints):
        found = "no such frame field" if field is None else (doc_type or type(field)).__name__
        raise ValueError(
            "prompt_field of a video dataset must name a frame-level Detections (boxes) or Keypoints (points) "
            f"field; {path!r} is {found}"
        )
    return path


def _check_options(
    concepts: list[str],
    prompt_field: str | None,
    output: str,
    max_masks: int | None,
    prompt_frame: int,
    direction: str,
) -> None:
    """Refuse what a video run cannot do, before anything loads or changes."""
    if not concepts and not prompt_field:
        raise ValueError("nothing to track: give a text prompt, a prompt_field, or both")
    if output != "detections":
        raise ValueError(
            "videos are written as frame-level Detections (output='detections'), one index per object"
        )
    if max_masks is not None:
        raise ValueError("max_masks does not apply to videos: every tracked object is kept on every frame")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if isinstance(prompt_frame, bool) or not isinstance(prompt_frame, int) or prompt_frame < 1:
        raise ValueError(
            f"prompt_frame is a frame number, from 1 (FiftyOne counts frames from 1); got {prompt_frame!r}"
        )


@dataclass
class _Track:
    """What a video's tracks field says of one object: its class, frame span and best score."""

    label: str | None
    first: int
    last: int
    confidence: float

    def see(self, frame_number: int, confidence: float | None) -> None:
        self.first, self.last = min(self.first, frame_number), max(self.last, frame_number)
        if confidence is not None:
            self.confidence = max(self.confidence, confidence)


def _track_video(
    video: Any, dataset: Any, sample_id: str, settings: RunSettings, writer: _VideoWriter
) -> int:
    """Track one video and write its frames, then its tracks; returns the number of objects tracked."""
    import fiftyone.core.labels as fol

    sample = dataset.select(sample_id)
    (filepath,) = sample.values("filepath")
    session = video.init_video_session(filepath)
    try:
        height, width = session.frame_size
        if settings.prompt and settings.prompt_frame > session.num_frames:
            raise RequestError(
                f"prompt_frame {settings.prompt_frame} is past the video's last frame ({session.num_frames})"
            )
        frame_prompts, objects = _prompted_objects(sample, settings.prompt_field, width, height)
        frame_prompts = {i: p for i, p in frame_prompts.items() if 1 <= i <= session.num_frames}
        frames = sorted({*frame_prompts, *([settings.prompt_frame] if settings.prompt else [])})
        tracks: dict[int, _Track] = {}
        if not frames:  # no prompt labels: nothing asked of this video, as for an image without prompts
            writer.done(sample_id, fol.TemporalDetections())
            return 0
        for frame_number in frames:
            concepts = list(settings.prompt) if frame_number == settings.prompt_frame else []
            request = build_request(concepts, settings.thresholds, frame_prompts.get(frame_number))
            session.add_prompt(frame_number - 1, request)
        for frame in session.propagate(settings.direction):
            frame_number = frame.frame_idx + 1
            detections = to_detections(frame.result, objects, with_index=True)
            for det in detections.detections:
                track = tracks.setdefault(det.index, _Track(det.label, frame_number, frame_number, 0.0))
                track.see(frame_number, det.confidence)
            writer.add_frame(sample_id, frame_number, detections)
        spans = [
            fol.TemporalDetection(
                label=t.label, support=[t.first, t.last], confidence=t.confidence, index=int(index)
            )
            for index, t in sorted(tracks.items())
        ]
        writer.done(sample_id, fol.TemporalDetections(detections=spans))
        return len(spans)
    finally:
        session.close()


def _prompted_objects(
    sample: Any, prompt_field: str | None, width: int, height: int
) -> tuple[dict[int, ObjectPrompts], dict[int, PromptedObject]]:
    """Per frame number, the pixel prompts of the prompt field's labels, and what each object id stands for.

    A label's object id is its ``index``; labels without one get ids above every index in the video.
    """
    if prompt_field is None:
        return {}, {}
    (numbers,), (labels,) = sample.values(["frames.frame_number", prompt_field])
    items = [
        (n, label, list(getattr(label, "detections", None) or getattr(label, "keypoints", None) or []))
        for n, label in zip(numbers, labels)
        if label is not None
    ]
    given = {e.index for _, _, elements in items for e in elements if e.index is not None}
    fresh = max(given, default=0)
    prompts: dict[int, ObjectPrompts] = {}
    objects: dict[int, PromptedObject] = {}
    for frame_number, label, elements in items:
        ids = []
        for element in elements:
            if element.index is None:
                fresh += 1
            ids.append(int(element.index) if element.index is not None else fresh)
        found = prompts_from_label(label, width, height, ids)
        if found:
            prompts[int(frame_number)] = found
            for object_id, obj in found.objects.items():
                objects.setdefault(object_id, obj)  # the label and id it was first prompted with
    return prompts, objects


class _VideoWriter:
    """Writes a video's frame labels ``FRAME_CHUNK`` frames at a time, then its tracks (the done mark)."""

    def __init__(self, dataset: Any, label_field: str) -> None:
        self.dataset = dataset
        self.frames_path = field_path(label_field, frames=True)
        self.tracks_field = tracks_field_name(label_field)
        self.error_field = error_field_name(label_field)
        self.pending: dict[int, Any] = {}
        self.written: list[int] = []

    def add_frame(self, sample_id: str, frame_number: int, detections: Any) -> None:
        self.pending[frame_number] = detections
        if len(self.pending) >= FRAME_CHUNK:
            self._flush(sample_id)

    def _flush(self, sample_id: str) -> None:
        if self.pending:
            self.dataset.set_values(self.frames_path, {sample_id: self.pending}, key_field="id")
            self.written.extend(self.pending)
            self.pending = {}

    def done(self, sample_id: str, tracks: Any) -> None:
        self._flush(sample_id)
        if self.dataset.has_sample_field(self.error_field):
            self.dataset.set_values(self.error_field, {sample_id: None}, key_field="id")
        self.dataset.set_values(self.tracks_field, {sample_id: tracks}, key_field="id")
        self.written = []

    def failed(self, sample_id: str, message: str) -> None:
        """Record why the video failed and clear the frames written for it, so it holds no partial labels."""
        self.pending = {}
        if self.written:
            self.dataset.set_values(
                self.frames_path, {sample_id: dict.fromkeys(self.written)}, key_field="id"
            )
        self.written = []
        self.dataset.set_values(self.error_field, {sample_id: message}, key_field="id")
