"""What disqualifies a launch configuration, judged from compile-report records, and the
pruned-list entries (kernels/pruned_configs.json, and per Triton version
kernels/pruned_by_triton.json) the report writes from them.

Tooling only: the library reads the list through kernels/pruning.py and never imports this.
"""
import json

from tritonrnn.kernels import cells, pruning
from tritonrnn.kernels.compile_specs import is_multi_slice
from tritonrnn.kernels.split import REGISTER_FILE

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
        kind = cells.lookup(r["cell"])
        key = pruning.entry_key(kind.mode, kind.projects, r["dtype"], r["config"])
        entry = failures.setdefault(key, dict(
            cell=kind.mode, proj=kind.projects, dtype=r["dtype"], config=r["config"],
            forms="multi_slice", why=_why(r)))
        if not is_multi_slice(r["kernel"]) and entry["forms"] != "all":
            entry.update(forms="all", why=_why(r))
    return list(failures.values())


def _entry_key(e):
    return pruning.entry_key(e["cell"], e["proj"], e["dtype"], e["config"])


def _merge(ours, entries, known):
    """Put `entries` into `ours` ({key: entry}) unless `known` or `ours` prunes them at least
    as widely already; returns how many keys are new."""
    added = 0
    for e in entries:
        k = _entry_key(e)
        if known.get(k, {}).get("forms") in ("all", e["forms"]) or \
                ours.get(k, {}).get("forms") in ("all", e["forms"]):
            continue  # already pruned at least as widely
        if k not in ours:
            added += 1
        if k not in ours or e["forms"] == "all":
            ours[k] = e
    return added


def _write(path, table):
    with open(path, "w") as f:
        json.dump(table, f, indent=1)
        f.write("\n")
    pruning._pruned.cache_clear()


def add_version_entries(entries, command, version_key=None):
    """Record `entries` (entries_from_report of a report run under Triton `version_key`,
    the installed one by default) in pruned_by_triton.json, beside that version's earlier
    ones; other versions and the shipped list are left as they are. Returns how many were
    new."""
    key = version_key or pruning.triton_version_key()
    table = pruning.read_json(pruning.PRUNED_BY_TRITON_FILE, {"versions": {}})
    known = {_entry_key(e): e for e in pruning.read_json(pruning.PRUNED_FILE,
                                                         {"configs": []})["configs"]}
    record = table["versions"].setdefault(key, {"generated_by": [], "configs": []})
    ours = {_entry_key(e): e for e in record["configs"]}
    added = _merge(ours, entries, known)
    record["configs"] = sorted(ours.values(), key=_entry_key)
    record["generated_by"] = sorted(set(record["generated_by"]) | {command})
    table["versions"] = dict(sorted(table["versions"].items()))
    _write(pruning.PRUNED_BY_TRITON_FILE, table)
    return added


def add_shipped_entries(entries, command):
    """Add `entries` (entries_from_report of a report run under the Triton the shipped list
    is generated with) to pruned_configs.json, keeping its earlier entries: a report of the
    shipped plans finds what a whole-space run missed or what a kernel change broke, without
    recompiling the whole space. Returns how many were new."""
    table = pruning.read_json(pruning.PRUNED_FILE, {"configs": []})
    ours = {_entry_key(e): e for e in table["configs"]}
    added = _merge(ours, entries, {})
    table["configs"] = list(ours.values())
    table["added_by"] = table.get("added_by", []) + [command]
    _write(pruning.PRUNED_FILE, table)
    return added
