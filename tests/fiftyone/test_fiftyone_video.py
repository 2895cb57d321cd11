"""``apply_sam3`` on video datasets: frame-level Detections whose ``index`` names one object on every frame.

Real FiftyOne video datasets (MJPG files written here) in the private database, the tiny random video
checkpoint. Stored labels are compared with what the core's own :class:`~sam3kit.VideoSession` tracks on
the same file, and prompt boxes with pixels computed here from FiftyOne's normalised boxes.
"""

from __future__ import annotations

import numpy as np
import pytest

T, H, W = 6, 48, 64


def write_video(path, frames: int = T, shift: int = 0) -> str:
    """An MJPG video of a bright disc moving 5 px per frame to the right."""
    import cv2

    yy, xx = np.mgrid[0:H, 0:W]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (W, H))
    for t in range(frames):
        frame = np.full((H, W, 3), 40, np.uint8)
        frame[(yy - 24) ** 2 + (xx - 12 - shift - 5 * t) ** 2 < 8**2] = 230
        writer.write(frame)
    writer.release()
    return str(path)


@pytest.fixture(scope="module")
def video_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fo-videos")
    return [write_video(folder / "a.avi"), write_video(folder / "b.avi", shift=6)]


@pytest.fixture
def video_dataset(make_dataset, video_files):
    dataset = make_dataset(files=video_files)
    assert dataset.media_type == "video"
    return dataset


def frame_labels(dataset, sample_id, field="sam3"):
    """{frame number: Detections} of one video, frames without the field left out."""
    sample = dataset[sample_id]
    return {n: f[field] for n, f in sample.frames.items() if f[field] is not None}


def core_tracks(video_seg, path, **request):
    """{frame number: [(object id, x0, y0, x1, y1) pixel box of each mask]} tracked by the core itself."""
    out = {}
    for frame in video_seg.track(path, frame_idx=0, direction="both", **request):
        crops = frame.result.mask_crops
        rows = []
        for oid, (y0, x0), crop in zip(frame.result.object_ids, crops.offsets, crops.crops):
            if crop.size and crop.any():
                rows.append((int(oid), int(x0), int(y0), int(x0 + crop.shape[1]), int(y0 + crop.shape[0])))
        out[frame.frame_idx + 1] = sorted(rows)
    return out


def stored_tracks(detections):
    rows = []
    for det in detections.detections:
        x, y, w, h = det.bounding_box
        rows.append((det.index, round(x * W), round(y * H), round((x + w) * W), round((y + h) * H)))
        assert det.mask.shape == (round(h * H), round(w * W))  # the mask fills its box
    return sorted(rows)


# ---------------------------------------------------------------------------------------------- text


def test_text_prompt_stores_what_the_core_tracks_with_object_ids_as_index(video_dataset, eager):
    from sam3kit.fiftyone import apply_sam3

    summary = apply_sam3(video_dataset, "disc", "sam3", model=eager, score_threshold=0.0, progress=False)
    assert (summary.done, summary.failed, summary.total) == (2, 0, 2)
    assert video_dataset.get_frame_field_schema()["sam3"].document_type.__name__ == "Detections"
    for sample in video_dataset:
        expected = core_tracks(eager, sample.filepath, prompt="disc", score_threshold=0.0)
        stored = frame_labels(video_dataset, sample.id)
        assert sorted(stored) == list(range(1, T + 1))  # every frame visited, FiftyOne numbering
        assert {n: stored_tracks(d) for n, d in stored.items()} == expected
        assert any(expected.values())  # the comparison saw objects
        labels = {det.label for d in stored.values() for det in d.detections}
        assert labels == {"disc"}
        # the tracks field spans each object's frames, the video's done mark
        spans = {t.index: t.support for t in sample.sam3_tracks.detections}
        seen = {}
        for n, rows in expected.items():
            for oid, *_ in rows:
                seen.setdefault(oid, []).append(n)
        assert spans == {oid: [min(ns), max(ns)] for oid, ns in seen.items()}
    assert summary.instances == sum(len(s.sam3_tracks.detections) for s in video_dataset)
    info = video_dataset.get_field("frames.sam3").info["sam3kit"]
    assert (info["prompt_frame"], info["direction"]) == (1, "both")


