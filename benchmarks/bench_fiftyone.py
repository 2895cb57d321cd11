"""Enriching a FiftyOne dataset: ``apply_sam3`` vs the naive loop, on the same model in one process.

Naive: for each sample, read the image, run transformers' ``Sam3Processor`` (image and text) and
``Sam3Model``, ``post_process_instance_segmentation``, build ``fo.Detections`` (each mask cropped to its
tight box, FiftyOne's convention, as sam3kit stores them) and ``sample.save()``; timed with torch's default
thread count and with one thread, and the faster is the baseline. Fast: ``sam3kit.fiftyone.apply_sam3``
(images decoded in background threads, text encoded once, backbone batched, masks kept as crops, one bulk
write per batch from a writer thread). Every run writes to a new real FiftyOne dataset of the same
``--images`` PNGs (640 x 480); the paths are interleaved and repeated, and medians are reported. By default
the model is a small random SAM 3 (336 px input) so that a CPU run takes seconds; ``--config full`` is the
released architecture. Run: ``python benchmarks/bench_fiftyone.py``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def make_images(folder: Path, count: int) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"img{i:04d}.png"
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def naive(dataset, seg, prompt: str, threshold: float, field: str) -> None:
    import fiftyone as fo
    import torch
    from PIL import Image

    processor, model = seg.loaded.processor, seg.loaded.detector
    for sample in dataset.iter_samples(autosave=False):
        image = np.asarray(Image.open(sample.filepath).convert("RGB"))
        h, w = image.shape[:2]
        inputs = processor(images=image, text=prompt, return_tensors="pt").to(seg.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(seg.dtype)
        with torch.inference_mode():
            out = model(**inputs)
        (res,) = processor.post_process_instance_segmentation(out, threshold, 0.5, target_sizes=[(h, w)])
        detections = []
        for score, mask in zip(res["scores"].tolist(), res["masks"].numpy().astype(bool)):
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            if rows.size == 0:
                continue
            y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # FiftyOne: the mask fills its box
            detections.append(fo.Detection(label=prompt, confidence=score,
                                           bounding_box=[x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h],
                                           mask=mask[y0:y1, x0:x1]))
        sample[field] = fo.Detections(detections=detections)
        sample.save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each path; the median is reported")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--config", choices=["tiny", "small", "full"], default="small",
                        help="tiny: 112 px input; small: 336 px input; full: the released architecture")
    args = parser.parse_args()

    import fiftyone as fo
    import torch

    from sam3kit import Sam3Segmenter
    from sam3kit.fiftyone import apply_sam3
    from sam3kit.testing import random_sam3

    config = {
        "tiny": dict(num_queries=20),
        "small": dict(image_size=336, hidden=64, vit_layers=4, vit_hidden=64, num_queries=20),
        "full": dict(full_size=True),
    }[args.config]
    seg = Sam3Segmenter(random_sam3(args.device, args.dtype, **config), cache_size=0)
    prompt, threshold = "cell", 0.2  # random weights score about 0.25: every query is kept, in both paths
    threads = torch.get_num_threads()
    times: dict[str, list[float]] = {}
    counts: dict[str, int] = {}

    def timed(name, paths, run):
        """Run ``run(dataset)`` on a new dataset of ``paths`` (no other fields to load); time it."""
        dataset = fo.Dataset()
        dataset.add_samples([fo.Sample(filepath=p) for p in paths])
        try:
            start = time.perf_counter()
            run(dataset)
            times.setdefault(name, []).append(time.perf_counter() - start)
            counts[name] = sum(len(d.detections) for d in dataset.values("out") if d is not None)
        finally:
            dataset.delete()

    def naive_with(n_threads):
        def run(dataset):
            torch.set_num_threads(n_threads)
            try:
                naive(dataset, seg, prompt, threshold, "out")
            finally:
                torch.set_num_threads(threads)
        return run

    def fast(dataset):
        apply_sam3(dataset, prompt, "out", model=seg, score_threshold=threshold, batch_size=args.batch_size,
                   progress=False)

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), args.images)
        # warm-up: one image through each path, so all start with a loaded, initialised model
        for run in (naive_with(threads), fast):
            timed("warm-up", paths[:1], run)
        for _ in range(args.repeats):  # interleaved, so that a busy spell of the machine hits every path
            timed(f"naive loop, {threads} torch threads (default)", paths, naive_with(threads))
            if threads > 1:
                timed("naive loop, 1 torch thread", paths, naive_with(1))
            timed("apply_sam3", paths, fast)
    size = {"tiny": "tiny (112 px input)", "small": "small (336 px input)", "full": "full-size"}[args.config]
    print(f"{args.images} images 640x480, {size} random SAM 3, device {seg.device}, batch {args.batch_size}, "
          f"median of {args.repeats}")
    median = {name: statistics.median(t) for name, t in times.items() if name != "warm-up"}
    for name, seconds in median.items():
        print(f"{name:42s} {seconds:7.2f} s, {args.images / seconds:6.2f} images/s, {counts[name]} instances")
    best_naive = min(v for k, v in median.items() if k.startswith("naive"))
    print(f"ratio, apply_sam3 against the faster naive loop: {best_naive / median['apply_sam3']:.2f}x")


if __name__ == "__main__":
    main()
