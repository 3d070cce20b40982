"""Tuning table: the launch configuration measured fastest per GPU, cell, dtype, hidden size
and batch bucket, loaded at run time.

Two JSON files with one format: the table shipped in the package (tuning_table.json beside
this file) and a user-writable one that overrides it entry by entry
($TRITONRNN_TUNING_TABLE, else $XDG_CACHE_HOME/tritonrnn/tuning_table.json, else
~/.cache/tritonrnn/tuning_table.json). `python -m bench.tune` writes them.

    {"format": 1,
     "entries": [{"device": "NVIDIA H100 80GB HBM3", "cell": "LSTM", "proj": false,
                  "dtype": "fp16", "hidden": 768, "batch_bucket": 16,
                  "config": {"split": true, "block_b": 16, "block_h": 32, "block_k": 64,
                             "num_warps": 4, "num_stages": 1},
                  "ms": 0.91, "tuned_at": "2026-11-23T18:00:00Z"}]}

Lookup: the entry for the device, cell, dtype and hidden size whose batch bucket is nearest
the call's (same bucket first); none -> kernels.config's default. An entry whose config is
not among the current candidates (pruned, or from another version) is ignored.
"""
import contextlib
import fcntl
import functools
import json
import os
import tempfile

import torch

from tritonrnn.kernels import cells, config, dtypes

FORMAT = 1
SHIPPED_TABLE = os.path.join(os.path.dirname(__file__), "tuning_table.json")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def user_table_path():
    if os.environ.get("TRITONRNN_TUNING_TABLE"):
        return os.environ["TRITONRNN_TUNING_TABLE"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "tritonrnn", "tuning_table.json")


def batch_bucket(batch):
    """Smallest bucket >= batch (the largest bucket for anything bigger)."""
    for bucket in BATCH_BUCKETS:
        if batch <= bucket:
            return bucket
    return BATCH_BUCKETS[-1]


def entry_key(entry):
    return (entry["device"], entry["cell"], bool(entry["proj"]), entry["dtype"],
            int(entry["hidden"]), int(entry["batch_bucket"]))


def read_table(path):
    """Entries of the table at `path` ([] when it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        table = json.load(f)
    if table.get("format") != FORMAT:
        raise ValueError(f"{path}: tuning table format {table.get('format')}, expected {FORMAT}")
    return table["entries"]


@contextlib.contextmanager
def _locked(path):
    """Exclusive lock on a side file, so concurrent writers take turns."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_entries(path, entries):
    """Merge `entries` into the table at `path` (new ones replace same-key old ones).

    Writers take a lock, re-read the table, and replace the file atomically (write a temp
    file in the same folder, then rename), so a reader never sees half a file and two
    writers never lose each other's entries."""
    with _locked(path):
        merged = {entry_key(e): e for e in read_table(path)}
        merged.update({entry_key(e): e for e in entries})
        ordered = sorted(merged.values(), key=entry_key)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tuning-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"format": FORMAT, "entries": ordered}, f, indent=1)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    reload()


@functools.lru_cache(maxsize=1)
def _table():
    """{(device, cell, proj, dtype, hidden): {batch_bucket: entry}}, user entries on top."""
    table = {}
    for path in (SHIPPED_TABLE, user_table_path()):
        for entry in read_table(path):
            device, cell, proj, dtype, hidden, bucket = entry_key(entry)
            table.setdefault((device, cell, proj, dtype, hidden), {})[bucket] = entry
    return table


def reload():
    """Forget the loaded tables (after a tuning run or a change of TRITONRNN_TUNING_TABLE)."""
    _table.cache_clear()


def lookup(cell, hidden, width, dtype, batch, device_name):
    """The tuned Plan for this call, or None. cell: kernel cell code."""
    key = (device_name, cells.lookup(cell).name, width != hidden, dtypes.math_dtype_name(dtype),
           hidden)
    by_bucket = _table().get(key)
    if not by_bucket:
        return None
    want = batch_bucket(batch)
    # Nearest bucket on a log scale; on a tie the larger bucket (more batch parallelism).
    nearest = min(by_bucket, key=lambda b: (abs(b.bit_length() - want.bit_length()), -b))
    chosen = config.Plan(**by_bucket[nearest]["config"])
    if chosen not in config.candidates(cell, hidden, width, dtype):
        return None  # pruned since it was tuned, or written by another version
    return chosen


@functools.lru_cache(maxsize=None)
def _device_name(device):
    return torch.cuda.get_device_name(device)


def tuned_plan(cell, hidden, width, dtype, batch, device):
    """The tuning table's Plan for a launch on `device` (a torch.device), or None: what the
    launch decider asks (cell: kernel cell code)."""
    if device is None or device.type != "cuda":
        return None  # the interpreter and CPU have nothing to tune
    return lookup(cell, hidden, width, dtype, batch, _device_name(device))

