"""One model per (model, device) for the whole session, loaded once even when asked for concurrently."""

from __future__ import annotations

import subprocess
import sys
import threading

import sam3kit.napari.models as models


def test_model_is_loaded_once_and_shared(monkeypatch):
    calls = []

    def fake_load(model, device="auto", **kwargs):
        calls.append((model, device))
        return object()

    monkeypatch.setattr(models, "_models", {})
    monkeypatch.setattr("sam3kit.engine.Sam3Segmenter.from_pretrained", staticmethod(fake_load))
    got = []
    threads = [
        threading.Thread(target=lambda: got.append(models.get_segmenter(" some/model ", "CPU")))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [("some/model", "cpu")]
    assert all(g is got[0] for g in got) and len(got) == 4
    assert models.loaded_segmenter("some/model", "cpu") is got[0]
    assert models.loaded_segmenter("some/model", "cuda") is None
    models.get_segmenter("some/model", "cuda")
    assert len(calls) == 2
    models.forget_models()
    assert models.loaded_segmenter("some/model", "cpu") is None


def test_model_loads_after_a_viewer_opened_on_software_opengl(tiny_checkpoint):
    """Loading the model after napari's canvas exists must not crash (triton after Mesa's LLVM does)."""
    code = (
        "import numpy as np, napari\n"
        "viewer = napari.Viewer(show=False)\n"
        "viewer.add_image(np.zeros((8, 8)))\n"
        "from sam3kit.napari.models import get_segmenter\n"
        f"seg = get_segmenter({str(tiny_checkpoint)!r}, 'cpu')\n"
        "print('masks', len(seg.segment(np.zeros((20, 30, 3), np.uint8), prompt='x', score_threshold=0.0)))\n"
        "viewer.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "masks 8" in out.stdout
