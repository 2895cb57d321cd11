"""Video and z-stack propagation: prompt objects or a text concept on one frame, follow them through the rest.

One ``Sam3VideoModel`` (the hub checkpoint's ``sam3_video`` model) serves both kinds of prompt, with its
vision backbone in memory once:

- **text concepts** go to ``Sam3VideoModel`` itself, which detects the concept on every frame and tracks
  each instance (``Sam3VideoProcessor.add_text_prompt`` / ``postprocess_outputs``);
- **points and boxes** go to its tracker (``Sam3VideoModel.tracker_model``, a ``Sam3TrackerVideoModel``
  without its own vision encoder, via ``Sam3TrackerVideoProcessor.add_inputs_to_inference_session``). Its
  image features come from the detector's backbone through the tracker neck, which is how
  ``Sam3VideoModel`` feeds the same tracker and how transformers maps the hub weights into
  ``Sam3TrackerVideoModel``. When both kinds are given, the backbone runs once per frame for both.

Frames stream from their source: transformers' inference sessions look frames up in ``processed_frames``
by index, and sam3kit gives them a mapping that reads, normalises and preprocesses a frame only when the
model asks for it. What a session holds:

- the model weights (once) and the frame source (an open file or the caller's array; nothing copied);
- one preprocessed frame (the model's input, 3 x 1008 x 1008) and one frame's backbone features;
- per tracked object: its outputs on prompted frames, and on tracked frames within
  ``max(num_maskmem, max_object_pointers_in_encoder)`` (16) frames of the frame being processed or of a
  prompted frame. Older outputs are dropped: the model never reads them again, so results are unchanged;
- for text concepts, up to ``hotstart_delay`` (15) frames of low-resolution masks, which ``Sam3VideoModel``
  holds back to remove spurious tracks before they are reported.

Results are yielded frame by frame; the caller decides what to keep.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .engine import build_request, object_points
from .errors import ModelLoadError
from .frames import FrameSource, FrameSourceError, IntensityScaling, intensity_scaling, open_frames
from .masks import MaskCrops, upsample_to_crops
from .model import DEFAULT_MODEL
from .request import RequestError, SegmentRequest
from .result import Provenance, SegmentationResult

log = logging.getLogger(__name__)

DIRECTIONS = ("forward", "backward", "both")

ProgressCallback = Callable[[int, int], None]


@dataclass
class FrameResult:
    """The masks on one frame. ``result.object_ids`` name the same object on every frame it appears in."""

    frame_idx: int
    result: SegmentationResult

    def label_image(self, dtype: np.dtype | type = np.uint16) -> np.ndarray:
        """An (H, W) image whose pixels hold the object id (0 is background); higher score wins overlaps."""
        return label_image_by_id(self.result, dtype)


def label_image_by_id(result: SegmentationResult, dtype: np.dtype | type = np.uint16) -> np.ndarray:
    """Like ``SegmentationResult.label_image`` but labelled with object ids, so labels match across frames."""
    labels = np.zeros(result.image_size, dtype=dtype)
    if len(result) and int(result.object_ids.max()) > np.iinfo(labels.dtype).max:
        raise ValueError(
            f"object id {int(result.object_ids.max())} does not fit in a {labels.dtype} label image"
        )
    crops = result.mask_crops
    for i in np.argsort(result.scores, kind="stable"):
        (y0, x0), crop = crops.offsets[i], crops.crops[i]
        window = labels[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]]
        window[crop] = result.object_ids[i]
    return labels


class Sam3VideoSegmenter:
    """SAM 3 for videos and z-stacks: text concepts and point/box objects, propagated through the frames.

    >>> video = Sam3VideoSegmenter.from_pretrained("facebook/sam3")
    >>> for frame in video.track("movie.mp4", prompt="cell", frame_idx=0):
    ...     frame.label_image()
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        tracker_processor: Any,
        model_id: str = "",
        revision: str | None = None,
        device: str = "cpu",
        dtype: Any = None,
    ) -> None:
        check_tracker_config(model)
        self.model = model
        self.processor = processor
        self.tracker_processor = tracker_processor
        self.model_id = model_id
        self.revision = revision
        self.device = device
        self.dtype = dtype if dtype is not None else next(model.parameters()).dtype
        self._lock = threading.RLock()

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path = DEFAULT_MODEL,
        *,
        device: str | None = "auto",
        dtype: Any = "auto",
        revision: str | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> Sam3VideoSegmenter:
        """Load ``Sam3VideoModel`` and its processors from a hub id or a local folder (one backbone)."""
        return load_sam3_video(
            model,
            device=device,
            dtype=dtype,
            revision=revision,
            token=token,
            local_files_only=local_files_only,
        )

    def init_video_session(
        self, video: Any, *, intensity: str | tuple[float, float] = "stack"
    ) -> VideoSession:
        """Open ``video`` (array, folder, stack or video file; see :func:`sam3kit.frames.open_frames`).

        ``intensity`` chooses how frames that are not 8-bit become 8-bit: ``"stack"`` (one range for all
        frames, from percentiles of a sample of frames), ``"frame"`` (each frame on its own) or ``(low, high)``.
        """
        return VideoSession(self, open_frames(video), intensity=intensity)

    def track(
        self,
        video: Any,
        request: SegmentRequest | dict | None = None,
        *,
        frame_idx: int = 0,
        direction: str = "both",
        intensity: str | tuple[float, float] = "stack",
        progress: ProgressCallback | None = None,
        **fields: Any,
    ) -> Iterator[FrameResult]:
        """Prompt frame ``frame_idx`` with ``request`` (or its ``fields``) and yield every frame's result."""
        session = self.init_video_session(video, intensity=intensity)
        try:
            session.add_prompt(frame_idx, request, **fields)
            yield from session.propagate(direction, start_frame_idx=frame_idx, progress=progress)
        finally:
            session.close()


