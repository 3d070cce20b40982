"""Launch configurations removed from selection because they cannot run well: the run-time
reader of kernels/pruned_configs.json.

The compile report (bench/compile_report.py --prune-from, with the rules of
bench/prune_rules.py) records there each (cell, dtype, plan) of config's search space that
failed to compile for sm_80 or sm_90, spilled registers, needed more shared memory than the
architecture allows or (16-bit, TF32) missed tensor cores. config.candidates drops them, so
neither the default choice, the tuning table nor the tuner can select them; plans that failed
only in the multi-slice forms are kept out of config.multi_slice_plan.
"""
import functools
import json
import os

from . import cells

PRUNED_FILE = os.path.join(os.path.dirname(__file__), "pruned_configs.json")


def entry_key(cell_name, proj, dtype_name, config):
    """What identifies a pruned-list entry (a Plan.as_dict() `config`)."""
    return (cell_name, bool(proj), dtype_name,
            tuple(sorted((k, v) for k, v in config.items())))


@functools.lru_cache(maxsize=None)
def _pruned():
    """(keys pruned outright, keys pruned only as multi-slice plans)."""
    if not os.path.exists(PRUNED_FILE):
        return frozenset(), frozenset()
    with open(PRUNED_FILE) as f:
        entries = json.load(f)["configs"]
    keys = {scope: frozenset(entry_key(e["cell"], e["proj"], e["dtype"], e["config"])
                             for e in entries if e.get("forms", "all") == scope)
            for scope in ("all", "multi_slice")}
    return keys["all"], keys["multi_slice"]


def is_pruned(cell, proj, dtype_name, plan, multi_slice=False):
    """cell: code; proj: LSTM with projection; dtype_name: "fp32", "tf32", "fp16", "bf16" or
    "fp64" (kernels/dtypes.py); plan: config.Plan. With `multi_slice`, also whether the
    plan fails in the forms that walk several hidden slices per program (kernels/split.py)."""
    key = entry_key(cells.lookup(cell).name, proj, dtype_name, plan.as_dict())
    everywhere, multi_only = _pruned()
    return key in everywhere or (multi_slice and key in multi_only)
