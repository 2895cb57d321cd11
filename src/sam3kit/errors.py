"""Exceptions every front end turns into a message: each says what the user can do about it."""

from __future__ import annotations

from .images import ImageError
from .request import RequestError


class Sam3Error(Exception):
    """Base class of sam3kit's own errors."""


class ModelLoadError(Sam3Error):
    """The model could not be loaded; the message says what to do (licence, login, files, network)."""


__all__ = ["Sam3Error", "ModelLoadError", "RequestError", "ImageError"]