# ---------------------------------------------------------------------------------------------- prompts


def test_prompt_field_labels_sharing_an_index_prompt_one_object_in_pixels(
    video_dataset, video_seg, monkeypatch
):
    import fiftyone as fo

    from sam3kit.fiftyone import apply_sam3
    from sam3kit.video import VideoSession

    sample = video_dataset.first()
    box_a, box_b, box_c = [0.1, 0.3, 0.35, 0.4], [0.2, 0.25, 0.4, 0.5], [0.6, 0.1, 0.3, 0.3]
    sample.frames[3]["gt"] = fo.Detections(
        detections=[fo.Detection(label="disc", bounding_box=box_a, index=4)]
    )
    sample.frames[5]["gt"] = fo.Detections(detections=[
        fo.Detection(label="disc", bounding_box=box_b, index=4),  # the same object, corrected on frame 5
        fo.Detection(label="blob", bounding_box=box_c),  # no index: an object of its own, id above 4
    ])  # fmt: skip
    sample.save()
    gt_ids = {n: [d.id for d in sample.frames[n]["gt"].detections] for n in (3, 5)}

    calls = []
    original = VideoSession.add_prompt

    def add_prompt(self, frame_idx, request=None, **fields):
        calls.append((frame_idx, request.to_dict()))
        return original(self, frame_idx, request, **fields)

    monkeypatch.setattr(VideoSession, "add_prompt", add_prompt)
    summary = apply_sam3(
        video_dataset.select(sample.id), label_field="tracked", prompt_field="frames.gt", model=video_seg,
        mask_threshold=0.0, progress=False,
    )  # fmt: skip
    assert summary.done == 1

    def pixels(box, oid):
        x, y, w, h = box
        return {"x_min": x * W, "y_min": y * H, "x_max": (x + w) * W, "y_max": (y + h) * H, "object_id": oid}

    assert [c[0] for c in calls] == [2, 4]  # 0-based frames of FiftyOne frames 3 and 5
    for (_, request), boxes in zip(calls, [[pixels(box_a, 4)], [pixels(box_b, 4), pixels(box_c, 5)]]):
        keys = ("x_min", "y_min", "x_max", "y_max", "object_id")
        got = [[b[k] for k in keys] for b in request["box_prompts"]]
        assert np.allclose(got, [[b[k] for k in keys] for b in boxes])
    stored = frame_labels(video_dataset, sample.id, "tracked")
    assert sorted(stored) == list(range(1, T + 1))  # both directions from frame 3
    for detections in stored.values():
        by_index = {d.index: d for d in detections.detections}
        assert set(by_index) == {4, 5}  # mask threshold 0: every object on every frame
        assert (by_index[4].label, by_index[4].prompt_id) == ("disc", gt_ids[3][0])
        assert (by_index[5].label, by_index[5].prompt_id) == ("blob", gt_ids[5][1])
    tracks = video_dataset[sample.id].tracked_tracks.detections
    assert [(t.index, t.label, t.support) for t in tracks] == [(4, "disc", [1, T]), (5, "blob", [1, T])]


def test_video_options_are_checked_before_anything_changes(video_dataset, video_seg, make_dataset, segmenter):
    from sam3kit.fiftyone import apply_sam3

    bad = [
        (dict(direction="sideways"), "direction"),
        (dict(output="segmentation"), "Detections"),
        (dict(prompt_frame=0), "from 1"),
        (dict(max_masks=2), "max_masks does not apply"),
        (dict(prompt=None), "nothing to track"),
        (dict(prompt_field="gt"), "frame-level Detections"),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=message):
            apply_sam3(video_dataset, **{"prompt": "disc", "model": video_seg, **options})
    with pytest.raises(TypeError, match="Sam3VideoSegmenter"):
        apply_sam3(video_dataset, "disc", model=segmenter)
    with pytest.raises(ValueError, match="for video datasets"):
        apply_sam3(make_dataset(), "disc", model=segmenter, direction="forward")
    assert not video_dataset.has_frame_field("sam3") and not video_dataset.has_sample_field("sam3_tracks")


