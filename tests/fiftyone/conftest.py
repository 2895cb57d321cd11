"""Fixtures for the FiftyOne front end: a private FiftyOne database and plugins folder, small images of
several sizes and modes, and datasets that are deleted after each test.

FiftyOne reads its configuration when it is first imported, so the environment is set here, at import
time, before any test module imports it. A private ``FIFTYONE_DATABASE_DIR`` alone does not isolate the
tests: FiftyOne attaches to any database service already running on the machine (an open App, say),
whatever its folder. So the tests start their own ``mongod`` (the one FiftyOne ships) on a free port and
point ``FIFTYONE_DATABASE_URI`` at it.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest


def _start_private_mongod(folder: Path) -> str:
    """Start FiftyOne's bundled mongod on a free local port with its data in ``folder``; return its URI."""
    package = Path(importlib.util.find_spec("fiftyone").submodule_search_locations[0])  # not imported
    mongod = package / "db" / "bin" / "mongod"
    folder.mkdir(parents=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(mongod), "--dbpath", str(folder), "--port", str(port), "--bind_ip", "127.0.0.1",
               "--nounixsocket", "--logpath", str(folder / "mongod.log")]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(_stop, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mongod exited with {process.returncode}; see {folder / 'mongod.log'}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"mongodb://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"mongod did not start within 60 s; see {folder / 'mongod.log'}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


_HOME = Path(tempfile.mkdtemp(prefix="sam3kit-fiftyone-tests-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)  # runs after mongod stops (atexit is LIFO)
if "fiftyone" in sys.modules:  # pragma: no cover - a guard for the test setup itself
    raise RuntimeError("fiftyone was imported before tests/fiftyone/conftest.py could isolate its database")
os.environ["FIFTYONE_DATABASE_DIR"] = str(_HOME / "db")
os.environ["FIFTYONE_DATABASE_URI"] = _start_private_mongod(_HOME / "db")
os.environ["FIFTYONE_PLUGINS_DIR"] = str(_HOME / "plugins")
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"

#: (height, width, PIL mode) of the test images: different sizes, RGB, grayscale and RGBA.
IMAGE_SPECS = [(48, 64, "RGB"), (40, 56, "L"), (52, 36, "RGBA"), (48, 64, "RGB"), (36, 60, "RGB")]


def write_image(path: Path, height: int, width: int, mode: str, seed: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 4 % 256, yy * 5 % 256, rng.integers(0, 255, (height, width))], -1).astype(np.uint8)
    rgb[(yy - height // 2) ** 2 + (xx - width // 2) ** 2 < (min(height, width) // 4) ** 2] = 255
    image = Image.fromarray(rgb)
    if mode == "L":
        image = image.convert("L")
    elif mode == "RGBA":
        image = image.convert("RGBA")
        image.putalpha(200)
    image.save(path)
    return path


@pytest.fixture(scope="session")
def image_files(tmp_path_factory):
    """Five PNG files: (path, height, width) of each, in IMAGE_SPECS order."""
    folder = tmp_path_factory.mktemp("fo-images")
    return [
        (str(write_image(folder / f"img{i}.png", h, w, mode, seed=i)), h, w)
        for i, (h, w, mode) in enumerate(IMAGE_SPECS)
    ]


@pytest.fixture
def make_dataset(image_files):
    """``make_dataset(files=None, persistent=False)``: a new dataset (unique name) of those image files,
    deleted when the test ends."""
    import fiftyone as fo

    made = []

    def make(files=None, persistent=False):
        dataset = fo.Dataset()
        dataset.persistent = persistent
        paths = [f[0] for f in image_files] if files is None else files
        dataset.add_samples([fo.Sample(filepath=p) for p in paths])
        made.append(dataset)
        return dataset

    yield make
    for dataset in made:
        if not dataset.deleted:
            dataset.delete()


@pytest.fixture
def dataset(make_dataset):
    return make_dataset()


@pytest.fixture
def spy(segmenter, monkeypatch):
    """Record what the core receives: each ``segment`` call's image size and request, and each
    ``iter_batch`` call's sources and request."""

    class Spy:
        segment_calls: list = []
        batch_calls: list = []

    spy = Spy()
    spy.segment_calls, spy.batch_calls = [], []
    original_segment, original_iter = segmenter.segment, segmenter.iter_batch

    def segment(image=None, request=None, **fields):
        size = image.size if hasattr(image, "size") and isinstance(image.size, tuple) else None
        spy.segment_calls.append((size, request))
        return original_segment(image, request, **fields)

    def iter_batch(images, request=None, **options):
        spy.batch_calls.append((list(images), request))
        return original_iter(images, request, **options)

    monkeypatch.setattr(segmenter, "segment", segment)
    monkeypatch.setattr(segmenter, "iter_batch", iter_batch)
    return spy


@pytest.fixture(scope="session")
def installed_plugin():
    """The sam3kit plugin installed into this session's FiftyOne plugins folder."""
    from sam3kit.fiftyone import install_plugin

    return install_plugin()
