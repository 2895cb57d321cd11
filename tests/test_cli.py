"""The command line end to end, in a subprocess, on the tiny checkpoint."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def run(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sam3kit.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture
def image_folder(tmp_path, rgb_image):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(rgb_image).save(folder / "a.png")
    Image.fromarray((np.arange(40 * 48).reshape(40, 48) * 30).astype(np.uint16)).save(folder / "b16.png")
    (folder / "broken.png").write_bytes(b"this is not an image")
    return folder


def test_segment_writes_masks_labels_preview_and_seed_json(tiny_checkpoint, image_folder, tmp_path):
    out = tmp_path / "out"
    proc = run(
        "segment",
        image_folder,
        "--out",
        out,
        "--model",
        tiny_checkpoint,
        "--prompt",
        "cell",
        "--score-threshold",
        "0",
        "--max-masks",
        "3",
        "--point",
        "30,20,1,5",
        "--box",
        "5,5,40,40",
    )
    assert proc.returncode == 1, proc.stderr  # one broken image among good ones
    assert "broken.png" in proc.stderr and "2 segmented" in proc.stderr and "1 failed" in proc.stderr
    body = json.loads((out / "a.json").read_text())
    assert len(body["scores"]) == len(body["boxes"]) == len(body["metadata"]) == 5  # 3 concept + 2 objects
    assert [m["object_id"] for m in body["metadata"]][-2:] == [5, 6]
    assert all(0 <= v <= 1 for b in body["boxes"] for v in b)
    assert body["image"]["url"] == "a_preview.png"
    labels = np.asarray(Image.open(out / "a_labels.png"))
    assert labels.shape == (60, 90) and labels.max() <= 5
    mask0 = np.asarray(Image.open(out / body["masks"][0]["url"]))
    assert mask0.shape == (60, 90) and set(np.unique(mask0)) <= {0, 255}
    assert body["provenance"]["model"] == str(tiny_checkpoint)
    b16 = json.loads((out / "b16.json").read_text())
    assert np.asarray(Image.open(out / "b16_labels.png")).shape == (40, 48) and len(b16["metadata"]) == 5


def test_rerun_skips_done_images_unless_overwrite(tiny_checkpoint, image_folder, tmp_path):
    out = tmp_path / "out"
    (image_folder / "broken.png").unlink()
    first = run(
        "segment", image_folder / "*.png", "--out", out, "--model", tiny_checkpoint, "--prompt", "cell"
    )
    assert first.returncode == 0, first.stderr
    stamp = (out / "a.json").stat().st_mtime_ns
    again = run("segment", image_folder, "--out", out, "--model", tiny_checkpoint, "--prompt", "cell")
    assert again.returncode == 0 and "2 image(s) already done" in again.stderr
    assert (out / "a.json").stat().st_mtime_ns == stamp
    redo = run(
        "segment", image_folder, "--out", out, "--model", tiny_checkpoint, "--prompt", "cell", "--overwrite"
    )
    assert redo.returncode == 0 and "2 segmented" in redo.stderr
    assert (out / "a.json").stat().st_mtime_ns != stamp


def test_request_json_with_image_url_and_rle(tiny_checkpoint, tmp_path, rgb_image):
    import base64
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb_image).save(buf, format="PNG")
    body = {
        "image_url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
        "point_prompts": [{"x": 30, "y": 20, "label": 1}],
        "include_scores": False,
        "output_format": "jpeg",
    }
    (tmp_path / "req.json").write_text(json.dumps(body))
    out = tmp_path / "out"
    proc = run(
        "segment", "--request", tmp_path / "req.json", "--out", out, "--model", tiny_checkpoint, "--rle"
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "image.json").read_text())
    assert "scores" not in result and result["masks"][0]["size"] == [60, 90]
    assert (out / "image_preview.jpg").exists()


def test_bad_arguments_get_clear_messages(tiny_checkpoint, tmp_path):
    proc = run("segment", "x.png", "--out", tmp_path, "--point", "1,2,3,4,5")
    assert proc.returncode == 2 and "--point takes x,y" in proc.stderr
    proc = run(
        "segment", tmp_path / "none.png", "--out", tmp_path / "o", "--prompt", "a", "--model", tiny_checkpoint
    )
    assert proc.returncode == 2 and "no image matches" in proc.stderr
    proc = run("segment", "--out", tmp_path / "o", "--point", "1,2,7", "--model", tiny_checkpoint)
    assert proc.returncode == 2 and "label must be 1" in proc.stderr


def test_missing_model_folder_is_an_actionable_error(image_folder, tmp_path):
    proc = run(
        "segment", image_folder / "a.png", "--out", tmp_path / "o", "--prompt", "a", "--model", tmp_path
    )
    assert proc.returncode == 3 and "no config.json" in proc.stderr


def test_info_prints_versions_device_and_cache_state(tiny_checkpoint):
    proc = run("info", "--model", tiny_checkpoint)
    assert proc.returncode == 0, proc.stderr
    assert "torch" in proc.stdout and "transformers" in proc.stdout and "device        cpu" in proc.stdout
    assert "local folder (config.json found)" in proc.stdout
