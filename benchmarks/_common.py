"""Shared bits of the benchmark scripts: timing, memory, machine description, argument parsing."""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--dtype", default="auto", help="auto (bfloat16 on CUDA), float32, bfloat16")
    p.add_argument("--small", action="store_true", help="a small random config instead of the full-size one")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions of each measurement")
    return p


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.small:
        return dict(image_size=336, hidden=64, vit_layers=4, vit_hidden=64, num_queries=50)
    return dict(full_size=True)


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str, repeat: int = 3, warmup: int = 0) -> float:
    """Median wall time of ``fn`` in seconds (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def machine(device: str) -> str:
    import os

    import torch

    if str(device).startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    )
