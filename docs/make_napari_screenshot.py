"""Render docs/images/napari-widget.png: the SAM 3 widget docked beside an image, prompts and labels.

Uses a tiny randomly initialised SAM 3 (``sam3kit.testing.build_checkpoint``), so it runs offline in
seconds, and the masks are random-looking. Needs a display; on a headless machine run it under Xvfb:

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python docs/make_napari_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "images" / "napari-widget.png"


def wait(widget, timeout: float = 120.0) -> None:
    """Let the event loop run until the widget's background job has finished."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while widget.busy and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)
    QApplication.processEvents()


def main(out: Path = OUT) -> Path:
    from sam3kit import Sam3Segmenter
    from sam3kit.testing import build_checkpoint

    folder = build_checkpoint(Path(tempfile.mkdtemp()) / "sam3-tiny")
    segmenter = Sam3Segmenter.from_pretrained(str(folder), device="cpu")  # before the GL canvas exists

    import napari

    from sam3kit.napari.models import share_segmenter

    share_segmenter(str(folder), "cpu", segmenter)
    viewer = napari.Viewer(title="sam3kit", show=True)
    viewer.window.resize(1400, 900)
    viewer.open_sample("sam3kit", "cells")
    _, widget = viewer.window.add_plugin_dock_widget("sam3kit", "SAM 3 segmentation")
    widget.model.value, widget.device.value = str(folder), "cpu"

    # first a text prompt, accepted into "<image> SAM 3"
    widget.text.value = "cell"
    widget.threshold.value = 0.251  # the random model scores every query about 0.25
    widget.segment()
    wait(widget)
    widget.accept()
    viewer.layers["synthetic cells SAM 3"].contour = 2  # outlines, so the cells stay visible beneath

    # then an object from clicks and a box, left in the preview
    widget.text.value = ""
    points = widget.add_points_layer()
    points.add(np.array([[120.0, 100.0], [140.0, 120.0]]))
    widget.polarity.value = 0
    points.add(np.array([[60.0, 200.0]]))
    boxes = widget.add_boxes_layer()
    boxes.add_rectangles(np.array([[170.0, 30.0], [230.0, 95.0]]))
    widget.segment()
    wait(widget)
    viewer.layers.selection.active = points
    viewer.reset_view()

    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    viewer.close()
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
