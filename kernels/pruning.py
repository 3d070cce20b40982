"""Launch configurations removed from selection because they cannot run well.

The compile report (bench/compile_report.py --prune-from) records here each (cell, dtype,
plan) of config's search space that failed to compile for sm_80 or sm_90, spilled registers,
needed more shared memory than the architecture allows or (16-bit, TF32) missed tensor cores.
config.candidates drops them, so neither the default choice, the tuning table nor the tuner
can select them; plans that failed only in the multi-slice forms are kept out of
config.multi_slice_plan.

Code generation changes between Triton versions, so a plan clean under one may spill under
another. pruned_configs.json is the list for the Triton it was generated with (a full
regeneration compiles the whole search space: about an hour); pruned_by_triton.json adds,
per Triton "major.minor", the plans that fail only under that version, found by a compile
report run under it (bench/compile_report.py --prune-version-from). Only the installed
version's additions apply.
"""
import functools
import json
import os

from .cells import CELL_CODES
from .capabilities import version_tuple
from .compile_specs import is_multi_slice
from .split import REGISTER_FILE

PRUNED_FILE = os.path.join(os.path.dirname(__file__), "pruned_configs.json")
PRUNED_BY_TRITON_FILE = os.path.join(os.path.dirname(__file__), "pruned_by_triton.json")
_NAMES = {v: k for k, v in CELL_CODES.items()}


def _key(cell_name, proj, dtype_name, config):
    return (cell_name, bool(proj), dtype_name,
            tuple(sorted((k, v) for k, v in config.items())))


def triton_version_key(version=None):
    """"major.minor" of a Triton version (the installed one by default)."""
    return "%d.%d" % version_tuple(version)


def _read(path, default):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def version_entries(version_key=None):
    """Pruned-list entries that apply only under Triton `version_key` (installed by default)."""
    by_version = _read(PRUNED_BY_TRITON_FILE, {}).get("versions", {})
    return by_version.get(version_key or triton_version_key(), {}).get("configs", [])


@functools.lru_cache(maxsize=None)
def _pruned():
    """(keys pruned outright, keys pruned only as multi-slice plans) under the installed
    Triton: the shipped list plus this version's additions."""
    entries = _read(PRUNED_FILE, {"configs": []})["configs"] + version_entries()
    keys = {scope: frozenset(_key(e["cell"], e["proj"], e["dtype"], e["config"])
                             for e in entries if e.get("forms", "all") == scope)
            for scope in ("all", "multi_slice")}
    return keys["all"], keys["multi_slice"]


def is_pruned(cell, proj, dtype_name, plan, multi_slice=False):
    """cell: code; proj: LSTM with projection; dtype_name: "fp32", "tf32", "fp16", "bf16" or
    "fp64" (config.math_dtype_name); plan: config.Plan. With `multi_slice`, also whether the
    plan fails in the forms that walk several hidden slices per program (kernels/split.py)."""
    key = _key(_NAMES[cell], proj, dtype_name, plan.as_dict())
    everywhere, multi_only = _pruned()
    return key in everywhere or (multi_slice and key in multi_only)


NEEDS_TENSOR_CORES = {"tf32", "fp16", "bf16"}  # dtypes whose recurrent matmuls must use them


def problems(record):
    """Why a compile-report record disqualifies its configuration (empty when it is fine)."""
    if record.get("error"):
        return [record["error"]]
    found = []
    if record["registers"] < 0:
        found.append("no ptxas register count")
    if record["spills_bytes"] > 0:
        found.append(f"spills {record['spills_bytes']} B")
    if record["shared_bytes"] > record["shared_limit"]:
        found.append(f"shared {record['shared_bytes']} > {record['shared_limit']}")
    threads = 32 * record["config"]["num_warps"]
    if record["registers"] * threads > REGISTER_FILE:  # the launch would fail
        found.append(f"{record['registers']} registers x {threads} threads > {REGISTER_FILE}")
    if record["dtype"] in NEEDS_TENSOR_CORES and not record["tensor_cores"]:
        found.append("no tensor-core instructions")
    return found


def _why(r):
    return f"{r['arch']} {r['kernel']} H={r['hidden_size']}: {', '.join(problems(r))}"


def entries_from_report(records):
    """Pruned-list entries for every failing compile-report record, one per configuration:
    forms "all" when a main form failed (never selectable), "multi_slice" when only the
    multi-slice forms did (not used for hidden sizes with more slices than SMs)."""
    failures = {}
    for r in records:
        if r["ok"]:
            continue
        proj = r["cell"] == "LSTM_PROJ"
        cell = "LSTM" if proj else r["cell"]
        key = _key(cell, proj, r["dtype"], r["config"])
        entry = failures.setdefault(key, dict(
            cell=cell, proj=proj, dtype=r["dtype"], config=r["config"], forms="multi_slice",
            why=_why(r)))
        if not is_multi_slice(r["kernel"]) and entry["forms"] != "all":
            entry.update(forms="all", why=_why(r))
    return list(failures.values())


def add_version_entries(entries, command, version_key=None):
    """Record `entries` (entries_from_report of a report run under Triton `version_key`,
    the installed one by default) in pruned_by_triton.json, beside that version's earlier
    ones; other versions and the shipped list are left as they are. Returns how many were
    new."""
    key = version_key or triton_version_key()
    table = _read(PRUNED_BY_TRITON_FILE, {"versions": {}})
    known = {_key(e["cell"], e["proj"], e["dtype"], e["config"]): e
             for e in _read(PRUNED_FILE, {"configs": []})["configs"]}
    record = table["versions"].setdefault(key, {"generated_by": [], "configs": []})
    ours = {_key(e["cell"], e["proj"], e["dtype"], e["config"]): e for e in record["configs"]}
    added = 0
    for e in entries:
        k = _key(e["cell"], e["proj"], e["dtype"], e["config"])
        if known.get(k, {}).get("forms") in ("all", e["forms"]) or \
                ours.get(k, {}).get("forms") in ("all", e["forms"]):
            continue  # already pruned at least as widely
        if k not in ours:
            added += 1
        if k not in ours or e["forms"] == "all":
            ours[k] = e
    record["configs"] = sorted(ours.values(), key=lambda e: _key(e["cell"], e["proj"],
                                                                    e["dtype"], e["config"]))
    record["generated_by"] = sorted(set(record["generated_by"]) | {command})
    table["versions"] = dict(sorted(table["versions"].items()))
    with open(PRUNED_BY_TRITON_FILE, "w") as f:
        json.dump(table, f, indent=1)
        f.write("\n")
    _pruned.cache_clear()
    return added
