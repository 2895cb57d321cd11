"""The sam3kit FiftyOne plugin (install it with ``python -m sam3kit.fiftyone install-plugin``).

FiftyOne loads this file from its plugins directory, outside the package, so it imports absolutely; the
operators live in :mod:`sam3kit.fiftyone.operators` and stay current when sam3kit is upgraded.
"""


def register(p):
    from sam3kit.fiftyone.operators import register as register_operators

    register_operators(p)