class VideoSession:
    """Prompts and tracking state over one video; made by :meth:`Sam3VideoSegmenter.init_video_session`.

    Object ids: point/box objects keep the ``object_id`` their prompts give; objects given without one, and
    every instance a text concept finds, get ids above all ids in use. Frames are 0-based.
    """

    def __init__(
        self,
        segmenter: Sam3VideoSegmenter,
        frames: FrameSource,
        intensity: str | tuple[float, float] = "stack",
    ) -> None:
        self.segmenter = segmenter
        self.frames = frames
        first = frames.read(0)
        self.scaling: IntensityScaling = intensity_scaling(frames, intensity, first=first)
        height, width = self.scaling.to_rgb(first).shape[:2]
        del first
        self.frame_size = (int(height), int(width))
        self._pixels = _LazyFrames(segmenter, frames, self.scaling, self.frame_size)
        self._features = _FeatureCache(segmenter.model, self._pixels, segmenter.device)
        self._concept_session: Any = None
        self._object_session: Any = None
        self._prompt_frames: set[int] = set()
        self._requests: list[dict[str, Any]] = []
        self._used_ids: set[int] = set()
        self._object_ids: list[int] = []
        self._concept_ids: dict[int, int] = {}  # Sam3VideoModel's object id -> public id
        self._score_threshold = float(segmenter.model.score_threshold_detection)
        self._mask_logit = 0.0

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def object_ids(self) -> list[int]:
        """Ids of the point/box objects, then of the concept instances reported so far."""
        return [*self._object_ids, *self._concept_ids.values()]

    @property
    def concepts(self) -> list[str]:
        if self._concept_session is None:
            return []
        return list(self._concept_session.prompts.values())

    @property
    def prompt_frames(self) -> list[int]:
        return sorted(self._prompt_frames)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every prompt given, as ``{"frame_idx": ..., "request": <hosted-API dict>}`` (for provenance)."""
        return list(self._requests)

    # ------------------------------------------------------------------ prompts
    def add_prompt(
        self, frame_idx: int, request: SegmentRequest | dict | None = None, **fields: Any
    ) -> SegmentationResult:
        """Prompt frame ``frame_idx``: text concepts are tracked from there; point/box objects are segmented now.

        Prompts sharing an ``object_id`` describe one object; prompting an existing object again on a frame
        replaces its prompts on that frame (the way to correct it). Returns the point/box objects' masks on
        this frame (concept instances appear during :meth:`propagate`). Coordinates are pixels, (x, y).
        """
        request = build_request(request, fields)
        frame_idx = self._check_frame(frame_idx)
        if request.exemplar_boxes:
            raise RequestError(
                "exemplar boxes are not supported for video (transformers' Sam3VideoModel takes text only); "
                "use a text prompt, or boxes without exemplar=true to track objects"
            )
        request.check_inside(self.frame_size[1], self.frame_size[0])
        objects = self._assign_ids(request)
        if request.concepts:
            self._add_concepts(request.concepts)
            self._score_threshold = float(request.score_threshold)
        self._mask_logit = _logit(request.mask_threshold)
        self._prompt_frames.add(frame_idx)
        self._requests.append({"frame_idx": frame_idx, "request": request.to_dict()})
        if not objects:
            return SegmentationResult.concat([], self.frame_size)
        return self._add_objects(frame_idx, objects)

    def _assign_ids(self, request: SegmentRequest) -> list[Any]:
        """The request's objects, with ids free in this session for those the user gave no id."""
        given = {
            p.object_id for p in (*request.point_prompts, *request.box_prompts) if p.object_id is not None
        }
        taken = set(self._concept_ids.values()) & given
        if taken:
            raise RequestError(
                f"object_id {sorted(taken)} already names a tracked concept instance; give another object_id"
            )
        self._used_ids |= given  # ids made up for the others go above them, as for images
        objects = []
        for obj in request.objects():
            if obj.object_id not in given:
                obj = type(obj)(self._fresh_id(), obj.points, obj.boxes)
            self._used_ids.add(obj.object_id)
            objects.append(obj)
        return objects

    def _fresh_id(self) -> int:
        new = max(self._used_ids, default=0) + 1
        self._used_ids.add(new)
        return new

    def _add_concepts(self, concepts: list[str]) -> None:
        seg = self.segmenter
        if self._concept_session is None:
            self._concept_session = self._new_session(seg.processor)
        seg.processor.add_text_prompt(self._concept_session, concepts)

    def _new_session(self, processor: Any) -> Any:
        seg = self.segmenter
        session = processor.init_video_session(
            video=None, inference_device=seg.device, video_storage_device="cpu", dtype=seg.dtype
        )
        session.video_height, session.video_width = self.frame_size
        session.processed_frames = self._pixels
        session.cache = self._features
        return session

    def _add_objects(self, frame_idx: int, objects: list[Any]) -> SegmentationResult:
        import torch

        seg = self.segmenter
        if self._object_session is None:
            self._object_session = self._new_session(seg.tracker_processor)
        out = None
        with seg._lock, torch.inference_mode():
            for obj in objects:
                points, labels = object_points(obj)
                seg.tracker_processor.add_inputs_to_inference_session(
                    self._object_session,
                    frame_idx=frame_idx,
                    obj_ids=[obj.object_id],
                    input_points=[[points]],
                    input_labels=[[labels]],
                )
                # transformers keeps only the last call's objects as "new": run the frame after each one
                out = seg.model.tracker_model(inference_session=self._object_session, frame_idx=frame_idx)
                if obj.object_id not in self._object_ids:
                    self._object_ids.append(obj.object_id)
        return self._object_result(out)

    # ------------------------------------------------------------------ propagation
    def propagate(
        self,
        direction: str = "both",
        start_frame_idx: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> Iterator[FrameResult]:
        """Track every prompt through the video, yielding each frame's :class:`FrameResult`.

        ``forward`` visits ``start_frame_idx`` .. last frame, ``backward`` ``start_frame_idx`` .. 0, ``both``
        forward first, then backward from ``start_frame_idx - 1``. The start defaults to the first prompted
        frame (the last one for ``backward``). ``progress(done, total)`` is called after each frame.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        if not self._prompt_frames:
            raise RequestError("nothing to track: add a prompt first (session.add_prompt)")
        if start_frame_idx is None:
            start_frame_idx = (
                max(self._prompt_frames) if direction == "backward" else min(self._prompt_frames)
            )
        start = self._check_frame(start_frame_idx)
        passes: list[tuple[range, bool]] = []
        if direction in ("forward", "both"):
            passes.append((range(start, self.num_frames), False))
        if direction == "backward":
            passes.append((range(start, -1, -1), True))
        if direction == "both":
            passes.append((range(start - 1, -1, -1), True))
        total = sum(len(order) for order, _ in passes)
        done = 0
        for order, reverse in passes:
            held: list[tuple[int, Any, SegmentationResult | None]] = []
            for frame_idx in order:
                concept_out, objects = self._step(frame_idx, reverse)
                held.append((frame_idx, concept_out, objects))
                done += 1
                if progress is not None:
                    progress(done, total)
                for item in self._release(held, concept_out, last=frame_idx == order[-1]):
                    yield self._frame_result(*item)

    def _release(self, held: list, concept_out: Any, last: bool) -> list:
        """Frames ready to report: all of them, unless text concepts are held back for the hotstart delay.

        This mirrors ``Sam3VideoModel.propagate_in_video_iterator``: concept tracks that the model removes
        within ``hotstart_delay`` frames of their birth are never reported.
        """
        delay = self.segmenter.model.hotstart_delay if concept_out is not None else 0
        if delay > 0:
            self._concept_session.hotstart_removed_obj_ids.update(concept_out.removed_obj_ids)
        if delay <= 0 or last:
            ready, held[:] = list(held), []
            return ready
        if len(held) >= delay:
            return [held.pop(0)]
        return []

    def _step(self, frame_idx: int, reverse: bool) -> tuple[Any, SegmentationResult | None]:
        import torch

        seg = self.segmenter
        model = seg.model
        concept_out = objects = None
        with seg._lock, torch.inference_mode():
            if self._concept_session is not None:
                default = model.score_threshold_detection
                model.score_threshold_detection = self._score_threshold
                try:
                    concept_out = model(
                        inference_session=self._concept_session, frame_idx=frame_idx, reverse=reverse
                    )
                finally:
                    model.score_threshold_detection = default
            if self._object_ids:
                out = model.tracker_model(
                    inference_session=self._object_session, frame_idx=frame_idx, reverse=reverse
                )
                objects = self._object_result(out)
        window = memory_window(model)
        for session in (self._concept_session, self._object_session):
            if session is not None:
                forget_far_outputs(session, frame_idx, window)
        return concept_out, objects

    def _frame_result(
        self, frame_idx: int, concept_out: Any, objects: SegmentationResult | None
    ) -> FrameResult:
        parts = [p for p in (objects, self._concept_result(concept_out)) if p is not None]
        result = SegmentationResult.concat(parts, self.frame_size)
        result.provenance = self._provenance()
        return FrameResult(frame_idx, result)

    def _object_result(self, out: Any) -> SegmentationResult:
        import torch

        logits = out.pred_masks[:, 0].float().cpu().numpy()
        crops = upsample_to_crops(logits, self.frame_size, self._mask_logit)
        scores = torch.sigmoid(out.object_score_logits.float()).cpu().numpy().reshape(-1)
        result = SegmentationResult(
            image_size=self.frame_size,
            masks=crops,
            scores=scores.astype(np.float32),
            boxes=crops.boxes(),
            object_ids=np.asarray(out.object_ids, np.int64),
            sources=["object"] * len(crops),
            concepts=[None] * len(crops),
        )
        return result.take([i for i, crop in enumerate(crops.crops) if crop.size])

    def _concept_result(self, out: Any) -> SegmentationResult | None:
        if out is None:
            return None
        post = self.segmenter.processor.postprocess_outputs(self._concept_session, out)
        shown = post["masks"].flatten(1).any(1).cpu()  # overlap removal can empty a mask
        model_ids = post["object_ids"][shown].tolist()
        phrase = {oid: text for text, ids in post["prompt_to_obj_ids"].items() for oid in ids}
        crops = MaskCrops.from_array(post["masks"][shown.to(post["masks"].device)].cpu().numpy())
        return SegmentationResult(
            image_size=self.frame_size,
            masks=crops,
            scores=post["scores"][shown].float().numpy().astype(np.float32),
            boxes=crops.boxes(),
            object_ids=np.array([self._concept_id(oid) for oid in model_ids], np.int64),
            sources=["concept"] * len(model_ids),
            concepts=[phrase[oid] for oid in model_ids],
        )

    def _concept_id(self, model_id: int) -> int:
        if model_id not in self._concept_ids:
            self._concept_ids[model_id] = self._fresh_id()
        return self._concept_ids[model_id]

    def _provenance(self) -> Provenance:
        from . import __version__

        seg = self.segmenter
        return Provenance(
            model=seg.model_id,
            revision=seg.revision,
            request={"prompts": self.requests, "intensity": self.scaling.to_dict()},
            device=seg.device,
            dtype=str(seg.dtype).replace("torch.", ""),
            sam3kit_version=__version__,
        )

    def _check_frame(self, frame_idx: int) -> int:
        if isinstance(frame_idx, bool) or not isinstance(frame_idx, (int, np.integer)):
            raise RequestError(f"frame_idx must be an integer, got {frame_idx!r}")
        if not 0 <= frame_idx < self.num_frames:
            raise RequestError(f"frame {frame_idx} is outside the video's frames 0..{self.num_frames - 1}")
        return int(frame_idx)

    @property
    def frames_read(self) -> int:
        """How many times a frame was read from the source (each frame once per pass, plus prompts)."""
        return self._pixels.reads

    def close(self) -> None:
        """Close the frame source and drop the tracking state."""
        self.frames.close()
        self._concept_session = self._object_session = None
        self._object_ids, self._prompt_frames = [], set()
        self._features.clear_all()


class _LazyFrames(Mapping):
    """Frame index -> model input (3, S, S): what transformers' sessions call ``processed_frames``.

    A frame is read from its source, made 8-bit RGB and preprocessed by the image processor only when the
    model asks for it; the last one is kept, because the concept and object sessions ask for the same frame.
    """

    def __init__(
        self,
        segmenter: Sam3VideoSegmenter,
        frames: FrameSource,
        scaling: IntensityScaling,
        size: tuple[int, int],
    ) -> None:
        self.image_processor = segmenter.processor.image_processor
        self.dtype = segmenter.dtype
        self.frames = frames
        self.scaling = scaling
        self.size = size
        self.reads = 0
        self._last: tuple[int, Any] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.frames)))

    def __contains__(self, index: object) -> bool:
        return isinstance(index, (int, np.integer)) and 0 <= int(index) < len(self.frames)

    def __getitem__(self, index: int) -> Any:
        if index not in self:
            raise KeyError(index)
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        rgb = self.rgb(index)
        pixels = self.image_processor(images=[rgb], return_tensors="pt")["pixel_values"][0].to(self.dtype)
        self._last = (index, pixels)
        return pixels

    def rgb(self, index: int) -> np.ndarray:
        """Frame ``index`` as the 8-bit RGB the model sees, checked against the video's frame size."""
        self.reads += 1
        rgb = self.scaling.to_rgb(self.frames.read(index))
        if rgb.shape[:2] != self.size:
            raise FrameSourceError(
                f"frame {index} is {rgb.shape[0]}x{rgb.shape[1]} pixels, frame 0 is {self.size[0]}x{self.size[1]}: "
                "every frame of a video must have the same size"
            )
        return rgb


class _FeatureCache:
    """The tracker's image features of one frame, shared by the concept and object sessions.

    Stands in for transformers' ``Sam3TrackerVideoInferenceCache`` (same methods). ``Sam3VideoModel``
    stores each frame's features here after running its backbone; on a miss (point/box objects only) they
    are computed the same way: detector backbone, then ``Sam3VideoModel.get_vision_features_for_tracker``.
    """

    def __init__(self, model: Any, pixels: _LazyFrames, device: str) -> None:
        self.model = model
        self.pixels = pixels
        self.device = device
        self.computed = 0
        self._frame: int | None = None
        self._features: dict[str, Any] = {}

    def cache_vision_features(self, frame_idx: int, features: dict) -> None:
        self._frame, self._features = frame_idx, dict(features)

    def get_vision_features(self, frame_idx: int) -> dict | None:
        import torch

        if frame_idx != self._frame:
            pixels = self.pixels[frame_idx].unsqueeze(0).to(self.device)
            with torch.inference_mode():
                vision = self.model.detector_model.get_vision_features(pixel_values=pixels)
                feats, pos = self.model.get_vision_features_for_tracker(vision)
            self.computed += 1
            self.cache_vision_features(frame_idx, {"vision_feats": feats, "vision_pos_embeds": pos})
        return dict(self._features)

    def clear_all(self) -> None:
        self._frame, self._features = None, {}


def memory_window(model: Any) -> int:
    """How many frames back the tracker reads: memories (``num_maskmem``) and object pointers."""
    tracker = model.tracker_model
    return max(int(tracker.num_maskmem), int(tracker.config.max_object_pointers_in_encoder))


def forget_far_outputs(session: Any, frame_idx: int, window: int) -> None:
    """Drop tracked-frame outputs the model can no longer read, so a long video's state stays bounded.

    Outputs of prompted (conditioning) frames are kept, and so are tracked frames within ``window`` of
    ``frame_idx`` or of a conditioning frame (a backward pass after a forward one starts there).
    """
    for outputs in session.output_dict_per_obj.values():
        cond = list(outputs["cond_frame_outputs"])
        tracked = outputs["non_cond_frame_outputs"]
        far = [t for t in tracked if abs(t - frame_idx) > window and all(abs(t - c) > window for c in cond)]
        for t in far:
            del tracked[t]
    scores = getattr(session, "obj_id_to_tracker_score_frame_wise", None)
    if scores:
        for t in [t for t in scores if abs(t - frame_idx) > window]:
            del scores[t]


def check_tracker_config(model: Any) -> None:
    """Refuse a checkpoint whose tracker cannot carry memory from frame to frame, saying why."""
    tracker = model.tracker_model
    layer = tracker.memory_attention.layers[0].cross_attn_image
    expected = layer.k_proj.in_features
    if tracker.mem_dim != expected or tracker.hidden_dim <= tracker.mem_dim:
        raise ModelLoadError(
            f"this checkpoint's video tracker cannot propagate: its memory has {tracker.mem_dim} channels, "
            f"its memory attention reads {expected}, and its {tracker.hidden_dim}-channel object pointers "
            "must be a multiple above that (facebook/sam3 uses 64 and 256)"
        )


def load_sam3_video(
    model: str | Path = DEFAULT_MODEL,
    *,
    device: str | None = "auto",
    dtype: Any = "auto",
    revision: str | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> Sam3VideoSegmenter:
    """Load ``Sam3VideoModel`` (detector, tracker, tracker neck: one backbone) and build its processors.

    The processors are built from the checkpoint's ``Sam3Processor`` (image processor and tokenizer), so
    frames are preprocessed exactly as single images are.
    """
    from transformers import (
        Sam2VideoVideoProcessor,
        Sam3Processor,
        Sam3TrackerVideoProcessor,
        Sam3VideoModel,
        Sam3VideoProcessor,
    )

    from .model import hub_loading, load_target

    target = load_target(model, device, dtype, revision, token, local_files_only)
    with hub_loading(target.name):
        image_processor = Sam3Processor.from_pretrained(target.name, **target.hub)
        video_model = Sam3VideoModel.from_pretrained(target.name, dtype=target.dtype, **target.hub)
    images = image_processor.image_processor
    frames = Sam2VideoVideoProcessor(
        size=images.size, image_mean=images.image_mean, image_std=images.image_std
    )
    processor = Sam3VideoProcessor(images, frames, image_processor.tokenizer)
    tracker_processor = Sam3TrackerVideoProcessor(images, frames)
    video_model.to(target.device).eval()
    return Sam3VideoSegmenter(
        video_model, processor, tracker_processor, target.name, revision, target.device, target.dtype
    )


def _logit(probability: float) -> float:
    if probability <= 0.0:
        return -math.inf
    if probability >= 1.0:
        return math.inf
    return math.log(probability / (1.0 - probability))
