"""The napari front end of sam3kit: a dock widget, prompt layers, and sample data.

napari imports plugin packages when it builds its menus, so nothing here imports torch, transformers or
Qt; the widget module is imported only when the widget is opened. Layer <-> prompt conversions live in
:mod:`sam3kit.napari.convert` and :mod:`sam3kit.napari.labels` as plain functions, usable without a viewer.
"""
