"""Loading: one shared backbone, and errors that say what to do."""

import json
import shutil

import pytest
import torch

from sam3kit import DEFAULT_MODEL, ModelLoadError, Sam3Segmenter
from sam3kit import model as model_mod


def test_detector_and_tracker_share_one_backbone_in_memory(segmenter):
    det = segmenter.loaded.detector.vision_encoder.backbone
    trk = segmenter.loaded.tracker.vision_encoder.backbone
    assert segmenter.loaded.backbone_shared
    det_ptrs = {p.data_ptr() for p in det.parameters()}
    assert det_ptrs == {p.data_ptr() for p in trk.parameters()}
    # the necks stay separate: the tracker's is its own (tracker_neck in the checkpoint)
    det_neck = {p.data_ptr() for p in segmenter.loaded.detector.vision_encoder.neck.parameters()}
    assert det_neck.isdisjoint(
        p.data_ptr() for p in segmenter.loaded.tracker.vision_encoder.neck.parameters()
    )


def test_all_weights_load_with_none_missing(tiny_checkpoint):
    from transformers import Sam3Model, Sam3TrackerModel

    for cls in (Sam3Model, Sam3TrackerModel):
        _, info = cls.from_pretrained(str(tiny_checkpoint), output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], cls.__name__


def test_differing_backbones_are_kept_apart(tiny_checkpoint):
    from transformers import Sam3Model, Sam3TrackerModel

    det = Sam3Model.from_pretrained(str(tiny_checkpoint))
    trk = Sam3TrackerModel.from_pretrained(str(tiny_checkpoint))
    with torch.no_grad():
        next(trk.vision_encoder.backbone.parameters()).add_(1.0)
    assert not model_mod.share_backbone(det, trk)
    assert trk.vision_encoder.backbone is not det.vision_encoder.backbone


def test_auto_device_and_dtype_on_a_cpu_machine():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert model_mod.resolve_device("auto") in (expected, "mps")
    assert model_mod.resolve_dtype("auto", "cpu") == torch.float32
    assert model_mod.resolve_dtype("auto", "cuda") == torch.bfloat16
    with pytest.raises(ModelLoadError, match="dtype"):
        model_mod.resolve_dtype("float8", "cpu")


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_folder_missing_weights_says_so(tiny_checkpoint, tmp_path):
    folder = _copy(tiny_checkpoint, tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        Sam3Segmenter.from_pretrained(str(folder))


def test_folder_missing_processor_says_so(tiny_checkpoint, tmp_path):
    folder = _copy(tiny_checkpoint, tmp_path / "m")
    (folder / "processor_config.json").unlink()
    with pytest.raises(ModelLoadError, match="processor_config.json"):
        Sam3Segmenter.from_pretrained(str(folder))


def test_folder_of_another_model_type_says_so(tiny_checkpoint, tmp_path):
    folder = _copy(tiny_checkpoint, tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "sam2_video"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="'sam2_video' model, not SAM 3"):
        Sam3Segmenter.from_pretrained(str(folder))


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        Sam3Segmenter.from_pretrained(str(tmp_path))
    with pytest.raises(ModelLoadError, match="does not exist"):
        Sam3Segmenter.from_pretrained(str(tmp_path / "absent"))


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(
        "huggingface_hub.file_download.constants.HF_HUB_CACHE", str(tmp_path / "hub"), raising=False
    )


def test_offline_with_nothing_cached_says_to_connect_or_use_a_folder(empty_hub_cache, monkeypatch):
    monkeypatch.setattr(model_mod, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelLoadError, match="cannot reach the Hugging Face hub.*not in the local cache"):
        Sam3Segmenter.from_pretrained(DEFAULT_MODEL)  # the hub itself is simulated above


@pytest.mark.parametrize(
    "error, status, message",
    [
        ("GatedRepoError", 401, r"accept the licence.*hf auth login"),
        ("RepositoryNotFoundError", 404, "neither a local folder nor a model"),
    ],
)
def test_hub_refusals_say_what_to_do(empty_hub_cache, monkeypatch, error, status, message):
    """The hub is the one edge tests cannot reach: its answer to a refused download is simulated."""
    import httpx2
    from huggingface_hub import errors

    def refuse(*args, **kwargs):
        response = httpx2.Response(
            status, request=httpx2.Request("GET", "https://huggingface.co/facebook/sam3")
        )
        raise getattr(errors, error)("refused", response=response)

    monkeypatch.setattr(model_mod, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", refuse)
    with pytest.raises(ModelLoadError, match=message):
        Sam3Segmenter.from_pretrained(DEFAULT_MODEL)  # the hub itself is simulated above
