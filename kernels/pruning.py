"""Launch configurations removed from selection because they cannot run well.

The compile report (bench/compile_report.py --write-pruned) compiles every candidate of
config.candidates for sm_80 and sm_90 and records here each (cell, dtype, plan) that failed
to compile, spilled registers or needed more shared memory than the architecture allows.
config.candidates drops them, so neither the default choice, the tuning table nor the tuner
can select them.
"""
import functools
import json
import os

from .cells import CELL_CODES
from .compile_specs import has_matmul

PRUNED_FILE = os.path.join(os.path.dirname(__file__), "pruned_configs.json")
_NAMES = {v: k for k, v in CELL_CODES.items()}


def _key(cell_name, proj, dtype_name, config):
    return (cell_name, bool(proj), dtype_name,
            tuple(sorted((k, v) for k, v in config.items())))


@functools.lru_cache(maxsize=None)
def _pruned():
    if not os.path.exists(PRUNED_FILE):
        return frozenset()
    with open(PRUNED_FILE) as f:
        entries = json.load(f)["configs"]
    return frozenset(_key(e["cell"], e["proj"], e["dtype"], e["config"]) for e in entries)


def is_pruned(cell, proj, dtype_name, plan):
    """cell: code; proj: LSTM with projection; dtype_name: "fp32", "tf32", "fp16", "bf16" or
    "fp64" (config.math_dtype_name); plan: config.Plan."""
    return _key(_NAMES[cell], proj, dtype_name, plan.as_dict()) in _pruned()


def entries_from_report(records):
    """Pruned-list entries for every failing compile-report record, one per configuration."""
    seen, entries = set(), []
    for r in records:
        if r["ok"]:
            continue
        proj = r["cell"] == "LSTM_PROJ"
        cell = "LSTM" if proj else r["cell"]
        key = _key(cell, proj, r["dtype"], r["config"])
        if key in seen:
            continue
        seen.add(key)
        why = r.get("error") or ", ".join(
            w for w, bad in ((f"{r['registers']} registers", r["registers"] < 0),
                             (f"spills {r['spills_bytes']} B", r["spills_bytes"] > 0),
                             (f"shared {r['shared_bytes']} > {r['shared_limit']}",
                              r["shared_bytes"] > r["shared_limit"]),
                             ("no tensor cores", r["dtype"] in ("tf32", "fp16", "bf16")
                              and not r["tensor_cores"]
                              and has_matmul(r["kernel"], r["cell"]))) if bad)
        entries.append(dict(cell=cell, proj=proj, dtype=r["dtype"], config=r["config"],
                            why=f"{r['arch']} {r['kernel']} H={r['hidden_size']}: {why}"))
    return entries
