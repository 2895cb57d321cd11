"""Post-processing a large image with many instances: cropped masks vs the naive full-resolution path.

A 4096 x 4096 image and 100 instances (low-resolution mask logits as SAM 3 produces them, 288 x 288).
Naive: transformers' ``post_process_instance_segmentation`` (all N masks upsampled to H x W as floats, then
binarised as int64) and a label image painted from the N full masks. Fast: sam3kit's crops
(:func:`sam3kit.masks.upsample_to_crops`) and the label image painted from them. Each path runs in a child
process so its peak memory is its own. Run: ``python benchmarks/bench_large_image.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

LOW = 288
SIZE, N = 4096, 100  # set from the command line


def fake_outputs():
    """Mask logits for N blobs of 40..200 px scattered over the image, plus scores and boxes."""
    import torch

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:LOW, 0:LOW]
    logits = np.full((N, LOW, LOW), -8.0, np.float32)
    for i in range(N):
        cy, cx = rng.uniform(10, LOW - 10, 2)
        r = rng.uniform(1.5, 7.0)  # 288 px -> 4096 px: about 21..100 px radius
        logits[i] = 8.0 * (1.0 - np.hypot(yy - cy, xx - cx) / r)
    return {
        "pred_masks": torch.from_numpy(logits)[None],
        "pred_logits": torch.full((1, N), 3.0),
        "presence_logits": torch.full((1, 1), 5.0),
        "pred_boxes": torch.rand(1, N, 4).sort(-1).values,
    }


def run_naive() -> dict:
    from types import SimpleNamespace

    from transformers import Sam3ImageProcessor

    out = SimpleNamespace(**fake_outputs())
    start = time.perf_counter()
    (res,) = Sam3ImageProcessor().post_process_instance_segmentation(
        out, 0.5, 0.5, target_sizes=[(SIZE, SIZE)]
    )
    masks = res["masks"].numpy().astype(bool)
    labels = np.zeros((SIZE, SIZE), np.uint16)
    for i in np.argsort(res["scores"].numpy(), kind="stable"):
        labels[masks[i]] = i + 1
    return {
        "seconds": time.perf_counter() - start,
        "masks": int(len(masks)),
        "pixels": int((labels > 0).sum()),
    }


def run_crops() -> dict:
    from sam3kit.masks import upsample_to_crops
    from sam3kit.result import SegmentationResult

    out = fake_outputs()
    start = time.perf_counter()
    probs = out["pred_masks"][0].sigmoid().numpy()
    crops = upsample_to_crops(probs, (SIZE, SIZE), 0.5)
    result = SegmentationResult(
        (SIZE, SIZE), crops, np.full(N, 0.9), np.zeros((N, 4)), np.arange(N), ["concept"] * N, ["cell"] * N
    )
    labels = result.label_image()
    return {
        "seconds": time.perf_counter() - start,
        "masks": len(crops),
        "pixels": int((labels > 0).sum()),
        "crop_mb": crops.nbytes / 2**20,
    }


def child(which: str) -> dict:
    import resource

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fake_outputs()  # imports and inputs count in the baseline, not in the path
    after_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stats = run_naive() if which == "naive" else run_crops()
    stats["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats["setup_mb"] = max(base, after_setup) / 1024
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", choices=["naive", "crops"])
    parser.add_argument("--size", type=int, default=4096, help="image side in pixels")
    parser.add_argument("--n", type=int, default=100, help="instances")
    parser.add_argument(
        "--only",
        choices=["naive", "crops"],
        help="run one path (the naive one needs about 20 GB at 4096 px and 100 instances)",
    )
    args = parser.parse_args()
    global SIZE, N
    SIZE, N = args.size, args.n
    if args.child:
        print(json.dumps(child(args.child)))
        return
    stats = {}
    for which in [args.only] if args.only else ["naive", "crops"]:
        cmd = [sys.executable, __file__, "--child", which, "--size", str(SIZE), "--n", str(N)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        stats[which] = json.loads(proc.stdout.strip().splitlines()[-1])
    if args.only:
        s = stats[args.only]
        print(
            f"{SIZE}x{SIZE}, {N} instances, {args.only}: {s['seconds']:.2f} s, peak RSS {s['peak_mb']:.0f} MB"
        )
        return
    naive, fast = stats["naive"], stats["crops"]
    assert naive["masks"] == fast["masks"], "both paths must keep the same instances"
    print(f"{SIZE}x{SIZE} image, {N} instances, masks predicted at {LOW}x{LOW}")
    print(f"naive (full-resolution masks): {naive['seconds']:7.2f} s, peak RSS {naive['peak_mb']:8.0f} MB")
    print(
        f"sam3kit crops:                 {fast['seconds']:7.2f} s, peak RSS {fast['peak_mb']:8.0f} MB "
        f"(crops hold {fast['crop_mb']:.1f} MB)"
    )
    print(
        f"ratio: {naive['seconds'] / fast['seconds']:.1f}x faster, "
        f"{(naive['peak_mb'] - naive['setup_mb']) / max(fast['peak_mb'] - fast['setup_mb'], 1):.1f}x less memory "
        f"above the {fast['setup_mb']:.0f} MB both start from"
    )
    print(f"labelled pixels: naive {naive['pixels']}, crops {fast['pixels']}")


if __name__ == "__main__":
    main()
