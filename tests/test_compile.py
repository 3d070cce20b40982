"""CI's compile report: the shipped launch configurations (the default plan of each shape,
plus the shipped tuning table's) compile for H100 (sm_90) and A100 (sm_80) without spills,
within shared memory and on tensor cores, with no GPU.

A fast subset of `python -m bench.compile_report`: heaviest cells, one 16-bit dtype and
TF32, a fused-size and two split-size hiddens (768: the anchor; split kernels share one
binary across these sizes, so it adds records, not compiles), every kernel form (the multi-slice forms with the
plan the launcher uses for them). The full run over every selectable configuration
(docs/maintainers.md, "Compile report") takes about an hour on two cores and is what
kernels/pruned_configs.json was generated from. Runs in a subprocess because kernels defined
under TRITON_INTERPRET=1 (as in this test session) cannot be compiled.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from tritonrnn.kernels import cells

KEYS = {"kernel", "arch", "dtype", "config", "hidden_size", "registers", "spills_bytes",
        "shared_bytes", "shared_limit", "tensor_cores"}


def test_shipped_configs_compile_clean(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.compile_report", "--arch", "sm_90,sm_80",
         "--cells", "LSTM,LSTM_PROJ,GRU,RNN_TANH", "--dtypes", "fp16,tf32",
         "--hidden", "128,768,2048", "--forms", "all", "--json", str(out)],
        cwd=root, env=env, capture_output=True, text=True, timeout=540)
    records = json.loads(out.read_text()) if out.exists() else []
    failing = [(r["arch"], r["kernel"], r["cell"], r["dtype"], r["hidden_size"], r["config"],
                r.get("error") or (r["registers"], r["spills_bytes"], r["shared_bytes"]))
               for r in records if not r["ok"]]
    assert proc.returncode == 0, (failing, proc.stderr[-3000:])
    assert records and not failing
    assert {r["arch"] for r in records} == {"sm_90", "sm_80"}
    for r in records:
        assert KEYS <= r.keys()
        assert r["spills_bytes"] == 0 and r["registers"] > 0
        assert r["shared_bytes"] <= r["shared_limit"]
        assert r["tensor_cores"], "fp16 and tf32 recurrent matmuls must use HMMA/HGMMA"
        _check_time_loop(r)
    kernels = {r["kernel"] for r in records}
    assert {"fused_forward", "fused_backward", "split_forward", "split_backward",
            "split_forward_multi", "split_backward_multi"} <= kernels


def _check_time_loop(r):
    """The per-step columns (bench/sass.py) exist and hold what every recurrence must do per
    step: load the previous h (B x K in at least 2-byte elements, or the batch tile's share),
    store outputs, and do at least the recurrent matmul's FLOPs on tensor cores."""
    step = r["per_step"]
    where = (r["arch"], r["kernel"], r["cell"], r["dtype"], r["hidden_size"])
    assert step["time_loop"] and "for" in step["time_loop"], where
    assert step["unknown_trip_loops"] == [], where  # every nested loop's trip count known
    width = r["proj_size"] or r["hidden_size"]
    block_b = r["config"]["block_b"]
    gates = cells.lookup(r["cell"]).gates
    assert step["stg_bytes"] > 0 and step["stg_instr"] > 0, where
    assert step["hmma_instr"] + step["hgmma_instr"] > 0, where
    if r["kernel"].startswith("split"):
        slice_units = r["config"]["block_h"]
        # the h (dh) exchange: every program reads all of h_{t-1} for its batch tile
        assert step["ldg_bytes"] >= block_b * width * 2, (where, step["ldg_bytes"])
        if r["kernel"] == "split_forward":
            needed = 2 * gates * slice_units * block_b * width  # FLOPs of h @ W_slice^T
            assert step["mma_flops"] >= needed, (where, step["mma_flops"], needed)
