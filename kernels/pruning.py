"""Launch configurations removed from selection because they cannot run well: the run-time
reader of kernels/pruned_configs.json.

The compile report (bench/compile_report.py --prune-from, with the rules of
bench/prune_rules.py) records there each (cell, dtype, plan) of config's search space that
failed to compile for sm_80 or sm_90, spilled registers, needed more shared memory than the
architecture allows or (16-bit, TF32) missed tensor cores. config.candidates drops them, so
neither the default choice, the tuning table nor the tuner can select them; plans that failed
only in the multi-slice forms are kept out of config.multi_slice_plan.

Code generation changes between Triton versions, so a plan clean under one may spill under
another. pruned_configs.json is the list for the Triton it was generated with (a full
regeneration compiles the whole search space: about an hour); pruned_by_triton.json adds,
per Triton "major.minor", the plans that fail only under that version, found by a compile
report run under it (bench/compile_report.py --prune-version-from, which writes it through
bench/prune_rules.py). Only the installed version's additions apply. Failures that a report
of the shipped plans finds under the list's own Triton (SHIPPED_TRITON) after a kernel change
are added to the shipped list with --prune-add-from, without recompiling the whole space.
"""
import functools
import json
import os

from . import cells
from .capabilities import version_tuple

PRUNED_FILE = os.path.join(os.path.dirname(__file__), "pruned_configs.json")
SHIPPED_TRITON = "3.9"  # the Triton "major.minor" pruned_configs.json is generated under
PRUNED_BY_TRITON_FILE = os.path.join(os.path.dirname(__file__), "pruned_by_triton.json")


def entry_key(cell_name, proj, dtype_name, config):
    """What identifies a pruned-list entry (a Plan.as_dict() `config`)."""
    return (cell_name, bool(proj), dtype_name,
            tuple(sorted((k, v) for k, v in config.items())))


def triton_version_key(version=None):
    """"major.minor" of a Triton version (the installed one by default)."""
    return "%d.%d" % version_tuple(version)


def read_json(path, default):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def version_entries(version_key=None):
    """Pruned-list entries that apply only under Triton `version_key` (installed by default)."""
    by_version = read_json(PRUNED_BY_TRITON_FILE, {}).get("versions", {})
    return by_version.get(version_key or triton_version_key(), {}).get("configs", [])


@functools.lru_cache(maxsize=None)
def _pruned():
    """(keys pruned outright, keys pruned only as multi-slice plans) under the installed
    Triton: the shipped list plus this version's additions."""
    entries = read_json(PRUNED_FILE, {"configs": []})["configs"] + version_entries()
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
