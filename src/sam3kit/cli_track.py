"""``sam3kit track``: propagate prompts through a video or z-stack from the command line.

``sam3kit track INPUT --out DIR`` reads a video file, a folder of frames, or a ``.npy``/``.tif`` stack, prompts
frame ``--frame`` with ``--prompt``/``--point``/``--box`` (pixels, as ``sam3kit segment``), tracks forward,
backward or both, and writes ``DIR/labels/<frame>.png`` (16-bit; each pixel holds its object's id, the same
id on every frame) for every frame visited, then ``DIR/track.json`` (objects, frames, ids, model, prompts).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .cli import add_model_arguments, add_prompt_arguments, build_request


def add_track_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``track`` subcommand to ``sam3kit``'s subparsers."""
    track = subparsers.add_parser("track", help="propagate prompts through a video, frame folder or stack")
    track.add_argument("input", metavar="INPUT", help="video file, folder of frames, or .npy/.tif stack")
    track.add_argument("--out", required=True, type=Path, help="output folder")
    add_prompt_arguments(track, " of the prompt frame")
    track.add_argument(
        "--frame", type=int, default=0, help="the frame the prompts are on (0-based; default 0)"
    )
    track.add_argument(
        "--direction",
        choices=["forward", "backward", "both"],
        default="both",
        help="track after the prompt frame, before it, or both (default)",
    )
    track.add_argument(
        "--intensity",
        default="stack",
        help="how non-8-bit frames become 8-bit: stack (one range for all frames, default), frame "
        "(each frame on its own), or LOW,HIGH",
    )
    track.add_argument(
        "--score-threshold", type=float, help="keep concept detections scoring above this (default 0.5)"
    )
    add_model_arguments(track)
    track.set_defaults(func=cmd_track, max_masks=None, output_format=None)
    return track


def _intensity(text: str) -> str | tuple[float, float]:
    if text in ("stack", "frame"):
        return text
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--intensity takes stack, frame or LOW,HIGH, got {text!r}") from None
    return low, high


def cmd_track(args: argparse.Namespace) -> int:
    """Run ``sam3kit track``; returns the exit status (0 done, 2 bad input, 3 model not loadable)."""
    from .errors import ModelLoadError
    from .frames import open_frames
    from .images import ImageError
    from .model import DEFAULT_MODEL
    from .request import RequestError
    from .video import Sam3VideoSegmenter

    try:
        request = build_request(args)
        intensity = _intensity(args.intensity)
        frames = open_frames(args.input)  # before loading the model: a bad input fails fast
    except (RequestError, ImageError, ValueError) as exc:
        print(f"sam3kit: {exc}", file=sys.stderr)
        return 2
    try:
        video = Sam3VideoSegmenter.from_pretrained(
            args.model or DEFAULT_MODEL, device=args.device, dtype=args.dtype
        )
    except ModelLoadError as exc:
        frames.close()
        print(f"sam3kit: {exc}", file=sys.stderr)
        return 3
    try:
        session = video.init_video_session(frames, intensity=intensity)
        summary = _run(session, request, args)
    except (RequestError, ImageError, ValueError) as exc:
        print(f"sam3kit: {exc}", file=sys.stderr)
        return 2
    finally:
        frames.close()
    tmp = args.out / ".track.json.part"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(args.out / "track.json")
    print(
        f"sam3kit: {len(summary['frames'])} frames, {len(summary['objects'])} objects -> {args.out}",
        file=sys.stderr,
    )
    return 0


def _run(session: Any, request: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Prompt, propagate, write one label PNG per visited frame; return the JSON summary."""
    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from . import __version__

    labels_dir = args.out / "labels"
    labels_dir.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(session.num_frames - 1)))
    frames: list[dict[str, Any]] = []
    session.add_prompt(args.frame, request)
    with tqdm(unit="frame", disable=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        for frame in session.propagate(args.direction, start_frame_idx=args.frame, progress=progress):
            file = f"labels/{frame.frame_idx:0{digits}d}.png"
            Image.fromarray(frame.label_image(np.uint16)).save(args.out / file)
            frames.append(_frame_entry(frame, file, session.frames.name(frame.frame_idx)))
    frames.sort(key=lambda f: f["frame"])
    seg = session.segmenter
    return {
        "input": str(args.input),
        "num_frames": session.num_frames,
        "frame_size": list(session.frame_size),
        "prompt_frame": args.frame,
        "direction": args.direction,
        "intensity": session.scaling.to_dict(),
        "model": seg.model_id,
        "revision": seg.revision,
        "device": seg.device,
        "dtype": str(seg.dtype).replace("torch.", ""),
        "sam3kit_version": __version__,
        "prompts": session.requests,
        "objects": _objects(frames),
        "frames": frames,
    }


def _frame_entry(frame: Any, file: str, name: str) -> dict[str, Any]:
    result = frame.result
    areas = result.mask_crops.areas()
    objects = [
        {
            "object_id": int(result.object_ids[i]),
            "score": float(result.scores[i]),
            "box_xyxy": [float(v) for v in result.boxes[i]],
            "area": int(areas[i]),
            "source": result.sources[i],
            "concept": result.concepts[i],
        }
        for i in range(len(result))
    ]
    return {"frame": frame.frame_idx, "name": name, "file": file, "objects": objects}


def _objects(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per object id: where it came from and the frames it appears on."""
    found: dict[int, dict[str, Any]] = {}
    for frame in frames:
        for obj in frame["objects"]:
            entry = found.setdefault(
                obj["object_id"],
                {
                    "object_id": obj["object_id"],
                    "source": obj["source"],
                    "concept": obj["concept"],
                    "frames": [],
                },
            )
            entry["frames"].append(frame["frame"])
    for entry in found.values():
        entry["first_frame"], entry["last_frame"] = entry["frames"][0], entry["frames"][-1]
    return [found[i] for i in sorted(found)]