# ---------------------------------------------------------------------------------------------- failures


def test_unreadable_video_and_late_prompt_frame_are_recorded_and_leave_no_labels(
    make_dataset, video_files, video_seg, tmp_path
):
    from sam3kit.fiftyone import apply_sam3

    short = write_video(tmp_path / "short.avi", frames=2)
    dataset = make_dataset(files=[video_files[0], str(tmp_path / "gone.avi"), short])
    summary = apply_sam3(
        dataset, "disc", model=video_seg, prompt_frame=3, direction="forward", progress=False
    )
    assert (summary.done, summary.failed) == (1, 2)
    first, gone, late = dataset.values("id")
    errors = dict(zip(dataset.values("id"), dataset.values("sam3_error")))
    assert errors[first] is None
    assert "gone.avi" in errors[gone]
    assert "prompt_frame 3 is past the video's last frame (2)" in errors[late]
    assert sorted(frame_labels(dataset, first)) == [3, 4, 5, 6]  # forward from frame 3
    assert frame_labels(dataset, gone) == {} and frame_labels(dataset, late) == {}
    assert dataset.exists("sam3_tracks").values("id") == [first]


def test_a_video_failing_mid_track_keeps_none_of_its_frames(video_dataset, video_seg, monkeypatch):
    from sam3kit.fiftyone import apply_sam3, video
    from sam3kit.video import VideoSession

    monkeypatch.setattr(video, "FRAME_CHUNK", 2)
    original = VideoSession.propagate

    def propagate(self, *args, **kwargs):
        for i, frame in enumerate(original(self, *args, **kwargs)):
            if i == 4 and "a.avi" in self.frames.describe():
                raise RuntimeError("decoder lost")
            yield frame

    monkeypatch.setattr(VideoSession, "propagate", propagate)
    summary = apply_sam3(video_dataset, "disc", model=video_seg, progress=False)
    assert (summary.done, summary.failed) == (1, 1)
    a, b = video_dataset.values("id")
    assert frame_labels(video_dataset, a) == {}  # four frames had been written, then cleared
    assert "decoder lost" in video_dataset[a].sam3_error
    assert len(frame_labels(video_dataset, b)) == T


def test_interrupted_run_resumes_with_unfinished_videos_only(video_dataset, video_seg, monkeypatch):
    from sam3kit.fiftyone import apply_sam3, video
    from sam3kit.video import VideoSession

    reference = {}
    apply_sam3(video_dataset, "disc", "clean", model=video_seg, mask_threshold=0.0, progress=False)
    for sample in video_dataset:
        reference[sample.id] = {
            n: stored_tracks(d) for n, d in frame_labels(video_dataset, sample.id, "clean").items()
        }

    monkeypatch.setattr(video, "FRAME_CHUNK", 2)
    original = VideoSession.propagate
    opened = []

    def propagate(self, *args, **kwargs):
        opened.append(self.frames.describe())
        for i, frame in enumerate(original(self, *args, **kwargs)):
            if i == 3 and "b.avi" in self.frames.describe() and len(opened) == 2:
                raise KeyboardInterrupt  # Ctrl-C in the middle of the second video
            yield frame

    monkeypatch.setattr(VideoSession, "propagate", propagate)
    with pytest.raises(KeyboardInterrupt):
        apply_sam3(video_dataset, "disc", "sam3", model=video_seg, mask_threshold=0.0, progress=False)
    a, b = video_dataset.values("id")
    assert len(frame_labels(video_dataset, b)) == 2  # one chunk of the second video had been written
    assert video_dataset.exists("sam3_tracks").values("id") == [a]  # ...but it is not done

    summary = apply_sam3(video_dataset, "disc", "sam3", model=video_seg, mask_threshold=0.0, progress=False)
    assert (summary.done, summary.skipped) == (1, 1)
    assert "b.avi" in opened[-1] and len(opened) == 3
    for sample in video_dataset:
        got = {n: stored_tracks(d) for n, d in frame_labels(video_dataset, sample.id).items()}
        assert got == reference[sample.id]
    history = video_dataset.load_run_results("sam3kit_sam3").history
    assert [h["status"] for h in history] == ["interrupted", "completed"]


