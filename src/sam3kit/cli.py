"""The ``sam3kit`` command line: thin over the public API.

``sam3kit segment INPUT... --out DIR`` writes, per image ``NAME``: ``NAME.json`` (the hosted API's response
schema), ``NAME_labels.png`` (16-bit instance labels), ``NAME_preview.<fmt>`` and ``NAME_masks/NNN.<fmt>``.
An image whose ``NAME.json`` exists is skipped unless ``--overwrite``; the JSON is written last, so an
interrupted image is redone on the next run.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"}

log = logging.getLogger("sam3kit")


def _point(text: str) -> dict[str, Any]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3, 4):
        raise argparse.ArgumentTypeError(f"--point takes x,y[,label[,object_id]], got {text!r}")
    try:
        point: dict[str, Any] = {"x": float(parts[0]), "y": float(parts[1])}
        if len(parts) > 2:
            point["label"] = int(parts[2])
        if len(parts) > 3:
            point["object_id"] = int(parts[3])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--point takes numbers x,y[,label[,object_id]], got {text!r}"
        ) from None
    return point


def _box(text: str) -> dict[str, Any]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (4, 5):
        raise argparse.ArgumentTypeError(f"--box takes x0,y0,x1,y1[,object_id] in pixels, got {text!r}")
    try:
        box: dict[str, Any] = dict(zip(("x_min", "y_min", "x_max", "y_max"), map(float, parts[:4])))
        if len(parts) == 5:
            box["object_id"] = int(parts[4])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--box takes numbers x0,y0,x1,y1[,object_id], got {text!r}"
        ) from None
    return box


def add_prompt_arguments(parser: argparse.ArgumentParser, where: str) -> None:
    """``--prompt``, ``--point``, ``--box`` and ``--request``; ``where`` qualifies the pixels (" of the frame")."""
    parser.add_argument("--prompt", help='text concept(s): "cell" or "cell, nucleus"')
    parser.add_argument(
        "--point",
        action="append",
        type=_point,
        default=[],
        metavar="X,Y[,LABEL[,OBJECT_ID]]",
        help=f"point prompt in pixels{where}; label 1 foreground (default) or 0 background; repeatable",
    )
    parser.add_argument(
        "--box",
        action="append",
        type=_box,
        default=[],
        metavar="X0,Y0,X1,Y1[,OBJECT_ID]",
        help=f"box prompt in pixels{where}; repeatable",
    )
    parser.add_argument("--request", type=Path, help="a JSON request body in the hosted SAM 3 API's format")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device`` and ``--dtype``."""
    parser.add_argument("--model", default=None, help="hub id or local folder (default: facebook/sam3)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--dtype", default="auto", help="auto (bfloat16 on CUDA, else float32), float32, bfloat16"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sam3kit", description="SAM 3 segmentation from the command line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser("segment", help="segment images with text, point and box prompts")
    seg.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders or glob patterns")
    seg.add_argument("--out", required=True, type=Path, help="output folder")
    add_prompt_arguments(seg, "")
    add_model_arguments(seg)
    seg.add_argument("--batch-size", type=int, default=4, help="images per backbone batch")
    seg.add_argument(
        "--score-threshold", type=float, help="keep concept masks scoring above this (default 0.5)"
    )
    seg.add_argument("--max-masks", type=int, help="at most this many masks per concept")
    seg.add_argument("--format", dest="output_format", choices=["png", "jpeg", "webp"], help="image format")
    seg.add_argument("--rle", action="store_true", help="store masks as COCO RLE in the JSON, not as images")
    seg.add_argument("--overwrite", action="store_true", help="redo images whose results exist")

    info = sub.add_parser("info", help="print versions, the device, and whether the model is cached")
    info.add_argument("--model", default=None, help="hub id or local folder (default: facebook/sam3)")

    from .cli_track import add_track_parser  # here: cli_track imports this module's prompt parsers

    add_track_parser(sub)
    return parser


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files, folders (their images, sorted) and globs -> image paths; also the inputs that matched nothing."""
    found: list[Path] = []
    missing: list[str] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.exists():
            found.append(path)
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(item), recursive=True))
            found += [p for p in matches if p.is_file()]
            if not matches:
                missing.append(item)
        else:
            missing.append(item)
    unique = list(dict.fromkeys(found))
    return unique, missing


def output_names(paths: list[Path]) -> list[str]:
    """A distinct output name per image: its stem, with a suffix where two images share one."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for path in paths:
        stem = path.stem
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        names.append(stem if count == 0 else f"{stem}_{count}")
    return names


def build_request(args: argparse.Namespace) -> Any:
    from .request import SegmentRequest

    body: dict[str, Any] = {}
    if args.request is not None:
        try:
            body = json.loads(args.request.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"sam3kit: cannot read request {args.request}: {exc}") from None
    if args.prompt is not None:
        body["prompt"] = args.prompt
    if args.point:
        body["point_prompts"] = list(body.get("point_prompts", [])) + args.point
    if args.box:
        body["box_prompts"] = list(body.get("box_prompts", [])) + args.box
    for name in ("score_threshold", "max_masks", "output_format"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    return SegmentRequest.from_dict(body)


def write_outputs(out: Path, name: str, rgb: Any, result: Any, request: Any, rle: bool) -> None:
    """Write one image's masks, label image, preview and JSON (JSON last: it marks the image done)."""
    import numpy as np
    from PIL import Image

    from .result import encode_image

    fmt = request.output_format
    ext = "jpg" if fmt == "jpeg" else fmt
    files: dict[str, str] = {}
    Image.fromarray(result.label_image(np.uint16)).save(out / f"{name}_labels.png")
    preview = out / f"{name}_preview.{ext}"
    preview.write_bytes(encode_image(result.preview(rgb, request.apply_mask), fmt))
    files["image"] = preview.name
    if not rle:
        mask_dir = out / f"{name}_masks"
        mask_dir.mkdir(exist_ok=True)
        for i, mask in enumerate(result.masks):
            target = mask_dir / f"{i:03d}.{ext}"
            target.write_bytes(encode_image(mask.astype(np.uint8) * 255, fmt))
            files[f"mask_{i}"] = f"{mask_dir.name}/{target.name}"
    body = result.to_dict(
        rgb,
        include_scores=request.include_scores,
        include_boxes=request.include_boxes,
        apply_mask=request.apply_mask,
        output_format=fmt,
        sync_mode=request.sync_mode,
        mask_format="rle" if rle else "image",
        files=files,
    )
    tmp = out / f".{name}.json.part"
    tmp.write_text(json.dumps(body, indent=1))
    tmp.replace(out / f"{name}.json")


def cmd_segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .engine import Sam3Segmenter
    from .errors import ModelLoadError
    from .model import DEFAULT_MODEL
    from .request import RequestError

    try:
        request = build_request(args)
    except RequestError as exc:
        print(f"sam3kit: bad request: {exc}", file=sys.stderr)
        return 2
    paths, missing = expand_inputs(args.inputs)
    for item in missing:
        print(f"sam3kit: no image matches {item}", file=sys.stderr)
    sources: list[Any] = list(paths)
    names = output_names(paths)
    if not sources and request.image_url:
        sources, names = [request.image_url], [Path(request.image_url.split("?")[0]).stem or "image"]
        if request.image_url.startswith("data:"):
            names = ["image"]
    if not sources:
        print(
            "sam3kit: nothing to segment: give image files, folders or globs (or image_url)", file=sys.stderr
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [(s, n) for s, n in zip(sources, names) if args.overwrite or not (args.out / f"{n}.json").exists()]
    skipped = len(sources) - len(todo)
    if skipped:
        print(
            f"sam3kit: {skipped} image(s) already done in {args.out} (use --overwrite to redo)",
            file=sys.stderr,
        )
    if not todo:
        return 1 if missing else 0
    try:
        seg = Sam3Segmenter.from_pretrained(args.model or DEFAULT_MODEL, device=args.device, dtype=args.dtype)
    except ModelLoadError as exc:
        print(f"sam3kit: {exc}", file=sys.stderr)
        return 3
    failed = 0
    names_by_index = [n for _, n in todo]
    with tqdm(total=len(todo), unit="image", disable=None) as bar:
        items = seg.iter_batch_items(
            [s for s, _ in todo], request, batch_size=args.batch_size, errors="return"
        )
        for item in items:
            if isinstance(item.outcome, Exception):
                failed += 1
                tqdm.write(f"sam3kit: skipped {item.source}: {item.outcome}", file=sys.stderr)
            else:
                write_outputs(
                    args.out, names_by_index[item.index], item.image.rgb, item.outcome, request, args.rle
                )
            bar.update(1)
    done = len(todo) - failed
    print(
        f"sam3kit: {done} segmented, {skipped} skipped (done before), {failed} failed -> {args.out}",
        file=sys.stderr,
    )
    return 1 if failed or missing else 0


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import torch
    import transformers

    from . import __version__
    from .model import DEFAULT_MODEL, resolve_device, resolve_dtype

    model = args.model or DEFAULT_MODEL
    device = resolve_device("auto")
    print(f"sam3kit       {__version__}")
    print(f"python        {platform.python_version()}")
    print(
        f"torch         {torch.__version__} (CUDA {'available: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'not available'})"
    )
    print(f"transformers  {transformers.__version__}")
    print(f"device        {device} (dtype {str(resolve_dtype('auto', device)).replace('torch.', '')})")
    print(f"model         {model}: {model_status(model)}")
    return 0


def model_status(model: str) -> str:
    """Where ``model`` would load from: a local folder, the local hub cache, or a download."""
    path = Path(model).expanduser()
    if path.is_dir():
        return (
            f"local folder ({'config.json found' if (path / 'config.json').is_file() else 'no config.json!'})"
        )
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, "config.json")
    if isinstance(cached, str):
        return f"cached ({Path(cached).parent})"
    return "not cached: the first run downloads it (accept the licence on its page, then `hf auth login`)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    if args.command == "segment":
        return cmd_segment(args)
    if args.command == "track":
        from .cli_track import cmd_track

        return cmd_track(args)
    return cmd_info(args)


if __name__ == "__main__":
    sys.exit(main())
