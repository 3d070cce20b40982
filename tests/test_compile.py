"""CI's compile report: the shipped launch configurations (the default plan of each shape)
compile for H100 (sm_90) and A100 (sm_80) as the JIT compiles them, with no GPU.

A fast subset of `python -m bench.compile_report`: every cell in fp16, two fused-size hiddens
(64, and 128, where LSTM and GRU keep 128 KiB of W_hh in shared memory) and the anchor's
(768, split regime: 48 programs each keeping its rows of W_hh on chip), the main kernel
forms. Each record must compile clean (no spills) within shared memory, on tensor cores,
with the per-step columns of bench/sass.py. The fused kernels load no weights inside their
time loop, no more than their input projection (+1 KiB) per step, and issue no more MMA
work than their products need (no two warps compute the same tile); their forwards use
wgmma on sm_90 where the gates' rows are a warpgroup's 64 or more. At H = 768 the split
forward keeps all of W_hh on chip, loads no weights inside its time loop and at most 1.1x
(h_{t-1} in fp16 + its input projection + 1 KiB) per step, and uses wgmma (HGMMA) on
sm_90; the projected LSTM may stream W_hr's rows where keeping them spilled (its resident
form says so: config.clean_resident), and then loads them in the loop. The split backward
waits for memory twice a step there (7 times with a projection). The whole report
(every dtype, H up to 2048) is clean too under both Tritons; it takes minutes, so CI runs
this subset, under the newest and the oldest supported Triton (.ci/floor). Runs in a
subprocess because kernels defined under TRITON_INTERPRET=1 (as in this test session)
cannot be compiled.
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
         "--cells", "LSTM,LSTM_PROJ,GRU,RNN_TANH", "--dtypes", "fp16",
         "--hidden", "64,128,768", "--forms", "main", "--json", str(out)],
        cwd=root, env=env, capture_output=True, text=True, timeout=540)
    records = json.loads(out.read_text()) if out.exists() else []
    assert records, proc.stderr[-3000:]
    failing = {(r["arch"], r["kernel"], r["cell"]): r.get("error") or r["spills_bytes"]
               for r in records if not r["ok"]}
    assert not failing, failing
    assert {r["arch"] for r in records} == {"sm_90", "sm_80"}
    for r in records:
        assert KEYS <= r.keys()
        assert r["registers"] > 0
        assert r["shared_bytes"] <= r["shared_limit"]
        assert r["tensor_cores"], "fp16 recurrent matmuls must use HMMA/HGMMA"
        _check_time_loop(r)
    kernels = {r["kernel"] for r in records}
    assert {"fused_forward", "fused_backward", "split_forward", "split_backward"} <= kernels
    fused = {(r["cell"], r["hidden_size"]) for r in records if r["kernel"] == "fused_forward"}
    assert {("LSTM", 128), ("GRU", 128), ("RNN_TANH", 128)} <= fused, fused
    for r in records:
        if r["kernel"].startswith("fused"):
            step = r["per_step"]
            where = (r["arch"], r["kernel"], r["cell"], r["hidden_size"])
            assert not step["nested_loop_loads_global"], where
            assert step["mma_over_needed"] <= 1, (where, step["mma_over_needed"])
            if r["kernel"] == "fused_forward":
                assert step["ldg_over_bound"] <= 1, (where, step["ldg_over_bound"])
                if r["arch"] == "sm_90" and r["cell"] in ("LSTM", "GRU"):
                    assert step["hgmma_instr"] > 0, where  # 4H >= 64 rows: wgmma
    for r in records:
        if r["kernel"] == "split_forward" and r["hidden_size"] == 768:
            step = r["per_step"]
            where = (r["arch"], r["cell"], r["resident"])
            _, _, streams_w_hh, streams_w_hr, _ = r["resident"]
            assert not streams_w_hh, where  # W_hh stays on chip
            assert streams_w_hr is False or r["cell"] == "LSTM_PROJ", where
            assert step["nested_loop_loads_global"] == streams_w_hr, where
            if not streams_w_hr:
                assert step["ldg_over_bound"] <= 1.1, (where, step["ldg_over_bound"])
            if r["arch"] == "sm_90":  # W_hh's products on wgmma (W_hr's 16 rows: mma.sync)
                assert step["hgmma_instr"] > 0, where
                assert step["hmma_instr"] == 0 or r["cell"] == "LSTM_PROJ", where
        if r["kernel"] == "split_backward" and r["hidden_size"] == 768:
            # the flags, then the partial sums (dy and the saved values came during the last
            # wait); the projected LSTM exchanges twice and loads its saved values after the
            # first: 8 until its dy came a step ahead too (2026-12-01)
            trips = r["per_step"]["dependent_round_trips"]
            assert trips <= (7 if r["cell"] == "LSTM_PROJ" else 2), (r["arch"], r["cell"], trips)


def test_fp64_split_kernels_compile(tmp_path):
    """fp64 is for accuracy, not speed: its split kernels may spill (1-2 KiB in the forwards),
    but must compile. Triton 3.6 rejected the LSTM and GRU backwards' fp64 MMA until the
    gate stack was built without tl.join (kernels/split.py, stack_gates); the GPU image runs
    3.6, and this runs under it in CI's floor check."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.compile_report", "--arch", "sm_90", "--cells",
         "LSTM,LSTM_PROJ,GRU", "--dtypes", "fp64", "--hidden", "300", "--forms", "main",
         "--json", str(out)], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    records = json.loads(out.read_text()) if out.exists() else []
    assert len(records) == 6, proc.stderr[-3000:]
    assert {r["kernel"] for r in records} == {"split_forward", "split_backward"}
    assert all(not r.get("error") and r["registers"] > 0 for r in records), \
        [(r["kernel"], r["cell"], r.get("error")) for r in records]


