"""``sam3kit track`` end to end, in a subprocess, on a tiny random SAM 3 that can propagate."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sam3kit.cli import main
from sam3kit.cli_track import add_track_parser


@pytest.fixture(scope="session")
def video_checkpoint(tiny_video_checkpoint):
    return tiny_video_checkpoint


def moving_disc(frames):
    """16-bit frames (64 x 80) of a bright disc moving 6 px per frame to the right."""
    yy, xx = np.mgrid[0:64, 0:80]
    return np.stack(
        [
            np.where((yy - 32) ** 2 + (xx - 12 - 6 * t) ** 2 < 81, 3000, 300).astype(np.uint16)
            for t in range(frames)
        ]
    )


def run(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sam3kit.cli", "track", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture
def frame_folder(tmp_path):
    """Six 16-bit PNG frames of a moving disc, named so that plain sorting would misorder them."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(moving_disc(6)):
        Image.fromarray(frame).save(folder / f"z{t * 5}.png")  # z0, z5, z10, ... z25
    return folder


def test_track_writes_one_16bit_label_png_per_frame_and_a_summary(video_checkpoint, frame_folder, tmp_path):
    out = tmp_path / "out"
    body = tmp_path / "request.json"
    body.write_text(json.dumps({"mask_threshold": 0.0}))  # random weights: keep every object on every frame
    proc = run(
        frame_folder,
        "--request",
        body,
        "--out",
        out,
        "--model",
        video_checkpoint,
        "--device",
        "cpu",
        "--prompt",
        "cell",
        "--point",
        "30,32,1,4",
        "--box",
        "40,10,70,30",
        "--frame",
        "2",
        "--direction",
        "both",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "track.json").read_text())
    assert summary["num_frames"] == 6 and summary["frame_size"] == [64, 80]
    assert summary["prompt_frame"] == 2 and summary["direction"] == "both"
    assert summary["model"] == str(video_checkpoint) and summary["device"] == "cpu"
    assert summary["intensity"]["mode"] == "stack"  # 16-bit frames: one range for the stack
    (prompt,) = summary["prompts"]
    assert prompt["frame_idx"] == 2 and prompt["request"]["prompt"] == "cell"
    assert prompt["request"]["point_prompts"][0] == {"x": 30.0, "y": 32.0, "label": 1, "object_id": 4}
    assert [f["frame"] for f in summary["frames"]] == list(range(6))
    assert [f["name"] for f in summary["frames"]] == [f"z{t * 5}" for t in range(6)]  # natural order
    ids = {o["object_id"]: o for o in summary["objects"]}
    assert ids[4]["frames"] == ids[5]["frames"] == list(range(6))  # the point's id and the box's new id
    assert ids[4]["source"] == ids[5]["source"] == "object"
    for frame in summary["frames"]:
        labels = np.array(Image.open(out / frame["file"]))
        assert labels.dtype == np.uint16 and labels.shape == (64, 80)
        listed = {o["object_id"] for o in frame["objects"]}
        assert {4, 5} <= listed <= set(ids)
        assert set(np.unique(labels)) - {0} <= listed and (labels > 0).any()
        for obj in frame["objects"]:
            assert frame["frame"] in ids[obj["object_id"]]["frames"]
            assert ids[obj["object_id"]]["source"] == obj["source"]
    for obj in ids.values():
        assert obj["first_frame"] == min(obj["frames"]) and obj["last_frame"] == max(obj["frames"])
        if obj["source"] == "concept":
            assert obj["concept"] == "cell" and obj["object_id"] > 5  # above the objects' ids 4 and 5


def test_track_forward_from_a_frame_writes_only_the_frames_it_visits(video_checkpoint, tmp_path):
    stack = tmp_path / "stack.npy"
    np.save(stack, moving_disc(5))
    out = tmp_path / "out"
    argv = ["track", str(stack), "--out", str(out), "--model", str(video_checkpoint), "--device", "cpu"]
    assert main([*argv, "--point", "30,32", "--frame", "2", "--direction", "forward"]) == 0
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["00002.png", "00003.png", "00004.png"]
    summary = json.loads((out / "track.json").read_text())
    assert [f["frame"] for f in summary["frames"]] == [2, 3, 4]


def test_track_reports_bad_input_without_loading_the_model(tmp_path):
    proc = run(
        tmp_path / "missing.mp4", "--out", tmp_path / "out", "--point", "1,1", "--model", tmp_path / "nowhere"
    )
    assert proc.returncode == 2
    assert "no such file or folder" in proc.stderr
    proc = run(tmp_path, "--out", tmp_path / "out", "--model", tmp_path / "nowhere")
    assert proc.returncode == 2 and "nothing to segment" in proc.stderr


def test_track_subcommand_plugs_into_a_parent_parser():
    parser = argparse.ArgumentParser(prog="sam3kit")
    add_track_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["track", "movie.mp4", "--out", "o", "--point", "3,4,0,2", "--box", "1,2,3,4", "--frame", "7"]
    )
    assert args.command == "track" and args.input == "movie.mp4" and args.frame == 7
    assert args.point == [{"x": 3.0, "y": 4.0, "label": 0, "object_id": 2}]
    assert args.box == [{"x_min": 1.0, "y_min": 2.0, "x_max": 3.0, "y_max": 4.0}]
    assert args.direction == "both" and args.func.__name__ == "cmd_track"
    with pytest.raises(SystemExit):
        parser.parse_args(["track", "movie.mp4", "--out", "o", "--direction", "sideways"])
