"""What disqualifies a launch configuration, judged from compile-report records, and the
pruned-list entries (kernels/pruned_configs.json, and per Triton version
kernels/pruned_by_triton.json) the report writes from them.

Tooling only: the library reads the list through kernels/pruning.py and never imports this.
"""
import json

from tritonrnn.kernels import cells, config, pruning
from tritonrnn.kernels.dtypes import tf32_for, torch_dtype
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
    threads = 32 * (record.get("launch_warps") or record["config"]["num_warps"])
    if record["registers"] * threads > REGISTER_FILE:  # the launch would fail
        found.append(f"{record['registers']} registers x {threads} threads > {REGISTER_FILE}")
    if record["dtype"] in NEEDS_TENSOR_CORES and not record["tensor_cores"]:
        found.append("no tensor-core instructions")
    duplicated = (record.get("per_step") or {}).get("mma_over_needed", 0)
    if duplicated > 1:  # fused kernels (compile_report.mma_needed_flops)
        found.append(f"warps repeat each other's MMA tiles ({duplicated}x the work)")
    return found


def _why(r):
    return f"{r['arch']} {r['kernel']} H={r['hidden_size']}: {', '.join(problems(r))}"


def _lowerable(record):
    """Whether a failing record's split main form has a lower form a layout could take
    instead (config.clean_resident): chunks of W on chip it could keep fewer of, or a
    streaming loop it could run in fewer stages. Then its resident form is pruned, not the
    plan."""
    resident = record.get("resident")
    if not resident or len(resident) != len(pruning.RESIDENT_CONSTEXPRS):
        return False  # not a split main form, or a record from before resident forms
    res_chunks, res_proj, stream_w, stream_wr, stages = resident
    with tf32_for(record["dtype"]):
        fewest = min(config.stream_stages_options(torch_dtype(record["dtype"])))
    return res_chunks > 0 or res_proj > 0 or ((stream_w or stream_wr) and stages > fewest)


def _resident_entry(r):
    """The "resident" entry of split main-form record `r`, at any slice count."""
    kind = cells.lookup(r["cell"])
    return dict(cell=kind.mode, proj=kind.projects, dtype=r["dtype"], config=r["config"],
                forms="resident", arch=int(r["arch"].removeprefix("sm_")), kernel=r["kernel"],
                resident=list(r["resident"]), why=_why(r))


