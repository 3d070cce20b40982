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

A split plan compiles differently with the hidden size mainly through how much of W it
keeps on chip and how it streams the rest (RESIDENT_CONSTEXPRS): a plan clean at H = 512
may spill at H = 768, where it holds as many chunks and streams the rest. Such a failure is
pruned for that resident form alone (forms "resident", with the architecture family and
the kernel, and the slice count where only that separates it from a clean record:
resident_key): config.clean_resident then has that kernel keep fewer chunks on chip (or
stream in fewer stages), the most that is not pruned, and the plan stays selectable where
it compiled clean.
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


# The split kernels' constexprs that say how much of W a program keeps on chip: a resident
# form ("resident" entries) is these values, in this order.
RESIDENT_CONSTEXPRS = ("RES_CHUNKS", "RES_PROJ", "STREAM_W", "STREAM_WR", "STREAM_STAGES")


def arch_family(major):
    """The architecture a pruned entry was compiled for that stands for devices of compute
    capability `major`: 90 (wgmma) from 9 on, else 80."""
    return 90 if major >= 9 else 80


def resident_key(cell_name, proj, dtype_name, config, arch, kernel, resident, slices_p2=None):
    """What identifies a "resident" entry: the plan's entry_key, the architecture family
    (80 or 90), the kernel form, its resident constexprs (RESIDENT_CONSTEXPRS order) and
    the power of two of the slices whose flags its waits read (the kernels' SLICES_P2), for
    an entry that applies at that one only (None or 0: at any). A form can compile clean
    at one and spill at another: the RNN forward keeping three chunks of W_hh, 32 at
    H = 2048 and 64 from 2,112 units (fp16, sm_90, triton 3.6: 0 and 832 B)."""
    return entry_key(cell_name, proj, dtype_name, config) + (
        arch, kernel, tuple(int(v) for v in resident), slices_p2 or 0)


def _entry_resident_key(e):
    return resident_key(e["cell"], e["proj"], e["dtype"], e["config"], e["arch"], e["kernel"],
                        e["resident"], e.get("slices_p2"))


@functools.lru_cache(maxsize=None)
def _pruned():
    """(keys pruned outright, keys pruned only as multi-slice plans, resident forms pruned)
    under the installed Triton: the shipped list plus this version's additions."""
    entries = read_json(PRUNED_FILE, {"configs": []})["configs"] + version_entries()
    keys = {scope: frozenset(entry_key(e["cell"], e["proj"], e["dtype"], e["config"])
                             for e in entries if e.get("forms", "all") == scope)
            for scope in ("all", "multi_slice")}
    resident = frozenset(_entry_resident_key(e) for e in entries if e.get("forms") == "resident")
    return keys["all"], keys["multi_slice"], resident


def is_pruned(cell, proj, dtype_name, plan, multi_slice=False):
    """cell: code; proj: LSTM with projection; dtype_name: "fp32", "tf32", "fp16", "bf16" or
    "fp64" (kernels/dtypes.py); plan: config.Plan. With `multi_slice`, also whether the
    plan fails in the forms that walk several hidden slices per program (kernels/split.py)."""
    key = entry_key(cells.lookup(cell).name, proj, dtype_name, plan.as_dict())
    everywhere, multi_only, _ = _pruned()
    return key in everywhere or (multi_slice and key in multi_only)


def is_resident_form_pruned(cell, proj, dtype_name, plan, major, kernel, resident,
                            slices_p2=None):
    """Whether split kernel `kernel` ("split_forward" or "split_backward") of `plan` failed
    with the resident constexprs `resident` (RESIDENT_CONSTEXPRS order) on devices of
    compute capability `major`, at any slice count or at `slices_p2` (config.slices_p2)."""
    pruned = _pruned()[2]
    return any(resident_key(cells.lookup(cell).name, proj, dtype_name, plan.as_dict(),
                            arch_family(major), kernel, resident, p2) in pruned
               for p2 in {0, slices_p2 or 0})
