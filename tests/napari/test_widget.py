"""The dock widget in a real viewer, with the tiny random SAM 3: labels land where the core says."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from napari.utils.key_bindings import coerce_keybinding
from qtpy.QtCore import QTimer

from sam3kit.napari.layers import POINT_COLOURS, SHORTCUTS
from sam3kit.request import PointPrompt, SegmentRequest


def test_clicks_on_a_scaled_image_label_the_pixels_the_core_segments(
    make_widget, wait_idle, segmenter, rgb_image, model_id, errors
):
    viewer, widget = make_widget()
    image = viewer.add_image(rgb_image, rgb=True, name="disc", scale=(2, 0.5), translate=(10, -4))
    # a user's own points layer in world coordinates: world (70, 18.5) -> row (70 - 10) / 2 = 30,
    # column (18.5 + 4) / 0.5 = 45 -> the centre of pixel (30, 45) is SAM (x, y) = (45, 30)
    points = viewer.add_points([[70.0, 18.5]], name="clicks")
    widget.image.value = image
    widget.points.value = points

    widget.segment()
    wait_idle(widget)
    ids = widget.accept()

    expected = segmenter.segment(rgb_image, SegmentRequest(point_prompts=[PointPrompt(45, 30)]))
    labels = viewer.layers["disc SAM 3"]
    assert ids == [1]
    np.testing.assert_array_equal(labels.data == 1, expected.masks[0])
    np.testing.assert_allclose(labels.scale, image.scale)
    np.testing.assert_allclose(labels.translate, image.translate)
    row = labels.features.iloc[0]
    assert row["source"] == "object 1" and row["score"] == pytest.approx(float(expected.scores[0]))
    assert [row["x_min"], row["y_min"], row["x_max"], row["y_max"]] == pytest.approx(list(expected.boxes[0]))
    (run,) = labels.metadata["sam3kit"]["runs"]
    assert labels.metadata["sam3kit"]["model"] == model_id
    assert run["request"]["point_prompts"][0]["x"] == 45
    assert len(points.data) == 0  # accepted prompts are cleared for the next object
    assert not errors


def test_only_the_current_plane_is_prompted_and_written(make_widget, wait_idle, segmenter, stack_image):
    viewer, widget = make_widget()
    image = viewer.add_image(stack_image, name="stack", scale=(3, 1, 1))
    points = widget.add_points_layer()
    points.add([2, 30, 49])  # on plane 2 (data coordinates: the layer shares the image's transform)
    points.add([1, 30, 37])  # on plane 1: must not count
    viewer.dims.set_point(0, 6.0)  # world z 6 = plane 2
    assert image.world_to_data(viewer.dims.point)[0] == 2

    widget.segment()
    wait_idle(widget)
    widget.accept()

    labels = viewer.layers["stack SAM 3"]
    assert labels.data.shape == stack_image.shape
    assert labels.data[[0, 1, 3]].max() == 0
    expected = segmenter.segment(stack_image[2], point_prompts=[PointPrompt(49, 30)])
    np.testing.assert_array_equal(labels.data[2] > 0, expected.masks[0])
    assert list(labels.features["plane"]) == ["2"]
    assert points.data.tolist() == [[1, 30, 37]]  # the other plane's prompt stays


def test_text_prompt_on_every_plane_of_an_rgb_stack(make_widget, wait_idle, segmenter, rgb_image):
    viewer, widget = make_widget()
    stack = np.stack([rgb_image, rgb_image[:, ::-1], rgb_image[::-1]])
    viewer.add_image(stack, rgb=True, name="rgb stack")
    widget.text.value = "disc"
    widget.threshold.value = 0.2
    widget.all_planes.value = True

    widget.segment()
    wait_idle(widget)
    widget.accept()

    labels = viewer.layers["rgb stack SAM 3"]
    for z in range(3):
        expected = segmenter.segment(stack[z], prompt="disc", score_threshold=0.2)
        assert len(expected) > 0
        np.testing.assert_array_equal(labels.data[z] > 0, expected.label_image() > 0)
    assert set(labels.features["source"]) == {"disc"}
    assert sorted(set(labels.features["plane"])) == ["0", "1", "2"]
    assert list(labels.features["index"]) == list(range(1, len(labels.features) + 1))


def test_new_labels_go_above_existing_ids_and_undo_restores(make_widget, wait_idle, rgb_image):
    viewer, widget = make_widget()
    viewer.add_image(rgb_image, rgb=True, name="disc")
    mine = np.zeros(rgb_image.shape[:2], np.uint32)
    mine[25:35, 40:50] = 7  # the user's label in the middle of the disc
    existing = viewer.add_labels(mine.copy(), name="disc SAM 3")
    points = widget.add_points_layer()
    points.add([30, 45])

    widget.segment()
    wait_idle(widget)
    assert widget.accept() == [8]

    assert existing.data.max() == 8
    np.testing.assert_array_equal(existing.data[25:35, 40:50], 7)  # kept: no replace asked
    assert list(existing.features["index"]) == [8]
    existing.undo()
    np.testing.assert_array_equal(existing.data, mine)

    points.add([30, 45])
    widget.replace.value = True
    widget.segment()
    wait_idle(widget)
    widget.accept()
    assert (existing.data[25:35, 40:50] == 7).sum() < 100  # replaced where the new mask covers it


def test_a_run_does_not_block_the_event_loop_and_can_be_cancelled(
    make_widget, wait_idle, qtbot, segmenter, rgb_image, monkeypatch
):
    import sam3kit.napari.jobs as jobs

    release = threading.Event()

    class Slow:
        """The real segmenter, held at the decoding step until the test lets it go."""

        def set_image(self, image):
            return segmenter.set_image(image)

        def segment(self, *args, **kwargs):
            release.wait(20)
            return segmenter.segment(*args, **kwargs)

    monkeypatch.setattr(jobs, "get_segmenter", lambda model, device: Slow())
    viewer, widget = make_widget()
    viewer.add_image(rgb_image, rgb=True, name="disc")
    widget.add_points_layer().add([30, 45])

    try:
        widget.segment()
        ticked = []
        QTimer.singleShot(10, lambda: ticked.append(True))
        qtbot.waitUntil(lambda: bool(ticked) and widget.status.value.endswith("decoding the prompts"))
        assert widget.busy and widget.cancel_button.enabled and not widget.segment_button.enabled
    finally:
        release.set()
        wait_idle(widget)
    assert [i.plane for i in widget.pending_items()] == [()]
    assert viewer.layers["disc SAM 3 preview"].data.max() == 1

    release.clear()
    widget.clear()
    widget.add_points_layer().add([30, 45])
    try:
        widget.segment()
        qtbot.waitUntil(lambda: widget.status.value.endswith("decoding the prompts"))
        widget.cancel()
    finally:
        release.set()
        wait_idle(widget)
    assert widget.pending_items() == [] and widget.status.value == "cancelled"


def test_live_mode_resegments_the_moved_object_from_the_cached_embedding(
    make_widget, wait_idle, qtbot, segmenter, rgb_image
):
    viewer, widget = make_widget()
    viewer.add_image(rgb_image, rgb=True, name="disc")
    points = widget.add_points_layer()
    widget.object_id.value = 1
    points.add([30, 45])
    widget.segment()
    wait_idle(widget)
    first = widget.pending_items()[0].result.masks[0].copy()
    misses = segmenter.image_cache.misses

    widget.live.value = True
    widget.object_id.value = 2
    points.add([10, 10])  # a second object: re-segmented on its own, no Segment press
    qtbot.waitUntil(lambda: len(widget.pending_items()) == 2, timeout=20000)
    wait_idle(widget)

    assert segmenter.image_cache.misses == misses  # the backbone did not run again
    one, two = (i.result for i in widget.pending_items())
    np.testing.assert_array_equal(one.masks[0], first)
    expected = segmenter.segment(rgb_image, point_prompts=[PointPrompt(10, 10, object_id=2)])
    np.testing.assert_array_equal(two.masks[0], expected.masks[0])
    assert list(two.object_ids) == [2]

    points.selected_data = {1}
    points.data = np.array([[30.0, 45.0], [12.0, 70.0]])  # move object 2's point
    points.events.data(value=points.data, action="changed", data_indices=(1,), vertex_indices=((),))
    qtbot.waitUntil(lambda: not widget.busy and widget.status.value == "live: preview updated", timeout=20000)
    moved = [i.result for i in widget.pending_items()][1]
    expected = segmenter.segment(rgb_image, point_prompts=[PointPrompt(70, 12, object_id=2)])
    np.testing.assert_array_equal(moved.masks[0], expected.masks[0])


def test_polarity_key_and_colours(make_widget, rgb_image):
    viewer, widget = make_widget()
    viewer.add_image(rgb_image, rgb=True, name="disc")
    points = widget.add_points_layer()
    toggle = points.keymap[coerce_keybinding(SHORTCUTS["toggle_polarity"])]
    toggle(points)
    assert widget.polarity.value == 0
    points.add([5, 5])
    assert list(points.features["label"]) == [0]
    red = np.array([1.0, 42 / 255, 42 / 255, 1.0])
    np.testing.assert_allclose(points.face_color[0], red, atol=1e-3)
    points.selected_data = {0}
    toggle(points)
    assert list(points.features["label"]) == [1]
    assert POINT_COLOURS[1] == "#39ff14"
    np.testing.assert_allclose(points.face_color[0], [57 / 255, 1.0, 20 / 255, 1.0], atol=1e-3)


def test_segment_shortcut_runs_from_the_prompt_layer(make_widget, wait_idle, rgb_image):
    viewer, widget = make_widget()
    viewer.add_image(rgb_image, rgb=True, name="disc")
    boxes = widget.add_boxes_layer()
    boxes.add_rectangles(np.array([[20.0, 35.0], [40.0, 55.0]]))
    boxes.keymap[coerce_keybinding(SHORTCUTS["segment"])](boxes)
    wait_idle(widget)
    (item,) = widget.pending_items()
    assert list(item.result.sources) == ["object"]
    assert item.result.provenance.request["box_prompts"][0]["x_min"] == 35


def test_mistakes_become_notifications(make_widget, wait_idle, rgb_image, errors):
    viewer, widget = make_widget()
    widget.segment()
    assert "open an image" in errors[-1]

    viewer.add_image(rgb_image, rgb=True, name="disc")
    points = widget.add_points_layer()
    widget.segment()
    assert "nothing to segment" in errors[-1]

    points.add([30, 400])
    widget.segment()
    assert "point 0 of layer 'disc SAM 3 points' lies outside image 'disc'" in errors[-1]

    points.data = np.empty((0, 2))
    boxes = widget.add_boxes_layer()
    boxes.add_ellipses(np.array([[10.0, 10.0], [20.0, 20.0]]))
    widget.segment()
    assert "only rectangles are box prompts" in errors[-1]

    boxes.data = []
    widget.text.value = "disc"
    widget.model.value = "/nonexistent/sam3"
    widget.segment()
    wait_idle(widget)
    assert "does not exist" in errors[-1]
    assert widget.status.value == "failed"
    assert not widget.busy


def test_live_mode_renumbers_loose_points_when_an_object_id_appears(make_widget, wait_idle, qtbot, rgb_image):
    viewer, widget = make_widget()
    viewer.add_image(rgb_image, rgb=True, name="disc")
    points = widget.add_points_layer()
    points.add([30, 45])  # object id 0: the loose points, numbered 1 while no id is given
    widget.segment()
    wait_idle(widget)
    assert [list(i.result.object_ids) for i in widget.pending_items()] == [[1]]

    widget.live.value = True
    widget.object_id.value = 2
    points.add([10, 10])  # now the loose points become object 3: both are segmented, none left stale
    qtbot.waitUntil(lambda: not widget.busy and widget.status.value == "live: preview updated", timeout=20000)
    assert sorted(int(i.result.object_ids[0]) for i in widget.pending_items()) == [2, 3]
