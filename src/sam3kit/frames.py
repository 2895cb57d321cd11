"""Frame sources for video and z-stack propagation: frames are read one at a time, at full bit depth.

A source is anything with a length whose frames can be read by index: a numpy array ``(T, H, W)`` or
``(T, H, W, C)`` (a memory map, or any array-like such as a dask or zarr array, is read frame by frame), a
``.npy`` file (memory-mapped), a multi-page TIFF stack, a folder of image files (natural sort order:
``t2`` before ``t10``), or a video file (decoded with OpenCV when it is installed). No source loads the
whole stack; reading frame ``i`` touches only that frame.

Frames keep their dtype until :class:`IntensityScaling` turns them into the 8-bit RGB that SAM 3 expects.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .images import HIGH_PERCENTILE, LOW_PERCENTILE, ImageError, load_image, stretch_to_uint8, to_rgb_uint8

FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".gif"}
STACK_SUFFIXES = {".npy", ".tif", ".tiff"}

#: At most this many frames are read to choose the intensity range of a whole stack.
SAMPLE_FRAMES = 16
#: At most this many pixel values (over all sampled frames) enter the percentiles.
SAMPLE_VALUES = 2_000_000

log = logging.getLogger(__name__)


class FrameSourceError(ImageError):
    """A video, stack or folder of frames could not be opened or read; the message says what to do."""


class FrameSource:
    """Frames read by index. Subclasses implement :meth:`__len__` and :meth:`read`."""

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as stored: (H, W) or (H, W, C), any dtype."""
        raise NotImplementedError

    def name(self, index: int) -> str:
        """A name for frame ``index`` in output file names."""
        return f"{index:05d}"

    def describe(self) -> str:
        return type(self).__name__

    def close(self) -> None:
        """Release open files (a no-op for in-memory sources)."""

    def _check(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"frame index must be an integer, got {index!r}")
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} is outside the {len(self)} frames of {self.describe()}")
        return int(index)


class ArrayFrames(FrameSource):
    """Frames of an array-like indexed along its first axis; only the frame asked for is materialised."""

    def __init__(self, array: Any, label: str = "array") -> None:
        shape = getattr(array, "shape", None)
        if shape is None or len(shape) not in (3, 4):
            raise FrameSourceError(
                f"a stack must be (T, H, W) or (T, H, W, C), got shape {shape}; for a single image use "
                "Sam3Segmenter, and for multichannel stacks pick up to 3 channels first"
            )
        if shape[0] < 1:
            raise FrameSourceError("the stack has no frames")
        self.array = array
        self.label = label

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, index: int) -> np.ndarray:
        return np.asarray(self.array[self._check(index)])

    def describe(self) -> str:
        return f"{self.label} of shape {tuple(self.array.shape)}"


class FolderFrames(FrameSource):
    """One image file per frame, in natural sort order of their names."""

    def __init__(self, paths: Sequence[Path], label: str = "") -> None:
        if not paths:
            raise FrameSourceError(
                f"no frames found{' in ' + label if label else ''}: expected image files "
                f"({', '.join(sorted(FRAME_SUFFIXES))})"
            )
        self.paths = [Path(p) for p in paths]
        self.label = label or f"{len(self.paths)} image files"

    @classmethod
    def from_folder(cls, folder: Path) -> FolderFrames:
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES]
        return cls(sorted(files, key=lambda p: natural_key(p.name)), str(folder))

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        path = self.paths[self._check(index)]
        try:
            return load_image(path)
        except ImageError as exc:
            raise FrameSourceError(f"frame {index}: {exc}") from exc

    def name(self, index: int) -> str:
        return self.paths[index].stem

    def describe(self) -> str:
        return f"folder {self.label}"


class TiffFrames(FrameSource):
    """A multi-page TIFF stack read page by page (one page per frame) with tifffile."""

    def __init__(self, path: Path, tif: Any, pages: Sequence[Any], shape: tuple[int, ...]) -> None:
        self.path = path
        self.shape = shape
        self._tif = tif
        self._pages = pages
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pages)

    def read(self, index: int) -> np.ndarray:
        index = self._check(index)
        with self._lock:
            return self._pages[index].asarray()

    def describe(self) -> str:
        return f"TIFF stack {self.path} {self.shape}"

    def close(self) -> None:
        self._tif.close()


