"""Prompt layers -> SAM prompts, checked against coordinates worked out by hand (no viewer needed)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Points, Shapes

from sam3kit.napari.convert import (
    PromptLayerError,
    box_prompts,
    current_plane,
    loose_points_id,
    object_request,
    plane_prompt_indices,
    point_prompts,
    with_explicit_ids,
)
from sam3kit.request import BoxPrompt, PointPrompt, SegmentRequest


def scaled_image():
    """60 x 90 pixels, scale (2, 0.5), translate (10, -4): world (r, c) = (10 + 2 row, -4 + 0.5 col)."""
    return Image(np.zeros((60, 90), np.uint8), name="img", scale=(2, 0.5), translate=(10, -4))


def test_point_prompt_on_scaled_layer_lands_on_pixel():
    # world (30, 6) -> image row (30 - 10) / 2 = 10, column (6 + 4) / 0.5 = 20: the centre of pixel (10, 20),
    # which SAM (like napari) calls (x, y) = (20, 10)
    points = Points(np.array([[30.0, 6.0]]), name="clicks")
    assert point_prompts(points, scaled_image()) == [PointPrompt(20, 10, 1, None)]


def test_point_layer_with_its_own_transform_goes_through_world_coordinates():
    # data (10, 2) with scale 3 -> world (30, 6) -> the same pixel as above
    points = Points(np.array([[10.0, 2.0]]), scale=(3, 3))
    (prompt,) = point_prompts(points, scaled_image())
    assert (prompt.x, prompt.y) == pytest.approx((20, 10))


def test_affine_image_transform_is_inverted():
    # the image's affine swaps axes: world (r, c) = data (c, r); world (7, 3) -> data row 3, column 7
    image = Image(np.zeros((20, 30)), affine=np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], float))
    (prompt,) = point_prompts(Points(np.array([[7.0, 3.0]])), image)
    assert (prompt.x, prompt.y) == pytest.approx((7, 3))


def test_polarity_and_object_id_come_from_features():
    points = Points(
        np.array([[20.0, 0.0], [22.0, 1.0], [24.0, 2.0]]),
        features={"label": [1, 0, 1], "object_id": [0, 0, 5]},
    )
    prompts = point_prompts(points, scaled_image())
    assert [p.label for p in prompts] == [1, 0, 1]
    assert [p.object_id for p in prompts] == [None, None, 5]
    assert [p.y for p in prompts] == pytest.approx([5, 6, 7])


def test_point_outside_the_image_is_refused_by_name():
    points = Points(np.array([[30.0, 6.0], [30.0, 60.0]]), name="clicks")  # column (60 + 4) / 0.5 = 128 > 90
    with pytest.raises(
        PromptLayerError, match=r"point 1 of layer 'clicks' lies outside image 'img'.*x=128.0"
    ):
        point_prompts(points, scaled_image())


def test_box_prompt_from_rectangle_with_roles():
    image = scaled_image()
    # world corners (14, -3) .. (30, 6): rows 2..10, columns 2..20 -> SAM corners x 2..20, y 2..10
    rect = np.array([[14.0, -3.0], [14.0, 6.0], [30.0, 6.0], [30.0, -3.0]])
    shapes = Shapes(
        [rect, rect, rect],
        shape_type="rectangle",
        features={
            "role": ["object", "positive", "negative"],
            "object_id": [3, 0, 0],
            "concept": ["", "", "cell"],
        },
    )
    obj, pos, neg = box_prompts(shapes, image)
    assert obj == BoxPrompt(2, 2, 20, 10, object_id=3)
    assert pos == BoxPrompt(2, 2, 20, 10, exemplar=True, label=1)
    assert neg == BoxPrompt(2, 2, 20, 10, exemplar=True, label=0, concept="cell")


def test_box_reaching_past_the_edge_is_clipped_and_one_outside_refused():
    image = Image(np.zeros((20, 30)), name="img")
    past = Shapes([np.array([[-5.0, -5.0], [10.0, 40.0]])], shape_type="rectangle")
    (box,) = box_prompts(past, image)
    assert box.xyxy == pytest.approx((-0.5, -0.5, 29.5, 10))  # clipped to the outer pixel edges
    outside = Shapes([np.array([[50.0, 50.0], [60.0, 60.0]])], shape_type="rectangle", name="b")
    with pytest.raises(PromptLayerError, match="shape 0 of layer 'b' lies outside image 'img'"):
        box_prompts(outside, image)


def test_non_rectangle_shapes_are_refused():
    shapes = Shapes([np.array([[1.0, 1.0], [5.0, 5.0]])], shape_type="ellipse", name="b")
    with pytest.raises(PromptLayerError, match="shape 0 of layer 'b' is a ellipse; only rectangles"):
        box_prompts(shapes, Image(np.zeros((20, 30))))


def test_only_prompts_on_the_current_plane_count():
    # (Z, Y, X) with z scale 5: world z 10 -> plane 2, world z 15 -> plane 3
    image = Image(np.zeros((4, 20, 30)), scale=(5, 1, 1))
    points = Points(np.array([[10.0, 4.0, 6.0], [15.0, 5.0, 7.0], [11.0, 8.0, 9.0]]))
    assert current_plane(image, [10.0, 0, 0]) == (2,)
    assert current_plane(image, [12.4, 0, 0]) == (2,)  # napari shows the nearest plane
    on_two = point_prompts(points, image, (2,))
    assert [(p.x, p.y) for p in on_two] == [(6, 4), (9, 8)]
    assert [(p.x, p.y) for p in point_prompts(points, image, (3,))] == [(7, 5)]
    assert plane_prompt_indices(points, image, (2,)) == [0, 2]


def test_a_2d_points_layer_applies_to_whatever_plane_is_shown():
    image = Image(np.zeros((4, 20, 30)), scale=(5, 1, 1))
    points = Points(np.array([[4.0, 6.0]]))
    (prompt,) = point_prompts(points, image, (3,), world_point=[15.0, 0.0, 0.0])
    assert (prompt.x, prompt.y) == (6, 4)


def test_rgb_image_axes_exclude_the_channel():
    image = Image(np.zeros((3, 20, 30, 3), np.uint8), rgb=True)
    assert current_plane(image, [2.0, 0.0, 0.0]) == (2,)
    (prompt,) = point_prompts(Points(np.array([[2.0, 19.0, 29.0]])), image, (2,))
    assert (prompt.x, prompt.y) == (29, 19)


def test_position_off_the_stack_is_refused():
    with pytest.raises(PromptLayerError, match="outside image"):
        current_plane(Image(np.zeros((4, 20, 30))), [7.0, 0.0, 0.0])


def test_object_ids_are_written_out_once_and_objects_extracted():
    request = SegmentRequest(
        prompt="cell",
        point_prompts=[PointPrompt(1, 1), PointPrompt(2, 2, object_id=4), PointPrompt(3, 3, label=0)],
        box_prompts=[BoxPrompt(0, 0, 5, 5), BoxPrompt(0, 0, 9, 9, exemplar=True)],
    )
    assert loose_points_id(request) == 5  # one above the largest id given
    explicit = with_explicit_ids(request)
    assert [p.object_id for p in explicit.point_prompts] == [5, 5, 4]
    assert sorted(b.object_id for b in explicit.box_prompts if not b.exemplar) == [6]
    only = object_request(explicit, {5})
    assert only.prompt is None
    assert [(p.x, p.y) for p in only.point_prompts] == [(1, 1), (3, 3)]
    assert only.box_prompts == []
    assert object_request(explicit, {99}) is None
