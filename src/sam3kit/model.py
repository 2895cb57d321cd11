"""Loading SAM 3 from a hub id or a local folder: device, dtype, and one shared vision backbone.

The hub checkpoint ``facebook/sam3`` is a ``sam3_video`` config from which transformers builds the
detector (``Sam3Model``: text and exemplar prompts) and the tracker (``Sam3TrackerModel``: point and box
prompts). Both hold the same ViT trunk; loading them separately would keep it in memory twice, so the
tracker is given the detector's trunk and keeps only its own neck and heads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelLoadError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "facebook/sam3"
SUPPORTED_MODEL_TYPES = ("sam3_video", "sam3")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
LICENCE_HINT = (
    "SAM 3's weights are gated: accept the licence on https://huggingface.co/{model}, then run "
    "`hf auth login` (or set HF_TOKEN) on this machine"
)


def resolve_device(device: str | None = "auto") -> str:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU; anything else is passed to torch as is."""
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} was asked for, but torch sees no CUDA GPU; use device='cpu'")
    return str(device)


def resolve_dtype(dtype: Any = "auto", device: str = "cpu") -> Any:
    """``"auto"`` is bfloat16 on CUDA (SAM 3's native precision) and float32 elsewhere."""
    import torch

    if dtype in (None, "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if str(dtype) not in names:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(names)}")
    return names[str(dtype)]


@dataclass
class LoadedSam3:
    """The detector, the tracker (sharing the detector's ViT trunk) and their processors."""

    detector: Any
    tracker: Any
    processor: Any
    tracker_processor: Any
    model_id: str
    revision: str | None
    device: str
    dtype: Any
    backbone_shared: bool


def check_local_folder(path: Path) -> None:
    """Refuse a folder that is not a SAM 3 checkpoint, saying what is missing."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"{path} holds no config.json: it is not a saved model folder")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{config_file} is not valid JSON: {exc}") from exc
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(
            f"{path} holds a {model_type!r} model, not SAM 3 (expected model_type sam3_video, as in "
            f"{DEFAULT_MODEL}); point sam3kit at a SAM 3 checkpoint"
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelLoadError(f"{path} has a config but no weights (none of {', '.join(WEIGHT_FILES)})")
    missing = [n for n in ("processor_config.json", "tokenizer_config.json") if not (path / n).is_file()]
    if missing and not (path / "preprocessor_config.json").is_file():
        raise ModelLoadError(f"{path} is missing {', '.join(missing)}: save the processor beside the model")


def explain_load_error(exc: BaseException, model: str) -> ModelLoadError:
    """Turn what transformers / huggingface_hub raised into a message that says what to do."""
    from huggingface_hub import errors as hub_errors

    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, hub_errors.GatedRepoError) for e in chain) or "gated repo" in text:
        return ModelLoadError(f"cannot download {model}: " + LICENCE_HINT.format(model=model))
    if any(isinstance(e, hub_errors.RevisionNotFoundError) for e in chain):
        return ModelLoadError(f"{model} has no such revision; check the branch, tag or commit you passed")
    if (
        any(isinstance(e, hub_errors.RepositoryNotFoundError) for e in chain)
        or "is not a local folder" in text
    ):
        return ModelLoadError(
            f"{model} is neither a local folder nor a model on the Hugging Face hub that this account can see; "
            "check the spelling, or log in with `hf auth login` if it is private"
        )
    if any(
        isinstance(e, (hub_errors.LocalEntryNotFoundError, hub_errors.OfflineModeIsEnabled)) for e in chain
    ) or ("couldn't connect" in text or "connection error" in text):
        return ModelLoadError(
            f"cannot reach the Hugging Face hub and {model} is not in the local cache. Connect once to download "
            f"it (`hf download {model}`; " + LICENCE_HINT.format(model=model) + "), or pass a local folder "
            "holding a saved SAM 3 checkpoint"
        )
    return ModelLoadError(f"cannot load {model}: {exc}")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub's host answers at all (a quick TCP check, not a download).

    Without it an offline machine waits minutes in huggingface_hub's retries before failing.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_hub_model(model: str, revision: str | None, token: str | bool | None) -> bool:
    """Check a hub model can be had before loading it; return whether to load from the cache only.

    Raises :class:`ModelLoadError` saying what to do when the model is gated, unknown, or neither
    reachable nor cached.
    """
    import os

    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(model, "config.json", revision=revision), str)
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or not hub_reachable():
        if cached:
            return True
        raise explain_load_error(ConnectionError("couldn't connect to the hub"), model)
    try:
        hf_hub_download(model, "config.json", revision=revision, token=token)
    except Exception as exc:
        raise explain_load_error(exc, model) from exc
    return False


def resolve_source(
    model: str | Path, revision: str | None, token: str | bool | None, local_files_only: bool
) -> tuple[str, bool]:
    """Check a model can be had; return the name to load it by and whether to use the local cache only.

    A path is checked as a SAM 3 folder; a hub id as reachable or cached (see :func:`resolve_hub_model`).
    """
    name = str(model)
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        if not path.is_dir():
            raise ModelLoadError(f"model folder {path} does not exist")
        check_local_folder(path)
        return str(path), local_files_only
    if not local_files_only:
        local_files_only = resolve_hub_model(name, revision, token)
    return name, local_files_only


@dataclass(frozen=True)
class LoadTarget:
    """Where a checkpoint loads from and onto: its name, device and dtype, and ``from_pretrained``'s hub
    keywords (revision, token, local_files_only)."""

    name: str
    device: str
    dtype: Any
    hub: dict[str, Any]


def load_target(
    model: str | Path,
    device: str | None,
    dtype: Any,
    revision: str | None,
    token: str | bool | None,
    local_files_only: bool,
) -> LoadTarget:
    """Check ``model`` can be had (:func:`resolve_source`) and resolve the device and dtype it loads onto."""
    name, local_files_only = resolve_source(model, revision, token, local_files_only)
    device = resolve_device(device)
    hub = {"revision": revision, "token": token, "local_files_only": local_files_only}
    return LoadTarget(name, device, resolve_dtype(dtype, device), hub)


@contextmanager
def hub_loading(name: str) -> Iterator[None]:
    """Around ``from_pretrained`` calls: quiet transformers' expected notices (a ``sam3_video`` checkpoint
    loaded into the image models) and turn its loading errors into a :class:`ModelLoadError`."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    except (OSError, ValueError) as exc:
        raise explain_load_error(exc, name) from exc
    finally:
        hf_logging.set_verbosity(verbosity)