def open_tiff(path: Path) -> FrameSource:
    """A TIFF stack: memory-mapped when stored uncompressed, else read page by page.

    A compressed stack stored as one page (a volume) cannot be read frame by frame; it is loaded whole,
    with a warning.
    """
    try:
        import tifffile
    except ImportError:
        raise FrameSourceError(
            f"reading the TIFF stack {path} needs tifffile: pip install tifffile"
        ) from None
    try:
        return ArrayFrames(tifffile.memmap(path, mode="r"), f"TIFF stack {path}")
    except FrameSourceError:
        raise
    except Exception:  # compressed or not contiguous: not mappable
        pass
    try:
        tif = tifffile.TiffFile(path)
        series = tif.series[0]
    except Exception as exc:  # tifffile raises several types for bad files
        raise FrameSourceError(f"cannot read the TIFF stack {path}: {exc}") from exc
    shape = tuple(series.shape)
    if len(shape) in (3, 4) and len(series.pages) == shape[0] > 1:
        return TiffFrames(path, tif, series.pages, shape)
    log.warning("%s cannot be read frame by frame (compressed volume); loading all of it", path)
    try:
        data = series.asarray()
    finally:
        tif.close()
    return ArrayFrames(data, f"TIFF stack {path}")


class VideoFileFrames(FrameSource):
    """A video file decoded with OpenCV; sequential reads do not seek, jumps (backward passes) do."""

    def __init__(self, path: Path) -> None:
        try:
            import cv2
        except ImportError:
            raise FrameSourceError(
                f"reading the video {path} needs a video decoder: pip install opencv-python-headless "
                "(or export the video as a folder of PNG/TIFF frames)"
            ) from None
        self._cv2 = cv2
        self.path = path
        self._lock = threading.Lock()
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise FrameSourceError(f"OpenCV cannot open the video {path} (unknown codec or not a video)")
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:  # some containers do not record it: count by demuxing once
            count = 0
            while self._capture.grab():
                count += 1
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        if count <= 0:
            raise FrameSourceError(f"the video {path} has no frames")
        self._count = count
        self._next = 0

    def __len__(self) -> int:
        return self._count

    def read(self, index: int) -> np.ndarray:
        index = self._check(index)
        with self._lock:
            if index != self._next:
                self._capture.set(self._cv2.CAP_PROP_POS_FRAMES, index)
            ok, bgr = self._capture.read()
            if not ok:
                self._next = -1
                raise FrameSourceError(f"cannot decode frame {index} of {self.path}")
            self._next = index + 1
        return np.ascontiguousarray(bgr[..., ::-1])

    def describe(self) -> str:
        return f"video {self.path}"

    def close(self) -> None:
        self._capture.release()


