"""The FiftyOne front end of sam3kit: ``apply_sam3``, a FiftyOne ``Model``, and an App plugin.

>>> from sam3kit.fiftyone import apply_sam3
>>> apply_sam3(dataset, prompt="person, car", label_field="sam3")

FiftyOne imports plugin packages when it lists operators, so names are resolved lazily here: importing
``sam3kit.fiftyone`` imports neither torch nor transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "apply_sam3": "apply",
    "RunSummary": "apply",
    "Sam3Model": "model",
    "Sam3ModelConfig": "model",
    "FieldExistsError": "provenance",
    "RunSettings": "provenance",
    "install_plugin": "install",
    "PLUGIN_NAME": "install",
    "OPERATOR_URI": "install",
    "forget_models": "loading",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from .apply import RunSummary, apply_sam3  # noqa: F401
    from .install import OPERATOR_URI, PLUGIN_NAME, install_plugin  # noqa: F401
    from .loading import forget_models  # noqa: F401
    from .model import Sam3Model, Sam3ModelConfig  # noqa: F401
    from .provenance import FieldExistsError, RunSettings  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'sam3kit.fiftyone' has no attribute {name!r}")