def load_sam3(
    model: str | Path = DEFAULT_MODEL,
    *,
    device: str | None = "auto",
    dtype: Any = "auto",
    revision: str | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    compile: bool = False,
) -> LoadedSam3:
    """Load detector, tracker and processors of a SAM 3 checkpoint, sharing one ViT trunk.

    ``compile=True`` compiles the backbone with ``torch.compile`` (worth it on a GPU for long runs; the
    first image then takes longer).
    """
    from transformers import Sam3Model, Sam3Processor, Sam3TrackerModel, Sam3TrackerProcessor

    target = load_target(model, device, dtype, revision, token, local_files_only)
    name, hub = target.name, target.hub
    with hub_loading(name):
        processor = Sam3Processor.from_pretrained(name, **hub)
        tracker_processor = Sam3TrackerProcessor.from_pretrained(name, **hub)
        detector = Sam3Model.from_pretrained(name, dtype=target.dtype, **hub)
        tracker = Sam3TrackerModel.from_pretrained(name, dtype=target.dtype, **hub)
    shared = share_backbone(detector, tracker)
    detector.to(target.device).eval()
    tracker.to(target.device).eval()
    if compile:
        detector.vision_encoder.backbone.compile()  # in place: the tracker shares this module
    return LoadedSam3(
        detector, tracker, processor, tracker_processor, name, revision, target.device, target.dtype, shared
    )


def release_freed_memory() -> None:
    """Hand memory freed by Python back to the OS (glibc keeps freed heap pages otherwise).

    Dropping the tracker's copy of the backbone frees about 1.8 GB in float32; without this the process
    would keep it resident.
    """
    import ctypes
    import gc
    import sys

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:  # not glibc (e.g. musl): nothing to trim
            pass


def share_backbone(detector: Any, tracker: Any) -> bool:
    """Give the tracker the detector's ViT trunk when their weights are the same (one copy in memory).

    The comparison samples a few values of every tensor (shapes all, first and last values, 16 spread
    through it) instead of reading them whole: a full read would page the tracker's memory-mapped copy
    of the 1.8 GB backbone into memory just to throw it away.
    """
    import torch

    det = detector.vision_encoder.backbone
    trk = tracker.vision_encoder.backbone
    det_state, trk_state = det.state_dict(), trk.state_dict()

    def sample(t: Any) -> Any:
        flat = t.reshape(-1)
        idx = torch.linspace(0, flat.numel() - 1, 16, device=flat.device).long()
        return torch.cat([flat[:8], flat[idx], flat[-8:]])

    same = det_state.keys() == trk_state.keys() and all(
        det_state[k].shape == trk_state[k].shape
        and det_state[k].dtype == trk_state[k].dtype
        and torch.equal(sample(det_state[k]), sample(trk_state[k]))
        for k in det_state
    )
    if same:
        tracker.vision_encoder.backbone = det
        del trk, trk_state
        release_freed_memory()
    else:
        log.warning("detector and tracker backbones differ in this checkpoint; keeping both in memory")
    return same