def _slices_p2(r):
    return config.slices_p2(-(-r["hidden_size"] // r["config"]["block_h"]))


def entries_from_report(records):
    """Pruned-list entries for every failing compile-report record: forms "resident" (one
    per failing split kernel and resident form, with its architecture family) when a
    split main form that keeps part of W on chip failed, so that layouts keep less there,
    at the failure's slice count alone (slices_p2) where the same form compiled clean at
    another in these records; otherwise one per configuration, forms "all" when a main
    form failed (never selectable), "multi_slice" when only the multi-slice forms did (not
    used for hidden sizes with more slices than SMs)."""
    clean_at = {}  # resident key at any slice count: the slice counts it compiled clean at
    for r in records:
        if r["ok"] and r.get("resident") and not is_multi_slice(r["kernel"]):
            clean_at.setdefault(_key(_resident_entry(r)), set()).add(_slices_p2(r))
    failures = {}
    for r in records:
        if r["ok"]:
            continue
        kind = cells.lookup(r["cell"])
        if _lowerable(r):
            entry = _resident_entry(r)
            if clean_at.get(_key(entry), set()) - {_slices_p2(r)}:
                entry["slices_p2"] = _slices_p2(r)
            failures.setdefault(_key(entry), entry)
            continue
        key = pruning.entry_key(kind.mode, kind.projects, r["dtype"], r["config"])
        entry = failures.setdefault(key, dict(
            cell=kind.mode, proj=kind.projects, dtype=r["dtype"], config=r["config"],
            forms="multi_slice", why=_why(r)))
        if not is_multi_slice(r["kernel"]) and entry["forms"] != "all":
            entry.update(forms="all", why=_why(r))
    return list(failures.values())


def _entry_key(e):
    return pruning.entry_key(e["cell"], e["proj"], e["dtype"], e["config"])


def _key(e):
    """An entry's identity: its plan's, and for "resident" entries its form's too."""
    if e.get("forms") == "resident":
        return pruning.resident_key(e["cell"], e["proj"], e["dtype"], e["config"], e["arch"],
                                    e["kernel"], e["resident"], e.get("slices_p2"))
    return _entry_key(e)


def _covered(table, e):
    """Whether `table` ({key: entry}) prunes entry `e` at least as widely already."""
    if table.get(_entry_key(e), {}).get("forms") == "all":
        return True
    if e.get("slices_p2") is not None and _key(dict(e, slices_p2=None)) in table:
        return True  # the same form, pruned at every slice count
    return table.get(_key(e), {}).get("forms") == e["forms"]


def _merge(ours, entries, known):
    """Put `entries` into `ours` ({key: entry}) unless `known` or `ours` prunes them at least
    as widely already; returns how many keys are new."""
    added = 0
    for e in entries:
        if _covered(known, e) or _covered(ours, e):
            continue
        k = _key(e)
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
    known = {_key(e): e for e in pruning.read_json(pruning.PRUNED_FILE,
                                                   {"configs": []})["configs"]}
    record = table["versions"].setdefault(key, {"generated_by": [], "configs": []})
    ours = {_key(e): e for e in record["configs"]}
    added = _merge(ours, entries, known)
    record["configs"] = sorted(ours.values(), key=_key)
    record["generated_by"] = sorted(set(record["generated_by"]) | {command})
    table["versions"] = dict(sorted(table["versions"].items()))
    _write(pruning.PRUNED_BY_TRITON_FILE, table)
    return added


def replace_fused_entries(entries, command, version_key=None):
    """Replace the fused regime's entries in the list of Triton `version_key` (the installed
    one by default: pruned_configs.json under the shipped list's Triton, its additions in
    pruned_by_triton.json otherwise) by the fused ones of `entries`: entries_from_report of
    a report of the fused regime's whole space (--scope space --forms fused, every hidden
    size it can hold, both architectures), after a change to kernels/fused.py. The split
    regime's entries are left as they are. Returns (dropped, added)."""
    key = version_key or pruning.triton_version_key()
    fused = [e for e in entries if not e["config"]["split"]]
    if key == pruning.SHIPPED_TRITON:
        path, known = pruning.PRUNED_FILE, {}
        table = pruning.read_json(path, {"configs": []})
        listed = table
    else:
        path = pruning.PRUNED_BY_TRITON_FILE
        known = {_key(e): e for e in pruning.read_json(pruning.PRUNED_FILE,
                                                       {"configs": []})["configs"]}
        table = pruning.read_json(path, {"versions": {}})
        listed = table["versions"].setdefault(key, {"generated_by": [], "configs": []})
    kept = [e for e in listed["configs"] if e["config"]["split"]]
    ours = {_key(e): e for e in kept}
    added = _merge(ours, fused, known)
    dropped = len(listed["configs"]) - len(kept)
    shipped = listed is table
    # as add_shipped_entries and add_version_entries keep them
    listed["configs"] = list(ours.values()) if shipped else sorted(ours.values(), key=_key)
    log = "added_by" if shipped else "generated_by"
    listed[log] = listed.get(log, []) + [command]
    _write(path, table)
    return dropped, added


def add_shipped_entries(entries, command):
    """Add `entries` (entries_from_report of a report run under the Triton the shipped list
    is generated with) to pruned_configs.json, keeping its earlier entries: a report of the
    shipped plans finds what a whole-space run missed or what a kernel change broke, without
    recompiling the whole space. Returns how many were new."""
    table = pruning.read_json(pruning.PRUNED_FILE, {"configs": []})
    ours = {_key(e): e for e in table["configs"]}
    added = _merge(ours, entries, {})
    table["configs"] = list(ours.values())
    added_by = table.get("added_by", [])
    table["added_by"] = added_by + [command] if added_by[-1:] != [command] else added_by
    _write(pruning.PRUNED_FILE, table)
    return added