PROFILED_COMPARE = """
import json, sys
from bench.compile_report import add_time_loop, compile_job
from tritonrnn.kernels import cells, config
import torch
plan = config.default_plan(cells.lookup("LSTM").code, 256, 256, torch.float16).as_dict()
out = []
for kernel in ("split_forward", "split_backward"):
    for measure in (None, {"PROFILE": 1}):
        job = dict(kernel=kernel, cell="LSTM", dtype="fp16", hidden_size=256, proj_size=0,
                   config=plan, measure=measure)
        r = add_time_loop(compile_job(job, 90))
        r.pop("_sass", None)
        out.append(r)
json.dump(out, sys.stdout, default=str)
"""


def test_profiled_split_kernels_compile_like_the_shipped_ones(tmp_path):
    """The step profile (split.py PROFILE, bench/calibrate.py's step_profile) must time the
    kernels that ship: compiled for sm_90 each adds cycle-counter reads and nothing the time
    loop would wait on: no spills, the same global loads and dependent round trips, barriers
    and fences a step (LSTM fp16 H = 256, 16 programs; forward and backward)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # a cached kernel has no ptxas report to read
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", PROFILED_COMPARE], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    for shipped, profiled in zip(records[::2], records[1::2]):
        where = profiled["kernel"]
        assert shipped["ok"] and profiled["ok"], (where, shipped.get("error"),
                                                  profiled.get("error"))
        assert profiled["measure"] == {"PROFILE": 1} and shipped["measure"] is None
        assert profiled["registers"] > 0 and profiled["spills_bytes"] == 0, where
        for key in ("ldg_bytes", "dependent_round_trips", "bar_instr", "membar_instr",
                    "wait_loops"):
            assert profiled["per_step"][key] == shipped["per_step"][key], (where, key)
    assert [r["kernel"] for r in records[::2]] == ["split_forward", "split_backward"]


EXCHANGE_TRIPS = """
import json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from bench import calibrate, sass
from tritonrnn.kernels.split import split_maxnreg
aligned = [["tt.divisibility", 16]]
common = dict(K=768, KC=256, BLOCK_N=16, BLOCK_B=16)  # 48 programs, as the anchor
kernels = {
    "h_and_flags": (calibrate._exchange_step_kernel,
                    {"h_ptr": "*fp16", "flags_ptr": "*i32", "sync_ptr": "*i32",
                     "out_ptr": "*i64", "steps": "i32", "progs": "i32", "spin_limit": "i32"},
                    dict(common, SLICES_P2=64, WRITE_H=True, READ_H=True, RELEASE=True), 4),
    "tagged_h": (calibrate._tagged_exchange_kernel,
                 {"ring_ptr": "*i32", "out_ptr": "*i64", "steps": "i32", "spin_limit": "i32"},
                 common, 2),
}
out = {}
for name, (fn, sig, const, pointers) in kernels.items():
    sig = dict(sig, **{k: "constexpr" for k in const})
    attrs = {(i,): aligned for i in range(pointers)}
    compiled = triton.compile(ASTSource(fn, sig, const, attrs),
                              target=GPUTarget("cuda", 90, 32),
                              options=dict(num_warps=4, maxnreg=split_maxnreg(4)))
    out[name] = sass.time_loop_report(sass.disassemble(compiled.asm["cubin"]), 4, {})
