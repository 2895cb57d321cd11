"""Enriching a FiftyOne dataset: ``apply_sam3`` vs the naive loop, on the same model in one process.

Naive: for each sample, read the image, run transformers' ``Sam3Processor`` (image and text) and
``Sam3Model``, ``post_process_instance_segmentation``, build ``fo.Detections`` (each mask cropped to its tight box,
FiftyOne's convention, as sam3kit stores them) and ``sample.save()``. Fast: ``sam3kit.fiftyone.apply_sam3`` (images decoded in background threads,
text encoded once, backbone batched, masks kept as crops, one bulk write per batch). Both write the same
kind of field to a real FiftyOne dataset of ``--images`` PNGs (640 x 480). By default the model is a small
random SAM 3 (336 px input) so that a CPU run takes minutes; ``--config full`` is the released architecture.
Run: ``python benchmarks/bench_fiftyone.py``.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--config", choices=["tiny", "small", "full"], default="small",
                        help="tiny: 112 px input; small: 336 px input; full: the released architecture")
    args = parser.parse_args()

    import fiftyone as fo

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
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), args.images)
        dataset = fo.Dataset()
        dataset.add_samples([fo.Sample(filepath=p) for p in paths])
        try:
            # warm-up: one image through each path, so both start with a loaded, initialised model
            naive(dataset.limit(1), seg, prompt, threshold, "warmup_naive")
            apply_sam3(dataset.limit(1), prompt, "warmup_fast", model=seg, score_threshold=threshold,
                       progress=False)
            start = time.perf_counter()
            naive(dataset, seg, prompt, threshold, "naive")
            slow = time.perf_counter() - start
            start = time.perf_counter()
            summary = apply_sam3(dataset, prompt, "sam3", model=seg, score_threshold=threshold,
                                 batch_size=args.batch_size, progress=False)
            fast = time.perf_counter() - start
            n_naive = sum(len(d.detections) for d in dataset.values("naive"))
            n_fast = sum(len(d.detections) for d in dataset.values("sam3"))
        finally:
            dataset.delete()
    size = {"tiny": "tiny (112 px input)", "small": "small (336 px input)", "full": "full-size"}[args.config]
    print(f"{args.images} images 640x480, {size} random SAM 3, device {seg.device}, batch {args.batch_size}")
    print(f"naive loop (processor + model + post-processing + sample.save): {slow:7.1f} s, "
          f"{args.images / slow:5.2f} images/s, {n_naive} instances")
    print(f"apply_sam3:                                                    {fast:7.1f} s, "
          f"{args.images / fast:5.2f} images/s, {n_fast} instances ({summary.done} done)")
    print(f"ratio: {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