def test_existing_frame_field_is_kept_unless_overwrite(video_dataset, video_seg):
    import fiftyone as fo

    from sam3kit.fiftyone import FieldExistsError, apply_sam3

    sample = video_dataset.first()
    mine = fo.Detections(detections=[fo.Detection(label="mine", bounding_box=[0.1, 0.1, 0.2, 0.2])])
    sample.frames[1]["sam3"] = mine
    sample.save()
    with pytest.raises(FieldExistsError, match="frame field 'sam3'.*not made by sam3kit"):
        apply_sam3(video_dataset, "disc", model=video_seg, progress=False)
    assert video_dataset.first().frames[1]["sam3"].detections[0].label == "mine"
    apply_sam3(video_dataset, "disc", model=video_seg, mask_threshold=0.0, overwrite=True, progress=False)
    labels = {d.label for d in video_dataset.first().frames[1]["sam3"].detections}
    assert labels <= {"disc"}  # what the run found there, if anything; the user's label is gone
    assert video_dataset.get_field("frames.sam3").info["sam3kit"]["prompt"] == ["disc"]


# ---------------------------------------------------------------------------------------------- App operator


def test_operator_form_and_run_on_a_video_dataset(installed_plugin, video_dataset, tiny_video_checkpoint):
    import fiftyone as fo
    import fiftyone.operators as foo
    from fiftyone.operators.executor import ExecutionContext

    from sam3kit.fiftyone import OPERATOR_URI, forget_models
    from sam3kit.fiftyone.operators import ApplySam3

    sample = video_dataset.first()
    sample.frames[2]["boxes"] = fo.Detections(
        detections=[fo.Detection(label="disc", bounding_box=[0.1, 0.3, 0.3, 0.3])]
    )
    sample.save()
    ctx = ExecutionContext(request_params={"dataset_name": video_dataset.name, "params": {"prompt": "disc"}})
    form = ApplySam3().resolve_input(ctx).type.properties
    assert set(form["prompt_field"].type.values) == {"frames.boxes"}
    assert {"prompt_frame", "direction"} <= set(form) and not {"output", "batch_size"} & set(form)

    params = {"prompt_field": "frames.boxes", "model": str(tiny_video_checkpoint), "device": "cpu",
              "direction": "forward", "mask_threshold": 0.0}  # fmt: skip
    try:
        result = foo.execute_operator(OPERATOR_URI, ctx=dict(dataset=video_dataset, params=params))
    finally:
        forget_models()
    assert (result.result["done"], result.result["failed"]) == (2, 0)
    second = video_dataset.last()  # no prompt labels: nothing asked of it, done with no tracks
    assert frame_labels(video_dataset, second.id) == {} and second.sam3_tracks.detections == []
    frames = frame_labels(video_dataset, sample.id)
    assert sorted(frames) == list(range(2, T + 1))  # forward from the prompted frame 2
    assert {d.index for f in frames.values() for d in f.detections} == {1}
    requests = [r.to_json() for r in result.executor._requests]
    progress = [r["params"]["message"] for r in requests if r["operator_uri"] == "console_log"]
    assert progress[-1] == "Progress: 1.0 - 2 of 2 videos"
