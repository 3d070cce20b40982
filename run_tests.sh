#!/usr/bin/env bash
# The one test command: bash run_tests.sh [pytest args...]
# Installs what the tests need when it is missing, then runs pytest from the repo root.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python}

# torch pinned: an unpinned torch on a machine without one pulls a multi-GB CUDA build.
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install torch==2.13.0
fi

# (Re)install the package, editable, with the test extra and the bench extra (the benchmark's
# plot tests; the library's tests skip them without it), unless this very checkout is
# already installed at the version pyproject.toml names. tritonrnn.kernels (the kernels/
# folder) is importable only through an install.
if ! "$PY" - 2>/dev/null <<'PYCHECK'; then
import json, os, sys, urllib.parse
# Look at the installed metadata, not the tritonrnn.egg-info an editable build leaves here.
sys.path = [p for p in sys.path if p and os.path.realpath(p) != os.path.realpath(".")]
from importlib.metadata import distribution
import pytest, onnx, onnxscript, onnxruntime  # noqa: F401,E401  (the test extra)
import matplotlib  # noqa: F401  (the bench extra)
dist = distribution("tritonrnn")
url = json.loads(dist.read_text("direct_url.json") or "{}")
editable_here = (url.get("dir_info", {}).get("editable")
                 and urllib.parse.unquote(url.get("url", "")) == "file://" + os.path.realpath("."))
try:
    import tomllib
    with open("pyproject.toml", "rb") as f:
        same_version = tomllib.load(f)["project"]["version"] == dist.version
except ImportError:  # Python < 3.11: no TOML reader to compare with
    same_version = True
sys.exit(0 if editable_here and same_version else 1)
PYCHECK
    "$PY" -m pip install -e ".[test,bench]"
fi

exec "$PY" -m pytest -q "$@"
