"""What disqualifies a launch configuration, judged from compile-report records, and the
pruned-list entries (kernels/pruned_configs.json) the report writes from them.

Tooling only: the library reads the list through kernels/pruning.py and never imports this.
"""
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
