#!/usr/bin/env bash
# Set up a fresh machine (Python 3.11): a virtual environment in .venv with the CPU build of
# torch (installed first: an unpinned torch would pull a multi-GB CUDA build) and zetta_utils
# with its test tools, editable.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet torch==2.13.0
.venv/bin/pip install --quiet -e ".[test]"
echo "zetta_utils is installed in .venv (activate it with: . .venv/bin/activate)"
