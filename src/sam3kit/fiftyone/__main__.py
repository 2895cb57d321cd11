"""``python -m sam3kit.fiftyone install-plugin``: install the sam3kit plugin for the FiftyOne App."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sam3kit.fiftyone", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install-plugin", help="copy the plugin into FiftyOne's plugins directory")
    install.add_argument(
        "--plugins-dir", help="where to install (default: fo.config.plugins_dir, FIFTYONE_PLUGINS_DIR)"
    )
    install.add_argument(
        "--link", action="store_true", help="link to the installed package instead of copying"
    )
    args = parser.parse_args(argv)
    from .install import OPERATOR_URI, install_plugin

    try:
        target = install_plugin(args.plugins_dir, link=args.link)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"installed the sam3kit FiftyOne plugin in {target}")
    print(f"restart the App, then run '{OPERATOR_URI}' from the operator browser (press '`')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
