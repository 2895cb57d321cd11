"""The npe2 manifest: found through the entry point, every command importable, widget and samples open."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module
from pathlib import Path

import numpy as np
import yaml

import sam3kit

MANIFEST = Path(sam3kit.__file__).with_name("napari.yaml")


def test_repository_manifest_is_the_packaged_one():
    root = Path(__file__).resolve().parents[2] / "napari.yaml"
    assert root.resolve() == MANIFEST.resolve()


def test_every_command_resolves_to_an_importable_object():
    manifest = yaml.safe_load(MANIFEST.read_text())
    commands = manifest["contributions"]["commands"]
    assert len(commands) >= 2
    for command in commands:
        module, _, attr = command["python_name"].partition(":")
        assert callable(getattr(import_module(module), attr)), command["id"]
    ids = {c["id"] for c in commands}
    used = [w["command"] for w in manifest["contributions"]["widgets"]]
    used += [s["command"] for s in manifest["contributions"]["sample_data"]]
    assert set(used) <= ids


def test_installed_package_is_discovered_by_npe2():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("sam3kit")
    assert manifest.name == "sam3kit"
    assert [w.display_name for w in manifest.contributions.widgets] == ["SAM 3 segmentation"]


def test_widget_opens_from_the_plugins_menu(make_napari_viewer):
    from sam3kit.napari.widget import Sam3Widget

    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("sam3kit", "SAM 3 segmentation")
    assert isinstance(widget, Sam3Widget)
    assert widget.model.value == "facebook/sam3"
    viewer.add_image(np.zeros((8, 8)), name="late")  # the widget follows the viewer's layers
    assert widget.image.value.name == "late"


def test_sample_data_opens(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("sam3kit", "cells")
    (layer,) = viewer.layers
    assert layer.rgb and layer.data.shape == (256, 256, 3) and layer.data.dtype == np.uint8
    viewer.open_sample("sam3kit", "nuclei_stack")
    stack = viewer.layers[-1].data
    assert stack.shape == (8, 128, 128) and stack.dtype == np.uint16 and stack.max() > 2000


def test_opening_the_plugin_does_not_import_torch():
    code = (
        "import sys, sam3kit.napari.widget, sam3kit.napari.sample\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"
