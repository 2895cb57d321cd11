"""Fixtures for the napari front end: the tiny model shared with the widget, and a docked widget."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def _torch_before_opengl():
    """Load torch's optional triton before any viewer: loaded after Mesa's OpenGL it crashes the process
    (the widget guards against that itself; the session's ``segmenter`` fixture loads the model directly)."""
    import torchvision  # noqa: F401  (imports torch._dynamo, which imports triton when installed)


@pytest.fixture
def model_id(tiny_checkpoint, segmenter):
    """The tiny checkpoint's folder, with the session's segmenter offered to the widgets' model cache."""
    from sam3kit.napari.models import share_segmenter

    share_segmenter(str(tiny_checkpoint), "cpu", segmenter)
    return str(tiny_checkpoint)


@pytest.fixture
def make_widget(make_napari_viewer, model_id, qtbot):
    """Build a viewer with the SAM 3 widget docked, set to the tiny model on the CPU."""

    def make(viewer=None):
        from sam3kit.napari.widget import Sam3Widget

        viewer = viewer or make_napari_viewer()
        widget = Sam3Widget(viewer)
        viewer.window.add_dock_widget(widget, name="SAM 3 segmentation")
        widget.model.value = model_id
        widget.device.value = "cpu"
        return viewer, widget

    yield make


@pytest.fixture
def wait_idle(qtbot):
    """Wait until a widget's background job has finished and its results are applied."""

    def wait(widget, timeout=20000):
        qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)

    return wait


@pytest.fixture
def errors(monkeypatch):
    """Messages the widget shows with show_error; the test fails if napari got an exception to show
    (that would appear to the user as a traceback)."""
    from napari.utils.notifications import ErrorNotification, notification_manager

    import sam3kit.napari.widget as widget_module

    shown: list[str] = []
    tracebacks: list[object] = []
    original = widget_module.show_error

    def capture(message):
        shown.append(str(message))
        original(message)

    def watch(notification):
        if isinstance(notification, ErrorNotification):
            tracebacks.append(notification)

    monkeypatch.setattr(widget_module, "show_error", capture)
    notification_manager.notification_ready.connect(watch)
    yield shown
    notification_manager.notification_ready.disconnect(watch)
    assert not tracebacks, f"an exception reached napari: {tracebacks}"


@pytest.fixture
def stack_image():
    """A (4, 60, 90) uint16 stack: a bright disc that moves right plane by plane."""
    yy, xx = np.mgrid[0:60, 0:90]
    planes = []
    for z in range(4):
        plane = (yy * 40 + xx * 10).astype(np.uint16)
        plane[(yy - 30) ** 2 + (xx - (25 + 12 * z)) ** 2 < 12**2] = 4000
        planes.append(plane)
    return np.stack(planes)
