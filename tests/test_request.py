import pytest

from sam3kit.request import BoxPrompt, PointPrompt, RequestError, SegmentRequest, split_concepts


def test_concepts_split_on_commas_and_lists_keep_order_and_drop_duplicates():
    assert split_concepts(" cell ,nucleus,, cell") == ["cell", "nucleus"]
    assert split_concepts(["red  blood cell", "platelet"]) == ["red blood cell", "platelet"]
    assert SegmentRequest(prompt="cat, dog").concepts == ["cat", "dog"]


def test_text_prompt_is_a_deprecated_alias_of_prompt():
    with pytest.warns(DeprecationWarning):
        req = SegmentRequest(text_prompt="keyboard")
    assert req.prompt == "keyboard"
    with pytest.raises(RequestError, match="text_prompt"), pytest.warns(DeprecationWarning):
        SegmentRequest(prompt="a", text_prompt="b")


def test_dicts_from_json_become_typed_prompts():
    req = SegmentRequest.from_dict(
        {
            "point_prompts": [{"x": 3, "y": 4, "label": 0, "object_id": 2}],
            "box_prompts": [{"x_min": 1, "y_min": 2, "x_max": 5, "y_max": 9}],
        }
    )
    assert req.point_prompts == [PointPrompt(3.0, 4.0, 0, 2)]
    assert req.box_prompts[0].xyxy == (1.0, 2.0, 5.0, 9.0)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"point_prompts": [{"x": 1, "y": 2, "label": 2}]}, "label"),
        ({"point_prompts": [{"x": "1", "y": 2}]}, "point_prompts"),
        ({"point_prompts": [{"x": 1}]}, "point_prompts"),
        ({"point_prompts": [{"x": 1, "y": 2, "z": 3}]}, "unknown field"),
        ({"box_prompts": [{"x_min": 5, "y_min": 0, "x_max": 1, "y_max": 4}]}, "x_max > x_min"),
        ({"prompt": "a", "max_masks": 0}, "max_masks"),
        ({"prompt": "a", "output_format": "gif"}, "output_format"),
        ({"prompt": "a", "score_threshold": 1.5}, "score_threshold"),
        ({"prompt": "a", "include_scores": "yes"}, "include_scores"),
        ({"prompt": "a", "colour": "red"}, "unknown request field"),
        ({}, "nothing to segment"),
        ({"point_prompts": {"x": 1, "y": 2}}, "must be a list"),
    ],
)
def test_bad_fields_are_refused_by_name(body, field):
    with pytest.raises(RequestError, match=field):
        SegmentRequest.from_dict(body)


def test_jpg_is_accepted_as_jpeg():
    assert SegmentRequest(prompt="a", output_format="JPG").output_format == "jpeg"


def test_objects_group_by_object_id_and_each_loose_box_is_its_own_object():
    req = SegmentRequest(
        point_prompts=[
            PointPrompt(1, 1, object_id=5),
            PointPrompt(2, 2),
            PointPrompt(3, 3, 0, 5),
            PointPrompt(4, 4),
        ],
        box_prompts=[BoxPrompt(0, 0, 9, 9, object_id=5), BoxPrompt(1, 1, 5, 5), BoxPrompt(2, 2, 6, 6)],
    )
    objects = req.objects()
    assert [o.object_id for o in objects] == [5, 6, 7, 8]
    five = objects[0]
    assert [(p.x, p.label) for p in five.points] == [(1.0, 1), (3.0, 0)]
    assert [b.xyxy for b in five.boxes] == [(0.0, 0.0, 9.0, 9.0)]
    assert [p.x for p in objects[1].points] == [2.0, 4.0] and objects[1].boxes == ()
    assert [len(o.boxes) for o in objects[2:]] == [1, 1]


def test_exemplar_boxes_are_not_objects_and_need_a_concept_when_several():
    pos, neg = BoxPrompt(0, 0, 4, 4, exemplar=True), BoxPrompt(5, 5, 9, 9, exemplar=True, label=0)
    req = SegmentRequest(prompt="cell", box_prompts=[pos, neg])
    assert req.objects() == [] and req.exemplars_for("cell") == [pos, neg]
    with pytest.raises(RequestError, match="concept"):
        SegmentRequest(prompt="cell, dust", box_prompts=[pos])
    named = BoxPrompt(0, 0, 4, 4, exemplar=True, concept="dust")
    req = SegmentRequest(prompt="cell, dust", box_prompts=[named])
    assert req.exemplars_for("dust") == [named] and req.exemplars_for("cell") == []
    assert SegmentRequest(box_prompts=[pos]).concepts == ["visual"]
    with pytest.raises(RequestError, match="exemplar"):
        BoxPrompt(0, 0, 1, 1, label=0)


def test_prompts_outside_the_image_are_refused_with_their_position():
    req = SegmentRequest(point_prompts=[PointPrompt(95, 10)])
    with pytest.raises(RequestError, match=r"point_prompts\[0\].*x=95.*90x60"):
        req.check_inside(90, 60)
    SegmentRequest(point_prompts=[PointPrompt(89.5, 59.5), PointPrompt(-0.5, 0)]).check_inside(90, 60)
    with pytest.raises(RequestError, match="outside"):
        SegmentRequest(point_prompts=[PointPrompt(90, 10)]).check_inside(90, 60)
    with pytest.raises(RequestError, match="box_prompts"):
        SegmentRequest(box_prompts=[BoxPrompt(100, 0, 120, 10)]).check_inside(90, 60)


def test_to_dict_round_trips():
    req = SegmentRequest(prompt="cell", point_prompts=[PointPrompt(1, 2)], max_masks=3, sync_mode=True)
    again = SegmentRequest.from_dict(req.to_dict())
    assert again == req
