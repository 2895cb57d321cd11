"""The inference engine: encode an image once, then answer any number of prompts on it.

Like SAM 2's predictor, the expensive prompt-independent step (the ViT backbone) is split from the cheap
prompt-dependent heads, and its output is kept in a bounded LRU cache keyed by image content, so a new
text prompt or click on the same image skips the backbone. Text embeddings are cached by phrase.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .images import ImageInput, load_image, to_rgb_uint8
from .masks import MaskCrops, upsample_to_crops
from .model import DEFAULT_MODEL, LoadedSam3, load_sam3
from .request import BoxPrompt, ObjectPrompt, SegmentRequest
from .result import MaskCandidates, Provenance, SegmentationResult

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@dataclass
class PreparedImage:
    """An image as the model sees it: 8-bit RGB (H, W, 3) and a key identifying its content."""

    rgb: np.ndarray
    key: str

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.rgb.shape[0]), int(self.rgb.shape[1]))


@dataclass
class BatchItem:
    """One image of a batch run: its position, source, prepared pixels (None if unreadable) and outcome."""

    index: int
    source: Any
    image: PreparedImage | None
    outcome: SegmentationResult | Exception


@dataclass
class ImageEmbedding:
    """Cached backbone output of one image, plus the tracker's features derived from it on first use."""

    vision: Any  # transformers Sam3VisionEncoderOutput, batch of 1
    size: tuple[int, int]
    tracker_features: list[Any] | None = field(default=None, repr=False)


def prepare_image(image: ImageInput) -> PreparedImage:
    """Load and normalise an image; the key hashes the normalised pixels so equal images share a cache entry."""
    rgb = to_rgb_uint8(load_image(image))
    digest = hashlib.blake2b(rgb.tobytes(), digest_size=16)
    digest.update(str(rgb.shape).encode())
    return PreparedImage(rgb, digest.hexdigest())


