"""Pruning that depends on the Triton version (kernels/pruned_by_triton.json): the installed
version's additions are never selectable, other versions' additions change nothing, and
recording a version's failures leaves the shipped list and other versions alone."""
import json

import pytest
import torch

from bench import prune_rules
from tritonrnn.kernels import config, pruning
from tritonrnn.kernels.cells import CELL_CODES

HIDDEN = (16, 32, 64, 128, 256, 512, 768, 2048, 2304)  # 2304: 64-unit slices' SLICES_P2 = 64


def _shapes(entry):
    cell = CELL_CODES[entry["cell"]]
    for hidden in HIDDEN:
        yield cell, hidden, max(1, hidden // 4) if entry["proj"] else hidden


def _selectable(plan, cell, hidden, width, dtype):
    """A candidate, or the 32-row batch tile a candidate takes on a GPU (wide_batch_layout)."""
    candidates = config.candidates(cell, hidden, width, dtype)
    wide = [config.wide_batch_layout(c, cell, hidden, width, dtype) for c in candidates]
    return plan in candidates or any(w is not None and w.plan == plan for w in wide)


def _all_versions():
    with open(pruning.PRUNED_BY_TRITON_FILE) as f:
        return json.load(f)["versions"]


def _laid_out_forms(e, cell, hidden, width, dtype):
    """The resident constexprs entry `e`'s plan and kernel run with at this size on a GPU of
    its architecture family with SMs for every slice (None: not a main-form split shape)."""
    plan = config.Plan(**e["config"])
    if not plan.split or plan.block_h > config.block(hidden):
        return None
    major = e["arch"] // 10
    layout = config.split_layout(plan, cell, hidden, width, dtype,
                                 (10 ** 6, config.SHARED_PER_BLOCK[major], major))
    return list(layout.kernel_resident(hidden, width, e["kernel"] == "split_backward"))


def test_installed_versions_additions_never_selectable(monkeypatch):
    for e in pruning.version_entries() + _resident_entries():
        plan = config.Plan(**e["config"])
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", e["dtype"] == "tf32")
        for cell, hidden, width in _shapes(e):
            dtype = config.torch_dtype(e["dtype"])
            if e["forms"] == "resident":  # never laid out in the form that failed
                if e.get("slices_p2") not in (None, config.slices_p2(
                        -(-hidden // e["config"]["block_h"]))):
                    continue  # pruned at another slice count only
                assert _laid_out_forms(e, cell, hidden, width, dtype) != e["resident"], \
                    (e, hidden)
            elif e["forms"] == "all":
                assert not _selectable(plan, cell, hidden, width, dtype)
            elif plan.split and plan.block_h <= config.block(hidden) and \
                    config.multi_slice_candidates(cell, hidden, width, dtype):
                assert plan != config.multi_slice_plan(cell, hidden, width, dtype)


def _resident_entries():
    """The shipped list's "resident" entries (the installed version's are in
    version_entries)."""
    with open(pruning.PRUNED_FILE) as f:
        return [e for e in json.load(f)["configs"] if e.get("forms") == "resident"]


def test_other_versions_additions_stay_selectable(monkeypatch):
    """An entry recorded for another Triton only (and pruned by nothing that applies here) is
    still a candidate at some size: the additions are per version, not global."""
    with open(pruning.PRUNED_FILE) as f:
        shipped = json.load(f)["configs"]  # what the shipped list prunes too applies here
    mine = {json.dumps(e["config"], sort_keys=True) + e["cell"] + str(e["proj"]) + e["dtype"]
            for e in pruning.version_entries() + [e for e in shipped if e["forms"] == "all"]}
    others = [e for v, rec in _all_versions().items() if v != pruning.triton_version_key()
              for e in rec["configs"]]
    if not others:
        pytest.skip(f"no additions recorded for a Triton other than "
                    f"{pruning.triton_version_key()}")
    for e in others:
        if e["forms"] == "resident":  # changes a layout, never which plans are candidates
            continue
        if json.dumps(e["config"], sort_keys=True) + e["cell"] + str(e["proj"]) + e["dtype"] in mine:
            continue
        plan = config.Plan(**e["config"])
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", e["dtype"] == "tf32")
        dtype = config.torch_dtype(e["dtype"])
        assert any(_selectable(plan, cell, hidden, width, dtype)
                   for cell, hidden, width in _shapes(e)), e


def test_add_version_entries(tmp_path, monkeypatch):
    path = tmp_path / "by_triton.json"
    path.write_text(json.dumps({"versions": {"9.9": {"generated_by": ["x"], "configs": []}}}))
    monkeypatch.setattr(pruning, "PRUNED_BY_TRITON_FILE", str(path))
    with open(pruning.PRUNED_FILE) as f:
        shipped = json.load(f)["configs"]
    outright = next(e for e in shipped if e["forms"] == "all")
    # num_warps=2 is outside the search space, so nothing shipped prunes it already
    new = dict(cell="GRU", proj=False, dtype="fp16", forms="multi_slice", why="test",
               config=dict(split=True, block_b=16, block_h=64, block_k=64, num_warps=2,
                           num_stages=1))
    try:
        assert prune_rules.add_version_entries([outright, new], "cmd a", "3.7") == 1
        assert prune_rules.add_version_entries([new], "cmd b", "3.7") == 0  # no duplicate
        widened = dict(new, forms="all")
        assert prune_rules.add_version_entries([widened], "cmd c", "3.7") == 0
        table = json.loads(path.read_text())["versions"]
        assert table["9.9"] == {"generated_by": ["x"], "configs": []}
        assert table["3.7"]["configs"] == [widened]
        assert table["3.7"]["generated_by"] == ["cmd a", "cmd b", "cmd c"]
        assert pruning.version_entries("3.7") == [widened]
        assert pruning.version_entries("3.8") == []
    finally:
        pruning._pruned.cache_clear()


def test_add_shipped_entries_keeps_the_list(tmp_path, monkeypatch):
    path = tmp_path / "pruned.json"
    with open(pruning.PRUNED_FILE) as f:
        shipped = json.load(f)
    path.write_text(json.dumps(shipped))
    monkeypatch.setattr(pruning, "PRUNED_FILE", str(path))
    new = dict(cell="GRU", proj=False, dtype="fp32", forms="all", why="test",
               config=dict(split=False, block_b=16, block_h=64, block_k=64, num_warps=2,
                           num_stages=1))
    try:
        assert prune_rules.add_shipped_entries([new, shipped["configs"][0]], "cmd") == 1
        assert prune_rules.add_shipped_entries([new], "cmd again") == 0  # no duplicate
        table = json.loads(path.read_text())
        assert table["configs"] == shipped["configs"] + [new]
        assert table["added_by"] == shipped.get("added_by", []) + ["cmd", "cmd again"]
        assert table["generated_by"] == shipped["generated_by"]
    finally:
        pruning._pruned.cache_clear()


def _failing(kernel, resident, **fields):
    plan = dict(split=kernel.startswith("split"), block_b=16, block_h=16, block_k=256,
                num_warps=4, num_stages=1)
    return dict(dict(kernel=kernel, cell="LSTM", dtype="fp16", hidden_size=2048, proj_size=0,
                     config=plan, arch="sm_90", ok=False, error=None, registers=255,
                     spills_bytes=16, shared_bytes=0, shared_limit=1, tensor_cores=True,
                     resident=resident), **fields)


def test_report_failures_prune_the_resident_form_where_chunks_can_go():
    """A split main form that failed while keeping chunks of W on chip, or streaming in more
    stages than its dtype's fewest, prunes that resident form only (layouts then keep fewer
    or stream in fewer); one with no lower form, or a fused or multi-slice form, prunes the
    plan as before."""
    entries = prune_rules.entries_from_report([
        _failing("split_forward", [4, 0, True, False, 2]),
        _failing("split_backward", [4, 0, True, False, 2]),
        _failing("split_forward", [4, 0, True, False, 2], hidden_size=4096),  # same form
        _failing("split_forward", [0, 0, True, False, 2], cell="GRU"),  # fp16: 2 stages only
        _failing("split_forward", [0, 0, True, False, 2], cell="GRU", dtype="tf32"),  # 1 left
        _failing("split_forward_multi", None, cell="RNN_TANH"),
        _failing("fused_forward", None, dtype="bf16"),
    ])
    forms = sorted((e["cell"], e["dtype"], e["forms"], e.get("kernel"), e.get("arch"))
                   for e in entries)
    assert forms == [("GRU", "fp16", "all", None, None),
                     ("GRU", "tf32", "resident", "split_forward", 90),
                     ("LSTM", "bf16", "all", None, None),
                     ("LSTM", "fp16", "resident", "split_backward", 90),
                     ("LSTM", "fp16", "resident", "split_forward", 90),
                     ("RNN_TANH", "fp16", "multi_slice", None, None)]
    assert all(e["resident"] == [4, 0, True, False, 2] for e in entries
               if e["forms"] == "resident" and e["cell"] == "LSTM")


def test_resident_entries_merge_by_form(tmp_path, monkeypatch):
    path = tmp_path / "by_triton.json"
    path.write_text(json.dumps({"versions": {}}))
    monkeypatch.setattr(pruning, "PRUNED_BY_TRITON_FILE", str(path))
    plan = dict(split=True, block_b=16, block_h=16, block_k=256, num_warps=2, num_stages=1)
    base = dict(cell="LSTM", proj=False, dtype="fp16", config=plan, forms="resident",
                arch=90, kernel="split_forward", why="test")
    three = dict(base, resident=[3, 0, True, False, 2])
    four = dict(base, resident=[4, 0, True, False, 2])
    try:
        assert prune_rules.add_version_entries([four, three], "cmd", "3.7") == 2
        assert prune_rules.add_version_entries([four], "cmd", "3.7") == 0  # no duplicate
        outright = {k: v for k, v in base.items() if k not in ("arch", "kernel")}
        outright["forms"] = "all"
        assert prune_rules.add_version_entries([outright], "cmd", "3.7") == 1
        assert prune_rules.add_version_entries([dict(base, resident=[2, 0, True, False, 2])],
                                               "cmd", "3.7") == 0  # the plan is pruned
        held = pruning.version_entries("3.7")
        assert sorted(e["forms"] for e in held) == ["all", "resident", "resident"]
        assert sorted(e["resident"] for e in held if e["forms"] == "resident") == \
            [[3, 0, True, False, 2], [4, 0, True, False, 2]]
    finally:
        pruning._pruned.cache_clear()


def test_resident_failures_at_one_slice_count_prune_there_only():
    """A resident form that failed at one SLICES_P2 and compiled clean at another in the same
    records is pruned at the failing one alone (the RNN forward keeping three chunks: clean
    at H = 2048, 32 slices' flags, spilled from 2,304, 64; sm_90, triton 3.6); one clean at
    no other, everywhere."""
    form = [3, 0, True, False, 2]
    entries = prune_rules.entries_from_report([
        _failing("split_forward", form, hidden_size=2048, ok=True, spills_bytes=0),
        _failing("split_forward", form, hidden_size=2304),       # 144 slices: 256
        _failing("split_backward", form, hidden_size=2304),      # clean nowhere
    ])
    by_kernel = {e["kernel"]: e for e in entries}
    assert by_kernel["split_forward"]["slices_p2"] == 256
    assert "slices_p2" not in by_kernel["split_backward"]


def test_slice_count_entries_apply_at_their_count(tmp_path, monkeypatch):
    """An entry with slices_p2 prunes its form at that slice count only; one without it, at
    every count, and it covers the narrower one when merged."""
    path = tmp_path / "by_triton.json"
    path.write_text(json.dumps({"versions": {}}))
    monkeypatch.setattr(pruning, "PRUNED_BY_TRITON_FILE", str(path))
    monkeypatch.setattr(pruning, "triton_version_key", lambda version=None: "3.7")
    plan = dict(split=True, block_b=16, block_h=64, block_k=256, num_warps=4, num_stages=1)
    form = [3, 0, True, False, 2]
    narrow = dict(cell="RNN_TANH", proj=False, dtype="fp16", config=plan, forms="resident",
                  arch=90, kernel="split_forward", resident=form, why="test", slices_p2=64)
    wide = {k: v for k, v in narrow.items() if k != "slices_p2"}
    def forward_forms():  # the RNN forward's resident form on an H100, at 32 and 64 slices
        return [list(config.split_layout(
            config.Plan(**plan), CELL_CODES["RNN_TANH"], h, h, torch.float16,
            (132, config.SHARED_PER_BLOCK[9], 9)).kernel_resident(h, h, False))
            for h in (2048, 2304)]
    try:
        pruning._pruned.cache_clear()
        assert forward_forms() == [form, form]  # the shipped list alone (no 3.7 entries)
        assert prune_rules.add_version_entries([narrow], "cmd", "3.7") == 1
        pruned = [pruning.is_resident_form_pruned(CELL_CODES["RNN_TANH"], False, "fp16",
                                                  config.Plan(**plan), 9, "split_forward",
                                                  form, p2) for p2 in (32, 64, None)]
        assert pruned == [False, True, False]
        at_2048, at_2304 = forward_forms()
        assert at_2048 == form and at_2304 != form and at_2304[0] < 3
        assert prune_rules.add_version_entries([wide], "cmd", "3.7") == 1
        assert prune_rules.add_version_entries([narrow], "cmd", "3.7") == 0  # covered
        assert pruning.is_resident_form_pruned(CELL_CODES["RNN_TANH"], False, "fp16",
                                               config.Plan(**plan), 9, "split_forward",
                                               form, 32)
    finally:
        pruning._pruned.cache_clear()
