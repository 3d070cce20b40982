"""Long-format CSV rows: one measured number per row, each row carrying the machine, the
versions, the commit and the time it was taken, so rows from different runs can be pooled and
still be told apart.

A row names what was measured (suite, shape, dtype, mode, provider), the metric and its unit,
the value (the median for timings) with its 20th and 80th percentiles where it has a spread,
and ``quantity`` for metrics about one part of a result (``grad_input``, a kernel name, ...).
``run_kind`` says how to read it: ``gpu`` rows are speed; ``cpu-interpreter`` rows never are.
"""
import csv
import datetime
import platform
import subprocess
from pathlib import Path

import torch

SHAPE_COLUMNS = ("suite", "cell", "batch", "hidden", "seq", "input_size", "layers",
                 "bidirectional")
MEASURE_COLUMNS = ("dtype", "mode", "provider", "metric", "quantity", "unit", "value", "p20",
                   "p80", "n")
CONTEXT_COLUMNS = ("run_kind", "device", "torch", "triton", "cuda", "cudnn", "tritonrnn",
                   "commit", "timestamp")
COLUMNS = SHAPE_COLUMNS + MEASURE_COLUMNS + CONTEXT_COLUMNS

GPU = "gpu"
CPU_INTERPRETER = "cpu-interpreter"
CPU_LABEL = "CPU interpreter — not a speed measure"

_REPO = Path(__file__).resolve().parents[1]


def git_commit(repo=_REPO):
    """Short hash of HEAD, with '-dirty' when tracked files differ from it; 'unknown' outside
    a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty.strip() else "")


def _version(module_name):
    try:
        return __import__(module_name).__version__
    except Exception:  # not installed, or no __version__: say so rather than fail a run
        return "unknown"


def context(run_kind, device=None):
    """The columns every row of this run carries (the timestamp is filled per row). The device
    name is the CUDA device's for a GPU run unless given."""
    if device is None and run_kind == GPU:
        device = torch.cuda.get_device_name()
    elif device is None:
        device = f"CPU {platform.machine()} (Triton interpreter)"
    return {
        "run_kind": run_kind,
        "device": device,
        "torch": torch.__version__,
        "triton": _version("triton"),
        "cuda": torch.version.cuda or "none",
        "cudnn": (torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
                  else None) or "none",
        "tritonrnn": _version("tritonrnn"),
        "commit": git_commit(),
    }


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def shape_fields(shape):
    if shape is None:
        return {}
    return {"suite": shape.suite, "cell": shape.cell, "batch": shape.batch,
            "hidden": shape.hidden, "seq": shape.seq, "input_size": shape.input_size,
            "layers": shape.layers, "bidirectional": int(shape.bidirectional)}


def row(ctx, metric, value, unit="", shape=None, stats=None, **fields):
    """One CSV row as a dict with every column (missing ones empty)."""
    out = dict.fromkeys(COLUMNS, "")
    out.update(shape_fields(shape))
    out.update(fields)
    out.update(ctx)
    out.update(metric=metric, value=value, unit=unit, timestamp=utc_now())
    if stats is not None:
        out.update(p20=stats.p20, p80=stats.p80, n=stats.n)
    unknown = set(out) - set(COLUMNS)
    if unknown:
        raise KeyError(f"not CSV columns: {sorted(unknown)}")
    return out


class CsvWriter:
    """Writes rows as they come (flushed), so an interrupted sweep keeps what it measured."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
        self._writer.writeheader()

    def write(self, rows):
        for r in rows:
            self._writer.writerow(r)
        self._file.flush()

    def close(self):
        self._file.close()


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