class LRUCache:
    """A small bounded mapping that forgets the least recently used entry."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> Any:
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        return None

    def put(self, key: Any, value: Any) -> None:
        if self.maxsize <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


class Sam3Segmenter:
    """SAM 3 for images: text concepts, exemplar boxes, and point/box prompts per object.

    >>> seg = Sam3Segmenter.from_pretrained("facebook/sam3")
    >>> result = seg.segment("cells.png", SegmentRequest(prompt="cell nucleus"))
    """

    def __init__(self, loaded: LoadedSam3, cache_size: int = 8, text_cache_size: int = 256) -> None:
        self.loaded = loaded
        self.image_cache = LRUCache(cache_size)
        self.text_cache = LRUCache(text_cache_size)
        self._lock = threading.RLock()

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_MODEL,
        *,
        device: str | None = "auto",
        dtype: Any = "auto",
        revision: str | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        cache_size: int = 8,
        compile: bool = False,
    ) -> Sam3Segmenter:
        """Load SAM 3 from a hub id or a local folder; see :func:`sam3kit.model.load_sam3`."""
        loaded = load_sam3(
            model,
            device=device,
            dtype=dtype,
            revision=revision,
            token=token,
            local_files_only=local_files_only,
            compile=compile,
        )
        return cls(loaded, cache_size=cache_size)

    @property
    def device(self) -> str:
        return self.loaded.device

    @property
    def dtype(self) -> Any:
        return self.loaded.dtype

    # ------------------------------------------------------------------ embeddings
    def set_image(self, image: ImageInput | PreparedImage) -> PreparedImage:
        """Encode ``image`` now (or find it in the cache), so that prompts on it are fast."""
        prepared = image if isinstance(image, PreparedImage) else prepare_image(image)
        self._embeddings([prepared])
        return prepared

    def _embeddings(self, images: Sequence[PreparedImage]) -> list[ImageEmbedding]:
        """Embeddings of ``images``, running the backbone once, batched, over those not cached."""
        import torch

        with self._lock:
            found = {p.key: self.image_cache.get(p.key) for p in images}
            todo = [p for p in {p.key: p for p in images}.values() if found[p.key] is None]
            if todo:
                pixels = self.loaded.processor.image_processor([p.rgb for p in todo], return_tensors="pt")[
                    "pixel_values"
                ]
                pixels = self._to_device(pixels).to(self.dtype)
                with torch.inference_mode():
                    vision = self.loaded.detector.get_vision_features(pixel_values=pixels)
                for i, p in enumerate(todo):
                    entry = ImageEmbedding(_slice_vision(vision, i), p.size)
                    self.image_cache.put(p.key, entry)
                    found[p.key] = entry
            return [found[p.key] for p in images]

    def _to_device(self, tensor: Any) -> Any:
        if self.device.startswith("cuda"):
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _text(self, phrase: str) -> tuple[Any, Any]:
        """Text encoder output and attention mask for ``phrase``, cached by phrase."""
        import torch

        cached = self.text_cache.get(phrase)
        if cached is not None:
            return cached
        tokens = self.loaded.processor.tokenizer(
            [phrase], padding="max_length", max_length=32, truncation=True, return_tensors="pt"
        )
        ids = tokens["input_ids"].to(self.device)
        mask = tokens["attention_mask"].to(self.device)
        with torch.inference_mode():
            out = self.loaded.detector.get_text_features(input_ids=ids, attention_mask=mask)
        self.text_cache.put(phrase, (out, mask))
        return out, mask

    def _tracker_features(self, emb: ImageEmbedding) -> list[Any]:
        """The tracker's image embeddings, computed from the cached trunk output through the tracker's neck.

        This mirrors ``Sam3TrackerModel.get_image_features`` + ``get_image_embeddings`` but starts from the
        trunk's output, which the detector already computed (tests check the two paths agree).
        """
        import torch

        if emb.tracker_features is not None:
            return emb.tracker_features
        tracker = self.loaded.tracker
        hidden = emb.vision.last_hidden_state
        batch = hidden.shape[0]
        grid_h, grid_w = tracker.backbone_feature_sizes[-1]
        with torch.inference_mode():
            spatial = hidden.view(batch, grid_h, grid_w, -1).permute(0, 3, 1, 2)
            fpn, _ = tracker.vision_encoder.neck(spatial)
            maps = list(fpn)
            maps[0] = tracker.mask_decoder.conv_s0(maps[0])
            maps[1] = tracker.mask_decoder.conv_s1(maps[1])
            maps = [m.flatten(2).permute(2, 0, 1) for m in maps]
            maps[-1] = maps[-1] + tracker.no_memory_embedding
            emb.tracker_features = [
                m.permute(1, 2, 0).view(batch, -1, *size)
                for m, size in zip(maps, tracker.backbone_feature_sizes)
            ]
        return emb.tracker_features

    # ------------------------------------------------------------------ prompting
    def segment(
        self,
        image: ImageInput | PreparedImage | None = None,
        request: SegmentRequest | None = None,
        **fields: Any,
    ) -> SegmentationResult:
        """Segment one image (array, PIL image, path, URL, data URI, or ``request.image_url``).

        ``fields`` build the request (``prompt="cell"``) or override fields of the one given.
        """
        request = build_request(request, fields)
        if image is None:
            if not request.image_url:
                raise ValueError("no image: pass one, or set image_url in the request")
            image = request.image_url
        prepared = image if isinstance(image, PreparedImage) else prepare_image(image)
        request.check_inside(prepared.size[1], prepared.size[0])
        emb = self._embeddings([prepared])[0]
        return self._decode(emb, request)

    def segment_batch(
        self,
        images: Iterable[ImageInput],
        request: SegmentRequest | None = None,
        *,
        batch_size: int = 4,
        progress: ProgressCallback | None = None,
        errors: str = "raise",
        num_workers: int = 2,
        **fields: Any,
    ) -> list[SegmentationResult | Exception]:
        """Segment many images with one request: backbone batched, text encoded once.

        Images are read and normalised in ``num_workers`` background threads while the model runs.
        With ``errors="return"`` an image that cannot be read or segmented yields its exception in the
        returned list and the run goes on; ``"raise"`` stops at the first failure.
        """
        return list(
            self.iter_batch(
                images,
                request,
                batch_size=batch_size,
                progress=progress,
                errors=errors,
                num_workers=num_workers,
                **fields,
            )
        )

    def iter_batch(
        self, images: Iterable[ImageInput], request: SegmentRequest | None = None, **options: Any
    ) -> Iterator[SegmentationResult | Exception]:
        """Like :meth:`segment_batch` (same options), yielding each result as soon as its batch is done."""
        for item in self.iter_batch_items(images, request, **options):
            yield item.outcome

    def iter_batch_items(
        self,
        images: Iterable[ImageInput],
        request: SegmentRequest | None = None,
        *,
        batch_size: int = 4,
        progress: ProgressCallback | None = None,
        errors: str = "raise",
        num_workers: int = 2,
        **fields: Any,
    ) -> Iterator[BatchItem]:
        """The batch loop behind :meth:`iter_batch`, also yielding each prepared image (for previews).

        Only ``batch_size`` images (plus the ones being read ahead) are held at a time.
        """
        if errors not in ("raise", "return"):
            raise ValueError("errors must be 'raise' or 'return'")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        request = build_request(request, fields)
        sources = images if isinstance(images, Sequence) else list(images)
        total = len(sources)
        for phrase in request.concepts:
            self._text(phrase)
        done = 0
        with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:

            def read_ahead(start: int) -> list[Any]:
                return [pool.submit(_prepare_or_error, s) for s in sources[start : start + batch_size]]

            pending = read_ahead(0)
            for start in range(0, total, batch_size):
                batch_sources = sources[start : start + batch_size]
                chunk = [f.result() for f in pending]
                pending = read_ahead(start + batch_size)  # decoded while the model runs on this batch
                good = [p for p in chunk if isinstance(p, PreparedImage)]
                encoded: dict[str, ImageEmbedding] = {}
                try:
                    if good:  # kept here, not only in the cache, which may be smaller than a batch
                        encoded = dict(zip((p.key for p in good), self._embeddings(good)))
                except Exception as exc:  # one bad image must not sink the batch: retry one by one below
                    log.warning("batched encoding failed (%s); encoding images one by one", exc)
                for source, prepared in zip(batch_sources, chunk):
                    outcome: SegmentationResult | Exception
                    try:
                        if isinstance(prepared, Exception):
                            raise prepared
                        request.check_inside(prepared.size[1], prepared.size[0])
                        emb = encoded.get(prepared.key) or self._embeddings([prepared])[0]
                        outcome = self._decode(emb, request)
                    except Exception as exc:
                        if errors == "raise":
                            raise
                        outcome = exc
                    done += 1
                    if progress is not None:
                        progress(done, total)
                    yield BatchItem(
                        done - 1, source, prepared if isinstance(prepared, PreparedImage) else None, outcome
                    )

    def _decode(self, emb: ImageEmbedding, request: SegmentRequest) -> SegmentationResult:
        with self._lock:
            parts = [self._segment_concept(emb, request, c) for c in request.concepts]
            objects = request.objects()
            if objects:
                parts.append(self._segment_objects(emb, request, objects))
        result = SegmentationResult.concat(parts, emb.size)
        result.provenance = self._provenance(request)
        return result

    def _provenance(self, request: SegmentRequest) -> Provenance:
        from . import __version__

        return Provenance(
            model=self.loaded.model_id,
            revision=self.loaded.revision,
            request=request.to_dict(),
            device=self.device,
            dtype=str(self.dtype).replace("torch.", ""),
            sam3kit_version=__version__,
        )

    def _segment_concept(
        self, emb: ImageEmbedding, request: SegmentRequest, concept: str
    ) -> SegmentationResult:
        import torch

        height, width = emb.size
        text, mask = self._text(concept)
        kwargs: dict[str, Any] = {}
        exemplars = request.exemplars_for(concept)
        if exemplars:
            kwargs = self._exemplar_inputs(exemplars, emb.size)
        with torch.inference_mode():
            out = self.loaded.detector(
                vision_embeds=emb.vision, text_embeds=text, attention_mask=mask, **kwargs
            )
        scores = (out.pred_logits[0].float().sigmoid() * out.presence_logits[0].float().sigmoid()).cpu()
        order = torch.argsort(scores, descending=True)
        order = order[scores[order] > request.score_threshold]
        if request.max_masks is not None:
            order = order[: request.max_masks]
        idx = order.tolist()
        probs = out.pred_masks[0, idx].float().sigmoid().cpu()
        masks = upsample_to_crops(probs, emb.size, request.mask_threshold)
        boxes = out.pred_boxes[0, idx].float().cpu().numpy() * np.array(
            [width, height, width, height], np.float32
        )
        n = len(idx)
        return SegmentationResult(
            image_size=emb.size,
            masks=masks,
            scores=scores[idx].numpy().astype(np.float32),
            boxes=boxes.reshape(n, 4).astype(np.float32),
            object_ids=np.arange(1, n + 1, dtype=np.int64),
            sources=["concept"] * n,
            concepts=[concept] * n,
        )

    def _exemplar_inputs(self, exemplars: list[BoxPrompt], size: tuple[int, int]) -> dict[str, Any]:
        enc = self.loaded.processor(
            original_sizes=[list(size)],
            input_boxes=[[list(b.xyxy) for b in exemplars]],
            input_boxes_labels=[[b.label for b in exemplars]],
            return_tensors="pt",
        )
        return {
            "input_boxes": enc["input_boxes"].to(self.device, self.dtype),
            "input_boxes_labels": enc["input_boxes_labels"].to(self.device),
        }

    def _segment_objects(
        self, emb: ImageEmbedding, request: SegmentRequest, objects: list[ObjectPrompt]
    ) -> SegmentationResult:
        """Run the tracker's prompt encoder and mask decoder for each object.

        Boxes enter as their two corner points (SAM labels 2 and 3), exactly as the prompt encoder embeds a
        box, which lets an object hold several boxes and clicks together. Objects are batched by prompt
        count so no padding token changes any object's mask.
        """
        features = self._tracker_features(emb)
        groups: dict[int, list[tuple[ObjectPrompt, list[list[float]], list[int]]]] = {}
        for obj in objects:
            points, labels = object_points(obj)
            groups.setdefault(len(points), []).append((obj, points, labels))
        parts = [self._run_tracker(features, emb.size, request, group) for group in groups.values()]
        merged = SegmentationResult.concat(parts, emb.size)
        order = {obj.object_id: i for i, obj in enumerate(objects)}
        return merged.take(sorted(range(len(merged)), key=lambda i: order[int(merged.object_ids[i])]))

    def _run_tracker(
        self,
        features: list[Any],
        size: tuple[int, int],
        request: SegmentRequest,
        group: list[tuple[ObjectPrompt, list[list[float]], list[int]]],
    ) -> SegmentationResult:
        import torch

        enc = self.loaded.tracker_processor(
            original_sizes=[list(size)],
            input_points=[[g[1] for g in group]],
            input_labels=[[g[2] for g in group]],
            return_tensors="pt",
        )
        n_points = len(group[0][1])
        multimask = request.return_multiple_masks or n_points == 1
        with torch.inference_mode():
            out = self.loaded.tracker(
                image_embeddings=features,
                input_points=enc["input_points"].to(self.device, self.dtype),
                input_labels=enc["input_labels"].to(self.device),
                multimask_output=multimask,
            )
        masks = (
            self.loaded.tracker_processor.post_process_masks(
                out.pred_masks.float().cpu(), [list(size)], mask_threshold=0.0, binarize=True
            )[0]
            .numpy()
            .astype(bool)
        )  # (objects, K, H, W)
        ious = out.iou_scores[0].float().cpu().numpy()  # (objects, K)
        chosen_masks, chosen_scores, candidates = [], [], []
        for i in range(len(group)):
            order = np.argsort(-ious[i], kind="stable")
            chosen_masks.append(masks[i, order[0]])
            chosen_scores.append(ious[i, order[0]])
            if request.return_multiple_masks:
                keep = order[: request.max_masks] if request.max_masks else order
                candidates.append(MaskCandidates(masks[i, keep], ious[i, keep].astype(np.float32)))
            else:
                candidates.append(None)
        crops = MaskCrops.from_array(np.stack(chosen_masks)) if chosen_masks else MaskCrops(size, [], [])
        return SegmentationResult(
            image_size=size,
            masks=crops,
            scores=np.asarray(chosen_scores, np.float32),
            boxes=crops.boxes(),
            object_ids=np.array([g[0].object_id for g in group], np.int64),
            sources=["object"] * len(group),
            concepts=[None] * len(group),
            candidates=candidates,
        )

    def clear_cache(self) -> None:
        """Forget cached image and text embeddings (to free memory)."""
        with self._lock:
            self.image_cache.clear()
            self.text_cache.clear()


def object_points(obj: ObjectPrompt) -> tuple[list[list[float]], list[int]]:
    """One object's prompts as SAM points: each box as corners labelled 2 and 3, then the clicks (1/0)."""
    points: list[list[float]] = []
    labels: list[int] = []
    for box in obj.boxes:
        points += [[box.x_min, box.y_min], [box.x_max, box.y_max]]
        labels += [2, 3]
    for p in obj.points:
        points.append([p.x, p.y])
        labels.append(p.label)
    return points, labels


def _slice_vision(vision: Any, i: int) -> Any:
    from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

    return Sam3VisionEncoderOutput(
        last_hidden_state=vision.last_hidden_state[i : i + 1],
        fpn_hidden_states=tuple(f[i : i + 1] for f in vision.fpn_hidden_states),
        fpn_position_encoding=tuple(p[i : i + 1] for p in vision.fpn_position_encoding),
    )


def build_request(request: SegmentRequest | dict | None, fields: dict[str, Any]) -> SegmentRequest:
    """A request from a ``SegmentRequest``, a hosted-API dict or None, with ``fields`` overriding its fields."""
    if request is None:
        return SegmentRequest(**fields)
    if isinstance(request, dict):
        request = SegmentRequest.from_dict(request)
    return replace(request, **fields) if fields else request


def _prepare_or_error(source: ImageInput) -> PreparedImage | Exception:
    try:
        return prepare_image(source)
    except Exception as exc:
        return exc
