"""Propagation through Z or T in the widget, with the tiny random video SAM 3: planes, ids, undo, errors.

Random weights make masks meaningless (and empty at the default mask threshold), so prompts here ask for
mask threshold 0 (every object covers its whole frame, the higher score winning) and the tests check which
planes are written, with which ids, against what the core gives on the same data.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from sam3kit.napari.propagate import AxisStack, frames_visited
from sam3kit.request import PointPrompt

SHAPE = (5, 48, 64)
SCALE, TRANSLATE = (2.0, 0.5, 0.5), (10.0, -3.0, 4.0)


@pytest.fixture
def make_video_widget(make_widget, tiny_video_checkpoint, video_seg, monkeypatch):
    """The widget set to the tiny video model; its requests ask for mask threshold 0 (see the module doc)."""
    from sam3kit.napari.models import share_video_segmenter
    from sam3kit.napari.widget import Sam3Widget

    share_video_segmenter(str(tiny_video_checkpoint), "cpu", video_seg)
    plane_request = Sam3Widget._plane_request

    def full_masks(self, *args, **kwargs):
        return dataclasses.replace(plane_request(self, *args, **kwargs), mask_threshold=0.0)

    monkeypatch.setattr(Sam3Widget, "_plane_request", full_masks)

    def make():
        viewer, widget = make_widget()
        widget.model.value = str(tiny_video_checkpoint)
        return viewer, widget

    return make


def moving_disc() -> np.ndarray:
    """A bright disc moving 8 px per plane to the right: (5, 48, 64) uint16."""
    yy, xx = np.mgrid[0 : SHAPE[1], 0 : SHAPE[2]]
    stack = np.full(SHAPE, 300, np.uint16)
    for t in range(SHAPE[0]):
        stack[t][(yy - 24) ** 2 + (xx - 12 - 8 * t) ** 2 < 9**2] = 3000
    return stack


def go_to_plane(viewer, image, index: int) -> None:
    viewer.dims.set_point(0, image.data_to_world([index, 0, 0])[0])
    assert round(image.world_to_data(viewer.dims.point)[0]) == index


def expected_labels(video_seg, stack, frame_idx, direction, points, ids):
    """What the core tracks from ``points`` on ``frame_idx``, labelled with label ids ``ids[object_id]``."""
    out = np.zeros(stack.shape[:3], np.uint32)
    frames = video_seg.track(
        stack, frame_idx=frame_idx, direction=direction, point_prompts=points, mask_threshold=0.0
    )
    for frame in frames:
        by_object = frame.label_image(np.uint32)
        lookup = np.zeros(by_object.max() + 1, np.uint32)
        for oid in np.unique(by_object[by_object > 0]):
            lookup[oid] = ids[int(oid)]
        out[frame.frame_idx] = lookup[by_object]
    return out


def label_ids(labels) -> dict[int, int]:
    return dict(zip(labels.features["object_id"].astype(int), labels.features["index"].astype(int)))


def test_point_on_a_scaled_stack_propagates_forward_into_the_planes_the_core_tracks(
    make_video_widget, wait_idle, video_seg, errors
):
    viewer, widget = make_video_widget()
    stack = moving_disc()
    image = viewer.add_image(stack, name="moving", scale=SCALE, translate=TRANSLATE)
    points = widget.add_points_layer()
    points.add([2, 24, 28])  # data coordinates of the image: plane 2, row 24, column 28
    go_to_plane(viewer, image, 2)
    widget.direction.value = "forward"

    widget.propagate()
    wait_idle(widget)

    labels = viewer.layers["moving SAM 3"]
    np.testing.assert_allclose(labels.scale, SCALE)
    np.testing.assert_allclose(labels.translate, TRANSLATE)
    assert labels.data[:2].max() == 0
    assert all(labels.data[t].max() > 0 for t in (2, 3, 4))
    assert label_ids(labels) == {1: 1}
    expected = expected_labels(video_seg, stack, 2, "forward", [PointPrompt(28, 24, object_id=1)], {1: 1})
    np.testing.assert_array_equal(labels.data, expected)
    (run,) = labels.metadata["sam3kit"]["runs"]
    assert run["frames"] == [2, 3, 4] and run["axis"] == 0 and run["direction"] == "forward"
    labels.undo()  # one undo step removes the whole propagation
    assert labels.data.max() == 0
    assert not errors


@pytest.mark.parametrize("direction, written", [("backward", [0, 1, 2]), ("both", [0, 1, 2, 3, 4])])
def test_backward_and_both_cover_their_planes(make_video_widget, wait_idle, direction, written):
    viewer, widget = make_video_widget()
    image = viewer.add_image(moving_disc(), name="moving", scale=SCALE, translate=TRANSLATE)
    widget.add_points_layer().add([2, 24, 28])
    go_to_plane(viewer, image, 2)
    widget.direction.value = direction

    widget.propagate()
    wait_idle(widget)

    labels = viewer.layers["moving SAM 3"]
    assert [t for t in range(SHAPE[0]) if labels.data[t].any()] == written
    assert labels.metadata["sam3kit"]["runs"][0]["frames"] == frames_visited(SHAPE[0], 2, direction)


def test_existing_labels_are_kept_and_objects_keep_one_id_above_them(make_video_widget, wait_idle, video_seg):
    viewer, widget = make_video_widget()
    stack = moving_disc()
    image = viewer.add_image(stack, name="moving")
    mine = np.zeros(SHAPE, np.uint32)
    mine[3, 10:20, 10:30] = 5  # the user's label on plane 3
    existing = viewer.add_labels(mine.copy(), name="moving SAM 3")
    points = widget.add_points_layer()
    widget.object_id.value = 3
    points.add([1, 24, 20])
    widget.object_id.value = 4
    points.add([1, 10, 50])
    go_to_plane(viewer, image, 1)

    widget.propagate()  # direction "both" by default
    wait_idle(widget)

    ids = label_ids(existing)
    assert sorted(ids) == [3, 4] and sorted(ids.values()) == [6, 7]  # above the previous maximum, 5
    np.testing.assert_array_equal(existing.data[3, 10:20, 10:30], 5)  # kept: "replace" not ticked
    prompts = [PointPrompt(20, 24, object_id=3), PointPrompt(50, 10, object_id=4)]
    expected = expected_labels(video_seg, stack, 1, "both", prompts, ids)
    expected[3, 10:20, 10:30] = 5
    np.testing.assert_array_equal(existing.data, expected)  # the same object has the same id on every plane
    assert all(existing.data[t].any() for t in range(SHAPE[0]))

    # correct object 3 on plane 3 and propagate forward again: its id stays, no new labels appear,
    # and with "replace" the user's label under it goes
    widget.object_id.value = 3
    points.add([3, 24, 36])
    go_to_plane(viewer, image, 3)
    widget.direction.value = "forward"
    widget.replace.value = True
    widget.propagate()
    wait_idle(widget)
    assert label_ids(existing) == ids and len(existing.features) == 2
    assert existing.metadata["sam3kit"]["tracks"][":"] == {"3": ids[3]}
    redo = expected_labels(video_seg, stack, 3, "forward", [PointPrompt(36, 24, object_id=3)], ids)
    np.testing.assert_array_equal(existing.data[3:], redo[3:])
    np.testing.assert_array_equal(existing.data[:3], expected[:3])  # planes the second run did not visit


def test_propagation_leaves_the_event_loop_free_and_can_be_cancelled(
    make_video_widget, wait_idle, qtbot, video_seg, monkeypatch
):
    import sam3kit.napari.jobs as jobs

    release = threading.Event()

    def slow(model, device):
        release.wait(20)
        return video_seg

    monkeypatch.setattr(jobs, "get_video_segmenter", slow)
    viewer, widget = make_video_widget()
    image = viewer.add_image(moving_disc(), name="moving")
    widget.add_points_layer().add([2, 24, 28])
    go_to_plane(viewer, image, 2)
    try:
        widget.propagate()
        ticked = []
        QTimer.singleShot(10, lambda: ticked.append(True))
        qtbot.waitUntil(lambda: bool(ticked) and widget.status.value.endswith("(video)"))
        assert widget.busy and not widget.propagate_button.enabled and widget.cancel_button.enabled
        widget.cancel()
    finally:
        release.set()
        wait_idle(widget)
    assert widget.status.value == "cancelled"
    assert "moving SAM 3" not in viewer.layers  # nothing written
    assert widget.propagate_button.enabled


def test_a_2d_image_and_exemplar_boxes_become_notifications(make_video_widget, wait_idle, rgb_image, errors):
    viewer, widget = make_video_widget()
    viewer.add_image(rgb_image, rgb=True, name="flat")
    widget.add_points_layer().add([30, 45])
    widget.propagate()
    assert "single 2D plane" in errors[-1]
    assert not widget.busy

    image = viewer.add_image(moving_disc(), name="moving")
    widget.image.value = image
    widget.points.value = None
    boxes = widget.add_boxes_layer()
    widget.role.value = "positive"
    boxes.add_rectangles(np.array([[0.0, 10, 10], [0.0, 10, 30], [0.0, 30, 30], [0.0, 30, 10]]))
    widget.text.value = "disc"
    go_to_plane(viewer, image, 0)
    widget.propagate()
    wait_idle(widget)
    assert "exemplar boxes are not supported for video" in errors[-1]
    assert widget.status.value == "failed"


def test_axis_stack_reads_planes_along_one_axis_with_the_others_fixed():
    data = np.arange(3 * 4 * 5 * 6).reshape(3, 4, 5, 6)
    along_z = AxisStack(data, (2, 1), axis=1)
    assert along_z.shape == (4, 5, 6) and len(along_z) == 4
    np.testing.assert_array_equal(along_z[3], data[2, 3])
    along_t = AxisStack(data, (2, 1), axis=0)
    np.testing.assert_array_equal(along_t[0], data[0, 1])
