"""The core stays headless: importing and using it never pulls in Qt, napari or FiftyOne."""

import subprocess
import sys

CORE = [
    "sam3kit",
    "sam3kit.request",
    "sam3kit.images",
    "sam3kit.coords",
    "sam3kit.result",
    "sam3kit.model",
    "sam3kit.engine",
    "sam3kit.cli",
    "sam3kit.errors",
    "sam3kit.testing",
]


def test_core_modules_import_no_gui_or_dataset_framework():
    code = (
        "import sys\n"
        f"for m in {CORE!r}: __import__(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'fiftyone', 'magicgui'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_importing_the_package_does_not_import_torch():
    code = "import sys, sam3kit; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
