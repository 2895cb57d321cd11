"""Segmentation results: masks, scores and boxes, and the views users ask of them.

Every mask carries where it came from: ``source`` is ``"concept"`` (a text/exemplar prompt found it; its
phrase is in ``concepts``) or ``"object"`` (point/box prompts of ``object_ids``). Boxes are pixel corners
``(x_min, y_min, x_max, y_max)``; :attr:`SegmentationResult.boxes_cxcywh` gives the hosted API's
normalised ``(cx, cy, w, h)``.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from .coords import xyxy_to_cxcywh_norm
from .masks import MaskCrops


@dataclass
class MaskCandidates:
    """The alternative masks SAM proposes for one ambiguous object prompt, best first."""

    masks: np.ndarray  # (K, H, W) bool
    scores: np.ndarray  # (K,) predicted IoU


@dataclass
class Provenance:
    """How a result was made: enough to reproduce it."""

    model: str
    revision: str | None
    request: dict[str, Any]
    device: str = "cpu"
    dtype: str = "float32"
    sam3kit_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SegmentationResult:
    """Masks found in one image of ``image_size`` = (height, width) pixels.

    ``masks`` may be given as an (N, H, W) boolean array or as :class:`~sam3kit.masks.MaskCrops`; they are
    kept as crops of their boxes (:attr:`mask_crops`), and :attr:`masks` builds the full (N, H, W) array on
    first use. Label images, previews and RLE are made from the crops.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        masks: np.ndarray | MaskCrops,
        scores: np.ndarray,
        boxes: np.ndarray,
        object_ids: np.ndarray,
        sources: list[str],
        concepts: list[str | None],
        candidates: list[MaskCandidates | None] | None = None,
        provenance: Provenance | None = None,
    ) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.mask_crops = masks if isinstance(masks, MaskCrops) else MaskCrops.from_array(masks)
        if self.mask_crops.size != self.image_size and len(self.mask_crops):
            raise ValueError(f"masks are {self.mask_crops.size}, the image is {self.image_size}")
        self.mask_crops.size = self.image_size
        self._masks: np.ndarray | None = masks if isinstance(masks, np.ndarray) else None
        self.scores = np.asarray(scores, dtype=np.float32)
        self.boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.object_ids = np.asarray(object_ids, dtype=np.int64)
        self.sources = list(sources)
        self.concepts = list(concepts)
        self.candidates = list(candidates) if candidates else [None] * len(self.scores)
        self.provenance = provenance
        n = len(self.scores)
        if not (
            len(self.mask_crops)
            == len(self.boxes)
            == len(self.object_ids)
            == len(self.sources)
            == len(self.concepts)
            == len(self.candidates)
            == n
        ):
            raise ValueError(
                "masks, scores, boxes, object_ids, sources and concepts must have one entry per mask"
            )

    @classmethod
    def concat(cls, parts: list[SegmentationResult], size: tuple[int, int]) -> SegmentationResult:
        """One result holding the masks of ``parts`` (all of an image of ``size``), in order."""
        parts = [p for p in parts if len(p)]
        return cls(
            image_size=size,
            masks=MaskCrops.concat([p.mask_crops for p in parts], size),
            scores=np.concatenate([p.scores for p in parts]) if parts else np.zeros(0, np.float32),
            boxes=np.concatenate([p.boxes for p in parts]) if parts else np.zeros((0, 4), np.float32),
            object_ids=np.concatenate([p.object_ids for p in parts]) if parts else np.zeros(0, np.int64),
            sources=[s for p in parts for s in p.sources],
            concepts=[c for p in parts for c in p.concepts],
            candidates=[c for p in parts for c in p.candidates],
            provenance=parts[0].provenance if parts else None,
        )

    def take(self, index: list[int]) -> SegmentationResult:
        """A result holding only the masks at ``index``, in that order."""
        index = [int(i) for i in index]
        return SegmentationResult(
            image_size=self.image_size,
            masks=self.mask_crops.take(index),
            scores=self.scores[index],
            boxes=self.boxes[index],
            object_ids=self.object_ids[index],
            sources=[self.sources[i] for i in index],
            concepts=[self.concepts[i] for i in index],
            candidates=[self.candidates[i] for i in index],
            provenance=self.provenance,
        )

    def __repr__(self) -> str:
        return f"SegmentationResult({len(self)} masks, image {self.image_size[0]}x{self.image_size[1]})"

    @property
    def masks(self) -> np.ndarray:
        """All masks as one (N, H, W) boolean array (built from the crops on first use)."""
        if self._masks is None:
            self._masks = self.mask_crops.to_array()
        return self._masks

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def height(self) -> int:
        return self.image_size[0]

    @property
    def width(self) -> int:
        return self.image_size[1]

    @property
    def boxes_cxcywh(self) -> np.ndarray:
        """Normalised (cx, cy, w, h) boxes in 0..1, as the hosted API returns them."""
        return xyxy_to_cxcywh_norm(self.boxes, self.width, self.height).astype(np.float32)

    def label_image(self, dtype: np.dtype | type = np.uint16) -> np.ndarray:
        """An (H, W) instance image: mask i has label i + 1, 0 is background; higher score wins overlaps."""
        labels = np.zeros(self.image_size, dtype=dtype)
        if len(self) >= np.iinfo(labels.dtype).max:
            raise ValueError(f"{len(self)} masks do not fit in a {labels.dtype} label image")
        crops = self.mask_crops
        for i in np.argsort(self.scores, kind="stable"):
            (y0, x0), crop = crops.offsets[i], crops.crops[i]
            window = labels[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]]
            window[crop] = i + 1
        return labels

    def preview(self, image: np.ndarray, apply_mask: bool = True, alpha: float = 0.5) -> np.ndarray:
        """An (H, W, 3) uint8 picture of the masks over ``image`` (8-bit RGB of the same size).

        ``apply_mask=True`` keeps only the masked pixels (cut-out); ``False`` tints each mask in its colour.
        """
        if image.shape[:2] != self.image_size:
            raise ValueError(f"preview image is {image.shape[:2]}, masks are {self.image_size}")
        labels = self.label_image(np.uint32)
        if apply_mask:
            return np.where((labels > 0)[..., None], image, 0).astype(np.uint8)
        colours = label_colours(len(self))
        tinted = image.astype(np.float32)
        inside = labels > 0
        tinted[inside] = (1 - alpha) * tinted[inside] + alpha * colours[labels[inside] - 1]
        return tinted.round().astype(np.uint8)

    def to_rle(self) -> list[dict[str, Any]]:
        """COCO run-length encodings (uncompressed, column-major ``counts``), one per mask."""
        return [mask_to_rle(m) for m in self.mask_crops]

    def metadata(self) -> list[dict[str, Any]]:
        cxcywh = self.boxes_cxcywh
        return [
            {
                "index": i,
                "score": float(self.scores[i]),
                "box": [float(v) for v in cxcywh[i]],
                "box_xyxy": [float(v) for v in self.boxes[i]],
                "object_id": int(self.object_ids[i]),
                "source": self.sources[i],
                "concept": self.concepts[i],
            }
            for i in range(len(self))
        ]

    def to_dict(
        self,
        image: np.ndarray | None = None,
        *,
        include_scores: bool = True,
        include_boxes: bool = True,
        apply_mask: bool = True,
        output_format: str = "png",
        sync_mode: bool = True,
        mask_format: str = "image",
        files: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The hosted API's response schema: ``image``, ``masks``, ``scores``, ``boxes``, ``metadata``.

        With ``sync_mode`` images are inline data URIs; otherwise ``files`` maps ``"image"`` and
        ``"mask_<i>"`` to the paths where the caller wrote them. ``mask_format="rle"`` returns COCO RLE
        dicts instead of mask images (the hosted ``-rle`` variant).
        """
        out: dict[str, Any] = {}
        if sync_mode:
            if image is not None:
                out["image"] = {"url": to_data_uri(self.preview(image, apply_mask), output_format)}
            if mask_format == "rle":
                out["masks"] = self.to_rle()
            else:
                out["masks"] = [
                    {"url": to_data_uri(m.astype(np.uint8) * 255, output_format)} for m in self.mask_crops
                ]
        else:
            files = files or {}
            if "image" in files:
                out["image"] = {"url": files["image"]}
            out["masks"] = (
                self.to_rle()
                if mask_format == "rle"
                else [{"url": files.get(f"mask_{i}")} for i in range(len(self))]
            )
        if include_scores:
            out["scores"] = [float(s) for s in self.scores]
        if include_boxes:
            out["boxes"] = [[float(v) for v in b] for b in self.boxes_cxcywh]
        out["metadata"] = self.metadata()
        if self.provenance is not None:
            out["provenance"] = self.provenance.to_dict()
        return out

    def to_json(self, image: np.ndarray | None = None, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(image, **kwargs))


def label_colours(n: int) -> np.ndarray:
    """``n`` distinct RGB colours (float 0..255), golden-angle hues so neighbours differ."""
    import colorsys

    hues = (np.arange(n) * 0.618033988749895) % 1.0
    return np.array([colorsys.hsv_to_rgb(h, 0.75, 1.0) for h in hues], dtype=np.float32).reshape(-1, 3) * 255


def encode_image(array: np.ndarray, output_format: str = "png") -> bytes:
    """Encode a uint8 (H, W) or (H, W, 3) array as png, jpeg or webp bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[output_format.lower()]
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format=fmt)
    return buffer.getvalue()


def to_data_uri(array: np.ndarray, output_format: str = "png") -> str:
    mime = "jpeg" if output_format.lower() in ("jpg", "jpeg") else output_format.lower()
    return f"data:image/{mime};base64," + base64.b64encode(encode_image(array, output_format)).decode("ascii")


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE of a boolean (H, W) mask: run lengths over the column-major pixels, zeros first."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`mask_to_rle`."""
    h, w = rle["size"]
    values = np.zeros(h * w, dtype=bool)
    pos, on = 0, False
    for count in rle["counts"]:
        if on:
            values[pos : pos + count] = True
        pos += count
        on = not on
    return values.reshape((h, w), order="F")
