"""Video / z-stack propagation against a tiny random SAM 3: ids, directions, coordinates, streaming, bit depth.

Random weights make masks meaningless, so these tests check structure, ids, shapes, coordinates and what is
held in memory, and compare sam3kit's streaming path with transformers' whole-video pipelines tensor for
tensor.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch

from sam3kit.frames import (
    ArrayFrames,
    FolderFrames,
    FrameSourceError,
    IntensityScaling,
    TiffFrames,
    intensity_scaling,
    open_frames,
)
from sam3kit.request import RequestError
from sam3kit.result import SegmentationResult
from sam3kit.video import FrameResult, label_image_by_id

TARGET = 112  # the tiny checkpoint's input size (pixels)
T, H, W = 8, 64, 80


@pytest.fixture(scope="session")
def video_checkpoint(tiny_video_checkpoint):
    return tiny_video_checkpoint


def moving_disc(frames: int = T, dtype=np.uint16) -> np.ndarray:
    """A bright disc moving 6 px per frame to the right over a dim background: (frames, 64, 80)."""
    yy, xx = np.mgrid[0:H, 0:W]
    stack = np.full((frames, H, W), 300, dtype)
    for t in range(frames):
        stack[t][(yy - 32) ** 2 + (xx - 12 - 6 * t) ** 2 < 9**2] = 3000 + 10 * t
    return stack


def _full_masks(**fields):
    """Request fields whose masks cover every frame (threshold 0), so every object appears on every frame."""
    return {"mask_threshold": 0.0, **fields}


# ---------------------------------------------------------------------------------------------- loading


def test_video_modules_import_without_torch_or_a_gui():
    import subprocess
    import sys

    code = (
        "import sys, sam3kit.video, sam3kit.frames, sam3kit.cli_track\n"
        "heavy = {'torch', 'transformers', 'cv2', 'tifffile', 'napari', 'qtpy', 'PyQt6', 'fiftyone'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_checkpoint_whose_tracker_cannot_carry_memory_is_refused_with_the_reason(video_seg):
    from types import SimpleNamespace

    from sam3kit.errors import ModelLoadError
    from sam3kit.video import check_tracker_config

    check_tracker_config(video_seg.model)  # the tiny video checkpoint: memory 64, hidden 128

    def model(memory, reads, hidden):
        attention = SimpleNamespace(cross_attn_image=SimpleNamespace(k_proj=torch.nn.Linear(reads, 4)))
        tracker = SimpleNamespace(
            mem_dim=memory, hidden_dim=hidden, memory_attention=SimpleNamespace(layers=[attention])
        )
        return SimpleNamespace(tracker_model=tracker)

    check_tracker_config(model(64, 64, 256))  # facebook/sam3
    with pytest.raises(ModelLoadError, match="memory has 16 channels, its memory attention reads 64"):
        check_tracker_config(model(16, 64, 32))  # the image tests' tiny checkpoint
    with pytest.raises(ModelLoadError, match="64-channel object pointers"):
        check_tracker_config(model(64, 64, 64))


def test_track_prompts_one_frame_and_propagates(video_seg):
    frames = video_seg.track(
        moving_disc(5), frame_idx=2, direction="forward", point_prompts=[{"x": 24, "y": 32}]
    )
    assert [f.frame_idx for f in frames] == [2, 3, 4]


# ---------------------------------------------------------------------------------------------- prompts


def test_point_and_box_reach_the_tracker_in_model_input_pixels(video_seg):
    calls = []
    hook = video_seg.model.tracker_model.prompt_encoder.register_forward_pre_hook(
        lambda m, args, kwargs: calls.append(kwargs), with_kwargs=True
    )
    try:
        session = video_seg.init_video_session(moving_disc())
        session.add_prompt(
            3,
            point_prompts=[
                {"x": 30, "y": 20, "object_id": 4},
                {"x": 60, "y": 50, "label": 0, "object_id": 4},
            ],
            box_prompts=[{"x_min": 10, "y_min": 5, "x_max": 70, "y_max": 45, "object_id": 4}],
        )
    finally:
        hook.remove()
    (call,) = calls
    sx, sy = TARGET / W, TARGET / H
    expected = [[[[10 * sx, 5 * sy], [70 * sx, 45 * sy], [30 * sx, 20 * sy], [60 * sx, 50 * sy]]]]
    assert torch.allclose(call["input_points"], torch.tensor(expected), atol=1e-4)
    assert call["input_labels"].tolist() == [[[2, 3, 1, 0]]]  # box corners, then the clicks


def test_prompts_that_cannot_be_tracked_are_refused_by_name(video_seg):
    session = video_seg.init_video_session(moving_disc())
    with pytest.raises(RequestError, match="exemplar"):
        session.add_prompt(
            0, prompt="cell", box_prompts=[{"x_min": 1, "y_min": 1, "x_max": 9, "y_max": 9, "exemplar": True}]
        )
    with pytest.raises(RequestError, match="frame 8 is outside"):
        session.add_prompt(8, point_prompts=[{"x": 1, "y": 1}])
    with pytest.raises(RequestError, match="outside the 80x64 image"):
        session.add_prompt(0, point_prompts=[{"x": 81, "y": 1}])
    with pytest.raises(RequestError, match="add a prompt first"):
        next(session.propagate())
    session.add_prompt(0, point_prompts=[{"x": 5, "y": 5}])
    with pytest.raises(ValueError, match="direction"):
        next(session.propagate("sideways"))


# ---------------------------------------------------------------------------------------------- ids and order


def test_each_object_keeps_its_id_on_every_frame(video_seg):
    session = video_seg.init_video_session(moving_disc())
    first = session.add_prompt(
        2,
        **_full_masks(
            point_prompts=[{"x": 24, "y": 32, "object_id": 7}],
            box_prompts=[{"x_min": 50, "y_min": 10, "x_max": 70, "y_max": 30}],  # no id: gets 8
        ),
    )
    assert first.object_ids.tolist() == [7, 8]
    frames = list(session.propagate("forward"))
    assert [f.frame_idx for f in frames] == list(range(2, T))
    for frame in frames:
        assert frame.result.object_ids.tolist() == [7, 8]
        assert frame.result.sources == ["object", "object"]
        assert frame.result.image_size == (H, W)
        assert set(np.unique(frame.label_image())) <= {0, 7, 8}
    assert session.object_ids == [7, 8]


@pytest.mark.parametrize(
    "direction, expected",
    [
        ("forward", [3, 4, 5, 6, 7]),
        ("backward", [3, 2, 1, 0]),
        ("both", [3, 4, 5, 6, 7, 2, 1, 0]),
    ],
)
def test_frames_before_the_prompt_frame_are_visited_only_backward(video_seg, direction, expected):
    session = video_seg.init_video_session(moving_disc())
    session.add_prompt(3, **_full_masks(point_prompts=[{"x": 30, "y": 32, "object_id": 1}]))
    seen = []
    frames = [f.frame_idx for f in session.propagate(direction, progress=lambda d, t: seen.append((d, t)))]
    assert frames == expected
    assert seen == [(i + 1, len(expected)) for i in range(len(expected))]


def test_concept_instances_get_ids_above_the_objects_and_keep_them(eager):
    session = eager.init_video_session(moving_disc(5))
    session.add_prompt(
        0,
        prompt="cell",
        score_threshold=0.0,
        **_full_masks(point_prompts=[{"x": 12, "y": 32, "object_id": 3}]),
    )
    frames = list(session.propagate("forward"))
    concept_ids = set()
    for frame in frames:
        res = frame.result
        kinds = dict(zip(res.object_ids.tolist(), res.sources))
        assert kinds.pop(3) == "object"
        assert set(kinds.values()) <= {"concept"}
        assert all(c == "cell" for c, s in zip(res.concepts, res.sources) if s == "concept")
        assert len(set(res.object_ids.tolist())) == len(res)  # no id twice on a frame
        concept_ids |= set(kinds)
    assert concept_ids and min(concept_ids) > 3
    assert sorted(session.object_ids) == sorted({3} | concept_ids)
    with pytest.raises(RequestError, match="already names a tracked concept"):
        session.add_prompt(1, point_prompts=[{"x": 5, "y": 5, "object_id": min(concept_ids)}])


# ---------------------------------------------------------------------------------------------- against transformers


def _rgb(session, stack):
    return np.stack([session.scaling.to_rgb(f) for f in stack])


def test_object_tracking_equals_transformers_whole_video_pipeline(video_seg, video_checkpoint):
    from transformers import Sam3TrackerVideoModel

    stack = moving_disc()
    prompts = {1: ([[30.0, 32.0]], [1]), 2: ([[50.0, 10.0], [70.0, 30.0], [60.0, 20.0]], [2, 3, 1])}
    session = video_seg.init_video_session(stack)
    session.add_prompt(
        3,
        point_prompts=[{"x": 30, "y": 32, "object_id": 1}, {"x": 60, "y": 20, "object_id": 2}],
        box_prompts=[{"x_min": 50, "y_min": 10, "x_max": 70, "y_max": 30, "object_id": 2}],
    )
    ours = {}
    hook = video_seg.model.tracker_model.register_forward_hook(
        lambda m, a, k, out: ours.__setitem__(out.frame_idx, out), with_kwargs=True
    )
    try:
        list(session.propagate("both"))
    finally:
        hook.remove()

    reference = Sam3TrackerVideoModel.from_pretrained(str(video_checkpoint)).eval()
    processor = video_seg.tracker_processor
    ref_session = processor.init_video_session(video=_rgb(session, stack), inference_device="cpu")
    for oid, (points, labels) in prompts.items():
        processor.add_inputs_to_inference_session(
            ref_session, frame_idx=3, obj_ids=[oid], input_points=[[points]], input_labels=[[labels]]
        )
        reference(inference_session=ref_session, frame_idx=3)
    theirs = {}
    for reverse in (False, True):
        for out in reference.propagate_in_video_iterator(ref_session, start_frame_idx=3, reverse=reverse):
            theirs.setdefault(out.frame_idx, out)
    assert sorted(ours) == sorted(theirs) == list(range(T))
    for t in range(T):
        assert ours[t].object_ids == theirs[t].object_ids == [1, 2]
        torch.testing.assert_close(ours[t].pred_masks, theirs[t].pred_masks, rtol=1e-4, atol=1e-4)


def test_concept_tracking_equals_transformers_whole_video_pipeline(eager, video_checkpoint, monkeypatch):
    from transformers import Sam3VideoModel

    hotstart = {"hotstart_delay": 2, "hotstart_unmatch_thresh": 1, "hotstart_dup_thresh": 1}
    for name, value in hotstart.items():  # shorter than the video, so held-back frames are released early
        monkeypatch.setattr(eager.model, name, value)
    stack = moving_disc(6)
    session = eager.init_video_session(stack)
    session.add_prompt(1, prompt="cell", score_threshold=0.0)
    ours = {f.frame_idx: f.result for f in session.propagate("forward")}

    reference = Sam3VideoModel.from_pretrained(str(video_checkpoint)).eval()
    reference.new_det_thresh, reference.score_threshold_detection = 0.0, 0.0
    reference.max_num_objects = eager.model.max_num_objects
    for name, value in hotstart.items():
        setattr(reference, name, value)
    processor = eager.processor
    ref_session = processor.init_video_session(video=_rgb(session, stack), inference_device="cpu")
    processor.add_text_prompt(ref_session, "cell")
    theirs = {
        out.frame_idx: processor.postprocess_outputs(ref_session, out)
        for out in reference.propagate_in_video_iterator(ref_session, start_frame_idx=1)
    }
    assert sorted(ours) == sorted(theirs) == [1, 2, 3, 4, 5]
    public_of: dict[int, int] = {}
    for t, post in theirs.items():
        shown = post["masks"].flatten(1).any(1)  # sam3kit reports an object only where it has pixels
        ids = post["object_ids"][shown].tolist()
        assert len(ids) == len(ours[t])
        for model_id, public_id in zip(ids, ours[t].object_ids.tolist()):
            assert public_of.setdefault(model_id, public_id) == public_id  # one public id per track
        assert np.array_equal(ours[t].masks, post["masks"][shown].numpy())
        np.testing.assert_allclose(ours[t].scores, post["scores"][shown].numpy(), rtol=1e-5)
    assert len(set(public_of.values())) == len(public_of)
    assert sum(len(r) for r in ours.values()) > 0  # the comparison was not vacuous


def test_concept_frames_are_held_back_for_the_hotstart_delay_and_removed_tracks_hidden(eager, monkeypatch):
    monkeypatch.setattr(eager.model, "hotstart_delay", 2)

    def run(remove_at_frame_1=None):
        session = eager.init_video_session(moving_disc(5))
        session.add_prompt(0, prompt="cell", score_threshold=0.0)
        processed, step = [], session._step

        def spy(frame_idx, reverse):
            concept_out, objects = step(frame_idx, reverse)
            processed.append(frame_idx)
            if frame_idx == 1 and remove_at_frame_1 is not None:  # as if the model removed this track here
                concept_out.removed_obj_ids = {remove_at_frame_1}
            return concept_out, objects

        session._step = spy
        frames = {}
        for frame in session.propagate("forward"):
            model_id = {public: model for model, public in session._concept_ids.items()}
            frames[frame.frame_idx] = (
                len(processed),
                [model_id[i] for i in frame.result.object_ids.tolist()],
            )
        return frames

    frames = run()
    assert [(t, done) for t, (done, _) in frames.items()] == [(0, 2), (1, 3), (2, 4), (3, 5), (4, 5)]
    found = frames[0][1]
    assert found, "no concept track on frame 0"
    frames = run(remove_at_frame_1=found[0])
    assert found[0] not in frames[0][1]  # removed before frame 0 was released: never reported
    assert set(found[1:]) <= set(frames[0][1])


# ---------------------------------------------------------------------------------------------- memory


class CountingStack:
    """A lazy (T, H, W) source that makes each frame on request and counts how many are alive at once."""

    def __init__(self, stack):
        self.stack = stack
        self.shape = stack.shape
        self.alive = 0
        self.most_alive = 0
        self.reads = 0

    def __len__(self):
        return len(self.stack)

    def __getitem__(self, index):
        frame = self.stack[index].copy()
        self.reads += 1
        self.alive += 1
        self.most_alive = max(self.most_alive, self.alive)
        weakref.finalize(frame, self._gone)
        return frame

    def _gone(self):
        self.alive -= 1


def test_frames_stream_from_their_source_one_at_a_time(video_seg):
    source = CountingStack(moving_disc())
    session = video_seg.init_video_session(source)
    sampled = source.reads  # the intensity range is chosen from a sample of frames
    assert sampled == T  # (all 8 here: fewer than the 16-frame sample)
    session.add_prompt(3, point_prompts=[{"x": 30, "y": 32}])
    for _ in session.propagate("both"):
        assert source.alive <= 1
    assert source.most_alive <= 2  # frame 0 and one sampled frame while choosing the range
    assert source.reads - sampled == T  # every frame read once, the prompt frame included
    assert session.frames_read == T
    assert session._features.computed == T  # one backbone pass per frame


def test_one_backbone_pass_per_frame_serves_concepts_and_objects(eager):
    calls = []
    hook = eager.model.detector_model.vision_encoder.register_forward_pre_hook(lambda m, a: calls.append(1))
    try:
        session = eager.init_video_session(moving_disc(4))
        session.add_prompt(0, prompt="cell", score_threshold=0.0, point_prompts=[{"x": 12, "y": 32}])
        list(session.propagate("forward"))
    finally:
        hook.remove()
    assert len(calls) == 4 + 1  # once per frame, plus the prompt frame before propagation


def test_old_tracked_outputs_are_dropped_without_changing_results(video_seg, monkeypatch):
    import sam3kit.video as video

    tracker = video_seg.model.tracker_model
    monkeypatch.setattr(tracker, "num_maskmem", 2)
    monkeypatch.setattr(tracker.config, "max_object_pointers_in_encoder", 2)
    assert video.memory_window(video_seg.model) == 2

    def run():
        session = video_seg.init_video_session(moving_disc())
        session.add_prompt(0, point_prompts=[{"x": 12, "y": 32, "object_id": 1}])
        logits = {}
        hook = tracker.register_forward_hook(
            lambda m, a, k, out: logits.__setitem__(out.frame_idx, out.pred_masks), with_kwargs=True
        )
        try:
            list(session.propagate("forward"))
        finally:
            hook.remove()
        return logits, session._object_session.output_dict_per_obj[0]["non_cond_frame_outputs"]

    pruned, held = run()
    assert sorted(held) == [1, 2, 5, 6, 7]  # within 2 frames of the prompt frame 0 or of the last frame
    monkeypatch.setattr(video, "forget_far_outputs", lambda *a: None)
    kept, held_all = run()
    assert sorted(held_all) == list(range(1, T))
    for t in range(T):
        torch.testing.assert_close(pruned[t], kept[t])


# ---------------------------------------------------------------------------------------------- bit depth


def test_16bit_stack_gets_one_intensity_range_for_all_frames(video_seg):
    stack = moving_disc()
    stack[5] += 2000  # a brighter frame must stay brighter, not be re-stretched on its own
    session = video_seg.init_video_session(stack)
    low, high = np.percentile(stack.astype(np.float32), [0.5, 99.5])
    assert session.scaling.mode == "stack"
    assert (session.scaling.low, session.scaling.high) == pytest.approx((low, high))
    rgb4, rgb5 = session.scaling.to_rgb(stack[4]), session.scaling.to_rgb(stack[5])
    assert rgb5[0, 0, 0] > rgb4[0, 0, 0]  # background of the bright frame is brighter
    expected = (
        np.clip((stack[4].astype(np.float32) - low) * 255 / (high - low), 0, 255).round().astype(np.uint8)
    )
    assert np.array_equal(rgb4[..., 0], expected)
    pixels = session._pixels[4]
    reference = video_seg.processor.image_processor(images=[rgb4], return_tensors="pt")["pixel_values"][0]
    assert pixels.shape == (3, TARGET, TARGET) and torch.equal(pixels, reference)

    per_frame = video_seg.init_video_session(stack, intensity="frame")
    assert per_frame.scaling.mode == "frame"
    assert per_frame.scaling.to_rgb(stack[5])[0, 0, 0] == per_frame.scaling.to_rgb(stack[4])[0, 0, 0]


def test_intensity_choices_for_other_dtypes():
    floats = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    assert intensity_scaling(ArrayFrames(floats)) == IntensityScaling("stack", 0.0, 1.0)
    assert intensity_scaling(ArrayFrames(np.zeros((3, 8, 8), np.uint8))).mode == "none"
    assert intensity_scaling(ArrayFrames(floats), (0.2, 0.4)) == IntensityScaling("stack", 0.2, 0.4)
    with pytest.raises(ValueError, match="intensity"):
        intensity_scaling(ArrayFrames(floats), "global")


# ---------------------------------------------------------------------------------------------- sources


def test_frame_sources_read_folders_stacks_and_videos(tmp_path):
    from PIL import Image

    stack = moving_disc(4)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in (0, 1, 2, 3):
        Image.fromarray(stack[t]).save(folder / f"t{[2, 10, 1, 3][t]}.png")
    source = open_frames(folder)
    assert isinstance(source, FolderFrames) and [p.name for p in source.paths] == [
        "t1.png",
        "t2.png",
        "t3.png",
        "t10.png",
    ]
    assert source.read(0).dtype == np.uint16 and np.array_equal(source.read(3), stack[1])

    np.save(tmp_path / "stack.npy", stack)
    npy = open_frames(tmp_path / "stack.npy")
    assert isinstance(npy.array, np.memmap) and np.array_equal(npy.read(2), stack[2])

    import tifffile

    tifffile.imwrite(tmp_path / "stack.tif", stack)  # uncompressed: memory-mapped
    tif = open_frames(tmp_path / "stack.tif")
    assert isinstance(tif.array, np.memmap) and np.array_equal(tif.read(3), stack[3])
    tifffile.imwrite(tmp_path / "pages.tif", stack, imagej=True, compression="zlib")  # one page per frame
    pages = open_frames(tmp_path / "pages.tif")
    assert isinstance(pages, TiffFrames) and len(pages) == 4 and np.array_equal(pages.read(3), stack[3])
    pages.close()

    with pytest.raises(FrameSourceError, match="no such file"):
        open_frames(tmp_path / "missing.mp4")
    with pytest.raises(FrameSourceError, match=r"\(T, H, W\)"):
        open_frames(stack[0])


def test_video_file_frames_decode_in_order_and_after_a_jump(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (W, H))
    for t in range(5):
        writer.write(np.full((H, W, 3), 40 * t, np.uint8))
    writer.release()
    video = open_frames(path)
    assert len(video) == 5
    means = [float(video.read(t).mean()) for t in (0, 1, 2, 4, 1)]  # the last read seeks back
    assert means == pytest.approx([0, 40, 80, 160, 40], abs=3)
    assert video.read(0).shape == (H, W, 3)
    video.close()


def test_frames_of_different_sizes_are_refused(video_seg):
    frames = [np.zeros((H, W), np.uint16), np.zeros((H, W + 1), np.uint16)]
    session = video_seg.init_video_session(frames)
    with pytest.raises(FrameSourceError, match="same size"):
        session.add_prompt(1, point_prompts=[{"x": 5, "y": 5}])


# ---------------------------------------------------------------------------------------------- labels


def test_label_image_holds_object_ids_and_higher_score_wins():
    masks = np.zeros((2, 4, 5), bool)
    masks[0, :2] = True
    masks[1, 1:] = True
    result = SegmentationResult(
        (4, 5), masks, [0.9, 0.4], np.zeros((2, 4)), [12, 300], ["object"] * 2, [None] * 2
    )
    labels = FrameResult(0, result).label_image()
    assert labels.dtype == np.uint16
    assert labels[0].tolist() == [12] * 5 and labels[1].tolist() == [12] * 5  # 12 scores higher
    assert labels[3].tolist() == [300] * 5
    with pytest.raises(ValueError, match="does not fit"):
        label_image_by_id(result, np.uint8)
