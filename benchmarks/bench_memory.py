"""Memory of the detector and tracker loaded together vs the detector alone (one shared backbone).

Saves a randomly initialised full-size SAM 3 checkpoint once (about 3.4 GB, in --folder), then in two
child processes loads (a) ``Sam3Model`` alone and (b) sam3kit's detector + tracker, runs one text prompt
(and, for b, one point prompt) on a 1008 x 1008 image, and reports peak and resident memory. Run:
``python benchmarks/bench_memory.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def rss_mb() -> tuple[float, float]:
    """(peak, current) resident memory of this process in MB, from /proc (ru_maxrss survives exec)."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


def rss_file_mb() -> float:
    """The part of resident memory that is mapped files (the safetensors weights), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(which: str, folder: str, small: bool) -> dict:
    import torch

    image = np.random.default_rng(0).integers(0, 255, (1008, 1008, 3), dtype=np.uint8)
    if which == "detector":
        from transformers import Sam3Model, Sam3Processor

        processor = Sam3Processor.from_pretrained(folder)
        model = Sam3Model.from_pretrained(folder).eval()
        loaded_peak, loaded_now = rss_mb()
        with torch.inference_mode():
            model(**processor(images=image, text="cell", return_tensors="pt"))
    else:
        from sam3kit import PointPrompt, Sam3Segmenter

        seg = Sam3Segmenter.from_pretrained(folder, device="cpu")
        assert seg.loaded.backbone_shared
        loaded_peak, loaded_now = rss_mb()
        seg.segment(image, prompt="cell")
        seg.segment(image, point_prompts=[PointPrompt(500, 500)])
    peak, now = rss_mb()
    return {"after_load_mb": loaded_now, "load_peak_mb": loaded_peak, "peak_mb": peak, "resident_mb": now,
            "file_mb": rss_file_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "sam3kit-bench-full")
    parser.add_argument("--small", action="store_true", help="a small config (quick check of the script)")
    parser.add_argument("--child", choices=["detector", "both"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, str(args.folder), args.small)))
        return
    if not (args.folder / "model.safetensors").exists():
        from sam3kit.testing import build_checkpoint

        kwargs = dict(image_size=1008) if args.small else dict(full_size=True)
        build_checkpoint(args.folder, **kwargs)
    stats = {}
    for which in ("detector", "both"):
        cmd = [sys.executable, __file__, "--child", which, "--folder", str(args.folder)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        stats[which] = json.loads(proc.stdout.strip().splitlines()[-1])
    d, b = stats["detector"], stats["both"]
    print("MB                      after load   load peak   peak (after prompts)   resident   mapped files")
    for name, s in (("detector alone", d), ("detector + tracker", b)):
        print(
            f"{name:22s} {s['after_load_mb']:10.0f} {s['load_peak_mb']:11.0f} {s['peak_mb']:22.0f} "
            f"{s['resident_mb']:10.0f} {s['file_mb']:14.0f}"
        )
    print(
        f"ratio (detector + tracker / detector): after load {b['after_load_mb'] / d['after_load_mb']:.2f}x, "
        f"peak {b['peak_mb'] / d['peak_mb']:.2f}x, resident {b['resident_mb'] / d['resident_mb']:.2f}x"
    )


if __name__ == "__main__":
    main()
