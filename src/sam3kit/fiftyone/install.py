"""Installing the sam3kit plugin where FiftyOne looks for plugins (``fo.config.plugins_dir``).

FiftyOne discovers plugins only by their ``fiftyone.yml`` under its plugins directory; installing the
Python package does not register one. The plugin shipped in ``sam3kit/fiftyone/plugin`` is a manifest and
a thin ``__init__.py`` whose operators live in :mod:`sam3kit.fiftyone.operators`, so a copy stays valid
when sam3kit is upgraded (re-install it when a release adds operators).
"""

from __future__ import annotations

import shutil
from pathlib import Path

PLUGIN_NAME = "@sam3kit/sam3"
OPERATOR_URI = f"{PLUGIN_NAME}/apply_sam3"
PLUGIN_DIRNAME = "sam3kit"
PLUGIN_FILES = ("fiftyone.yml", "__init__.py")


def plugin_source() -> Path:
    """The plugin folder inside the installed package."""
    return Path(__file__).parent / "plugin"


def install_plugin(plugins_dir: str | Path | None = None, *, link: bool = False) -> Path:
    """Put the sam3kit plugin into ``plugins_dir`` (default: FiftyOne's ``fo.config.plugins_dir``).

    Copies the plugin's two files into ``<plugins_dir>/sam3kit`` (replacing an earlier install), or with
    ``link=True`` makes that folder a symbolic link to the package's plugin folder. Returns the folder.
    """
    if plugins_dir is None:
        import fiftyone as fo

        plugins_dir = fo.config.plugins_dir
        if not plugins_dir:
            raise ValueError(
                "FiftyOne has no plugins directory configured: set FIFTYONE_PLUGINS_DIR or pass plugins_dir"
            )
    target = Path(plugins_dir).expanduser() / PLUGIN_DIRNAME
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    source = plugin_source()
    if link:
        target.symlink_to(source, target_is_directory=True)
    else:
        target.mkdir()
        for name in PLUGIN_FILES:
            shutil.copy2(source / name, target / name)
    return target