json.dump(out, sys.stdout)
"""


def test_calibration_exchange_kernels_wait_as_the_forward_does(tmp_path):
    """bench/calibrate.py's exchange-alone kernels at the anchor's 48 programs, compiled for
    sm_90 as the calibration launches them: the flag exchange waits twice a step (its flag
    poll, then all of h in one round trip, as the split forward); the tagged one (the flag
    in the data) polls h itself, at twice the bytes, with no fence. The first H200 visit's
    exchange kernel had issued its h loads one at a time (README, "Measured on a GPU")."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", EXCHANGE_TRIPS], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    flags, tagged = (json.loads(proc.stdout)[k] for k in ("h_and_flags", "tagged_h"))
    h_bytes = 768 * 16 * 2
    assert flags["dependent_round_trips"] == 2 and flags["membar_instr"] == 1, flags
    assert h_bytes <= flags["ldg_bytes"] <= h_bytes + 1024, flags["ldg_bytes"]
    assert tagged["dependent_round_trips"] <= 2 and tagged["membar_instr"] == 0, tagged
    assert tagged["ldg_bytes"] == 2 * h_bytes, tagged["ldg_bytes"]


def _check_time_loop(r):
    """The per-step columns (bench/sass.py) exist and hold what every recurrence must do per
    step: load the previous h (B x K in at least 2-byte elements, or the batch tile's share),
    store outputs, and do at least the recurrent matmul's FLOPs on tensor cores."""
    step = r["per_step"]
    where = (r["arch"], r["kernel"], r["cell"], r["dtype"], r["hidden_size"])
    assert step["time_loop"], where
    if "unknown" not in step["time_loop"]:  # triton 3.6 lacks the line of some loops' branch
        assert "for" in step["time_loop"], where
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


def test_report_compiles_what_the_launcher_runs():
    """The shipped scope compiles each split plan as config.split_layout lays it out on the
    report's GPUs (compile_report.launched): where a plan's slices outnumber the SMs, the
    multi-slice plan, one slice a program until its own slices outnumber them too."""
    from bench.compile_report import SMS, launched
    from tritonrnn.kernels import config
    import torch

    def job(kernel, hidden, cell="GRU"):
        plan = config.default_plan(cells.lookup(cell).code, hidden, hidden, torch.float16)
        return dict(kernel=kernel, cell=cell, dtype="fp16", hidden_size=hidden, proj_size=0,
                    config=plan.as_dict())

    anchor = job("split_forward", 768, "LSTM")
    assert launched(anchor, 90) == anchor and launched(anchor, 80) == anchor
    fused = job("fused_forward", 64)
    assert launched(fused, 90) == fused
    wide = launched(job("split_backward", 2816), 90)  # 176 slices of 16 > 132: 88 of 32
    assert wide["kernel"] == "split_backward" and wide["config"]["block_h"] == 32
    assert launched(job("split_forward", 2048), 90)["config"]["block_h"] == 16  # 128 <= 132
    assert launched(job("split_forward", 2048), 80)["config"]["block_h"] == 32  # 128 > 108
    walks = launched(job("split_forward", 4096), 80)  # 128 slices of 32 > 108 SMs
    assert walks["kernel"] == "split_forward_multi" and -(-4096 // 32) > SMS[80]
