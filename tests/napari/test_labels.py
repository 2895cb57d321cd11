"""Results -> Labels layers: fresh ids, existing labels kept, one undo step, features and metadata."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Labels

from sam3kit.napari.labels import (
    LabelsError,
    PlaneResult,
    fits,
    new_labels_for,
    next_label,
    show_preview,
    split_result,
    write_results,
)
from sam3kit.result import Provenance, SegmentationResult


def two_masks(size=(10, 12)) -> SegmentationResult:
    """Mask 0 (concept 'cell', score 0.9): rows 1..4, cols 1..4; mask 1 (object 7, score 0.6): rows 3..7,
    cols 3..9; they overlap on rows 3..4, cols 3..4, where the higher score (mask 0) wins."""
    masks = np.zeros((2, *size), bool)
    masks[0, 1:5, 1:5] = True
    masks[1, 3:8, 3:10] = True
    return SegmentationResult(
        size,
        masks,
        scores=np.array([0.9, 0.6]),
        boxes=np.array([[1, 1, 5, 5], [3, 3, 10, 8]], float),
        object_ids=np.array([1, 7]),
        sources=["concept", "object"],
        concepts=["cell", None],
        provenance=Provenance("tiny", None, {"prompt": "cell"}),
    )


def test_new_ids_go_above_the_existing_maximum_and_keep_user_labels():
    data = np.zeros((10, 12), np.uint32)
    data[0:2, 0:2] = 41  # a user's label, overlapping mask 0 at rows 1, cols 1
    labels = Labels(data)
    ids = write_results(labels, [PlaneResult((), two_masks())])
    assert ids == [42, 43]
    assert labels.data[0, 0] == 41 and labels.data[1, 1] == 41  # kept
    assert labels.data[2, 2] == 42 and labels.data[4, 4] == 42  # mask 0 wins the overlap
    assert labels.data[7, 9] == 43 and labels.data[3, 5] == 43
    assert (labels.data == 42).sum() == 16 - 1  # mask 0 is 4 x 4, minus the user's pixel
    assert (labels.data == 43).sum() == 35 - 4  # mask 1 is 5 x 7, minus the overlap mask 0 won


def test_replace_paints_over_user_labels():
    data = np.zeros((10, 12), np.uint32)
    data[0:2, 0:2] = 5
    labels = Labels(data)
    write_results(labels, [PlaneResult((), two_masks())], replace=True)
    assert labels.data[1, 1] == 6 and labels.data[0, 0] == 5


def test_features_table_holds_score_source_and_box():
    labels = Labels(np.zeros((10, 12), np.uint32))
    write_results(labels, [PlaneResult((), two_masks())])
    table = labels.features
    assert list(table["index"]) == [1, 2]
    assert list(table["score"]) == pytest.approx([0.9, 0.6])
    assert list(table["source"]) == ["cell", "object 7"]
    assert list(table["object_id"]) == [0, 7]
    assert table.loc[1, ["x_min", "y_min", "x_max", "y_max"]].tolist() == [3, 3, 10, 8]
    assert labels.metadata["sam3kit"]["model"] == "tiny"
    assert labels.metadata["sam3kit"]["runs"][0]["request"] == {"prompt": "cell"}
    # a second write continues above the ids the table already holds
    assert write_results(labels, [PlaneResult((), two_masks())], replace=True) == [3, 4]
    assert list(labels.features["index"]) == [1, 2, 3, 4]


def test_undo_restores_the_previous_labels_in_one_step():
    data = np.zeros((10, 12), np.uint32)
    data[9, 11] = 3
    labels = Labels(data.copy())
    write_results(labels, [PlaneResult((), two_masks())])
    assert labels.data.max() == 5
    labels.undo()
    np.testing.assert_array_equal(labels.data, data)
    labels.redo()
    assert labels.data.max() == 5


def test_a_plane_of_an_nd_layer_is_written_and_no_other():
    labels = Labels(np.zeros((3, 10, 12), np.uint32))
    write_results(labels, [PlaneResult((1,), two_masks())])
    assert labels.data[0].max() == 0 and labels.data[2].max() == 0
    assert set(np.unique(labels.data[1])) == {0, 1, 2}
    assert list(labels.features["plane"]) == ["1", "1"]


def test_small_dtype_that_cannot_hold_the_ids_is_refused():
    data = np.zeros((10, 12), np.uint8)
    data[9, 11] = 255
    with pytest.raises(LabelsError, match="uint8"):
        write_results(Labels(data), [PlaneResult((), two_masks())])


def test_output_layer_matches_the_image_pixel_for_pixel():
    image = Image(np.zeros((3, 10, 12, 3), np.uint8), rgb=True, scale=(4, 2, 0.5), translate=(1, 2, 3))
    labels = new_labels_for(image, "out")
    assert labels.data.shape == (3, 10, 12)
    assert fits(labels, image)
    np.testing.assert_allclose(labels.data_to_world([2, 5, 6]), image.data_to_world([2, 5, 6]))
    assert not fits(Labels(np.zeros((3, 10, 12), np.uint32)), image)
    assert next_label(labels) == 1


def test_split_and_preview():
    parts = split_result(two_masks(), "text")
    assert set(parts) == {"text", 7}
    assert list(parts[7].scores) == pytest.approx([0.6])
    preview = Labels(np.full((2, 10, 12), 9, np.uint32))
    show_preview(preview, [PlaneResult((0,), parts["text"]), PlaneResult((0,), parts[7])], planes=[(1,)])
    assert preview.data[1].max() == 0  # cleared
    assert preview.data[0, 2, 2] == 1 and preview.data[0, 7, 9] == 2