def natural_key(name: str) -> list[Any]:
    """Sort key that orders embedded numbers by value: ``t2`` before ``t10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def open_frames(source: Any) -> FrameSource:
    """Open ``source`` as a :class:`FrameSource`.

    Accepts a FrameSource; an array-like ``(T, H, W[, C])``; a list of image paths; or a path to a folder
    of frames, a ``.npy`` stack, a multi-page ``.tif`` stack or a video file.
    """
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (str, Path)):
        return _open_path(Path(source).expanduser())
    if isinstance(source, (list, tuple)):
        if source and all(isinstance(s, (str, Path)) for s in source):
            return FolderFrames([Path(s) for s in source])
        return ArrayFrames(_ListStack(source), "list of frames")
    if hasattr(source, "shape") and hasattr(source, "__getitem__"):
        return ArrayFrames(source)
    raise FrameSourceError(
        f"cannot read frames from a {type(source).__name__}: pass an array (T, H, W[, C]), a folder of "
        "frames, a .npy or .tif stack, or a video file"
    )


def _open_path(path: Path) -> FrameSource:
    if path.is_dir():
        return FolderFrames.from_folder(path)
    if not path.is_file():
        raise FrameSourceError(f"no such file or folder: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return ArrayFrames(np.load(path, mmap_mode="r"), f"stack {path}")
        except ValueError as exc:
            raise FrameSourceError(f"cannot memory-map {path}: {exc}") from exc
    if suffix in (".tif", ".tiff"):
        return open_tiff(path)
    if suffix in VIDEO_SUFFIXES:
        return VideoFileFrames(path)
    raise FrameSourceError(
        f"{path} is not a video, stack or folder sam3kit reads (video: {', '.join(sorted(VIDEO_SUFFIXES))}; "
        "stack: .npy, .tif)"
    )


class _ListStack:
    """A list of per-frame arrays seen as one array-like (frames are not copied)."""

    def __init__(self, frames: Sequence[Any]) -> None:
        if not frames:
            raise FrameSourceError("the list of frames is empty")
        first = np.asarray(frames[0])
        self.frames = frames
        self.shape = (len(frames), *first.shape)

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.frames[index])


@dataclass(frozen=True)
class IntensityScaling:
    """How raw frames become 8-bit: one intensity range for the whole stack, or one per frame.

    ``mode`` is ``"stack"`` (``low``/``high`` fixed for every frame, so a cell keeps its brightness from
    frame to frame), ``"frame"`` (each frame stretched between its own percentiles, as a single image is),
    or ``"none"`` (8-bit data passed through).
    """

    mode: str
    low: float = 0.0
    high: float = 255.0

    def to_rgb(self, frame: np.ndarray) -> np.ndarray:
        """The (H, W, 3) uint8 RGB frame SAM 3 sees."""
        frame = np.asarray(frame)
        if self.mode == "stack" and frame.dtype not in (np.uint8, np.bool_):
            frame = stretch(frame, self.low, self.high)
        return to_rgb_uint8(frame)

    def to_dict(self) -> dict[str, Any]:
        if self.mode == "stack":
            return {"mode": "stack", "low": self.low, "high": self.high}
        return {"mode": self.mode}


def stretch(frame: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``low``..``high`` to 0..255 (clipped; NaN to 0), keeping the array's layout."""
    if frame.dtype.kind not in "uifb":
        raise FrameSourceError(f"unsupported frame dtype {frame.dtype}")
    return stretch_to_uint8(frame, low, high)


def intensity_scaling(
    source: FrameSource, mode: str | tuple[float, float] = "stack", first: np.ndarray | None = None
) -> IntensityScaling:
    """Choose how ``source``'s frames become 8-bit.

    ``"stack"`` (default) reads up to :data:`SAMPLE_FRAMES` evenly spaced frames (one at a time, keeping
    only a pixel sample) and stretches every frame between the 0.5th and 99.5th percentiles of that sample;
    floats already within 0..1 map 0 -> 0 and 1 -> 255. 8-bit and boolean frames pass through unchanged.
    ``"frame"`` stretches each frame on its own. A ``(low, high)`` pair fixes the range.
    """
    if isinstance(mode, (tuple, list)):
        low, high = (float(v) for v in mode)
        if not high > low:
            raise ValueError(f"intensity range needs high > low, got ({low}, {high})")
        return IntensityScaling("stack", low, high)
    if mode not in ("stack", "frame"):
        raise ValueError(f"intensity must be 'stack', 'frame' or a (low, high) pair, got {mode!r}")
    first = source.read(0) if first is None else first
    if first.dtype in (np.uint8, np.bool_):
        return IntensityScaling("none")
    if mode == "frame":
        return IntensityScaling("frame")
    count = len(source)
    indices = np.unique(np.linspace(0, count - 1, min(count, SAMPLE_FRAMES)).round().astype(int))
    step = max(1, math.ceil(first.size * len(indices) / SAMPLE_VALUES))
    samples = []
    for i in indices:
        frame = first if i == 0 else source.read(int(i))
        values = np.asarray(frame, dtype=np.float32).ravel()[::step]
        samples.append(values[np.isfinite(values)])
        del frame
    values = np.concatenate(samples)
    if values.size == 0:
        return IntensityScaling("stack", 0.0, 1.0)
    if first.dtype.kind == "f" and values.min() >= 0.0 and values.max() <= 1.0:
        return IntensityScaling("stack", 0.0, 1.0)
    low, high = (float(v) for v in np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE]))
    return IntensityScaling("stack", low, high)
