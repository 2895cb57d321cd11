"""Re-prompting a cached image vs a cold prompt, with the full-size SAM 3 architecture (random weights).

Prints: cold text prompt (backbone + heads), a new text prompt on the cached image, the ratio; and point /
box prompts through the tracker on the cached image (ms). Run: ``python benchmarks/bench_reprompt.py``.
"""

from __future__ import annotations

import numpy as np
from _common import machine, model_kwargs, parser, timed

from sam3kit import PointPrompt, Sam3Segmenter, SegmentRequest
from sam3kit.request import BoxPrompt
from sam3kit.testing import random_sam3


def main() -> None:
    args = parser(__doc__).parse_args()
    seg = Sam3Segmenter(random_sam3(args.device, args.dtype, **model_kwargs(args)), cache_size=0)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (768, 1024, 3), dtype=np.uint8)
    print(f"machine: {machine(seg.device)}; dtype {seg.dtype}; input {seg.loaded.processor.target_size} px")

    cold = timed(lambda: seg.segment(image, prompt="cell"), seg.device, args.repeat)
    seg.image_cache.maxsize = 8
    seg.segment(image, prompt="cell")  # fills the cache
    phrases = iter(f"concept {i}" for i in range(10**6))
    warm_text = timed(lambda: seg.segment(image, prompt=next(phrases)), seg.device, args.repeat)
    print(f"cold text prompt (backbone + heads): {cold * 1000:9.1f} ms")
    print(
        f"new text prompt, cached image:       {warm_text * 1000:9.1f} ms   -> {cold / warm_text:.1f}x faster"
    )

    seg.segment(image, point_prompts=[PointPrompt(500, 400)])  # derives the tracker's features once
    clicks = iter(range(10**6))
    point = timed(
        lambda: seg.segment(image, point_prompts=[PointPrompt(100 + next(clicks) % 800, 300)]),
        seg.device,
        args.repeat,
    )
    box = timed(
        lambda: seg.segment(image, SegmentRequest(box_prompts=[BoxPrompt(100, 100, 400, 380)])),
        seg.device,
        args.repeat,
    )
    print(f"point prompt, cached image:          {point * 1000:9.1f} ms")
    print(f"box prompt, cached image:            {box * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
