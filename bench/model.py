"""Per-step latency model: an ESTIMATE of how long the recurrence kernels take on a GPU,
from what the compiler made of them (the compile report's per-step time-loop counts,
bench/sass.py) and a small table of GPU constants (bench/gpu_constants.py). No GPU is used
and nothing here is a measurement.

    python -m bench.model                      # H100: the anchor and DeepBench inference shapes
    python -m bench.model --gpu H200 --report r.json   # reuse a compile report's records
    python -m bench.model --calibrate          # on a GPU: measure constants (bench/calibrate.py)

One program runs per SM and all programs of a step proceed together, so a step takes as
long as one program's step:

    latency = dependent global round trips x L2 latency + fences x fence cost
              + waits x exchange cost + CTA barriers x barrier cost
    work    = L2->SM bytes / L2 bandwidth per SM,  threads' shared-memory bytes / smem
              bandwidth,  tensor cores: HMMA FLOPs / HMMA rate + the slower of HGMMA FLOPs /
              wgmma rate and HGMMA shared-memory operand bytes / smem bandwidth,
              instruction issue: a warp's instructions x warps per scheduler (4 an SM)
              x cycles per instruction
    step    = latency + max(work)   (low end: work hidden behind each other)
              latency + sum(work)   (high end: nothing overlaps)

with the low end using every constant's fast value and the high end its slow one. A
sequence is T steps (times the waves of batch tiles when they do not all fit on the SMs)
plus the input-projection GEMM (forward) and the dX, dW_ih, dW_hh GEMMs (backward) at the
stated GEMM rate. What is left out: L2 misses (W_hh and h stay in the 50 MB L2 at these
sizes), launch overhead; the forward uses the training form of the kernel (a few more stores
than inference). Instruction issue was left out until 2026-12-01.
"""
import argparse
import json
import os
import sys

from bench import gpu_constants
from bench.sass import mma_flops
from bench.shapes import ANCHOR, ANCHOR_REFERENCE_MS, DEEPBENCH_TARGET_MAX_BATCH, deepbench_inference

ARCH = {"H100": 90, "H200": 90}
CALIBRATION_DIR = os.path.join(os.path.dirname(__file__), "calibration")


# -- one step ---------------------------------------------------------------------------------

def _mma_flops(per_step, num_warps):
    """(HMMA FLOPs, HGMMA FLOPs) per program per step."""
    hmma = hgmma = 0.0
    for kind, count in per_step["mma_kinds"].items():
        if kind.startswith("HGMMA"):
            hgmma += count * mma_flops(kind) * max(1, num_warps // 4)
        else:
            hmma += count * mma_flops(kind) * num_warps
    return hmma, hgmma


SCHEDULERS = 4  # warp schedulers per SM (sm_80, sm_90), each issuing one instruction a cycle


def _instructions(per_step):
    if "instructions" not in per_step:
        raise ValueError("a compile record without instruction counts (made before "
                         "2026-12-01): compile it again (python -m bench.compile_report)")
    return per_step["instructions"]


def step_cycles(per_step, num_warps, consts, end):
    """Cycles of one step of one program; `end` 0 (low, fast constants) or 1 (high)."""
    c = {k: v[end] for k, v in consts.items()}
    latency = (per_step["dependent_round_trips"] * c["l2_latency_clk"]
               + per_step["membar_instr"] * c["fence_clk"]
               + per_step["wait_loops"] * c["exchange_extra_clk"]
               + per_step["bar_instr"] * c["barrier_clk"])
    hmma, hgmma = _mma_flops(per_step, num_warps)
    work = dict(
        l2=(per_step["ldg_bytes"] + per_step["stg_bytes"]) / c["l2_bytes_per_clk_sm"],
        smem=(per_step["lds_bytes"] + per_step["sts_bytes"]) / c["smem_bytes_per_clk"],
        # wgmma reads its shared-memory operands while it computes: one activity, bounded
        # by the slower of the two
        mma=hmma / c["hmma_flop_per_clk"]
        + max(hgmma / c["hgmma_flop_per_clk"],
              per_step["hgmma_smem_bytes"] / c["smem_bytes_per_clk"]),
        issue=_instructions(per_step) * -(-num_warps // SCHEDULERS) * c["issue_clk"])
    total = latency + (max(work.values()) if end == 0 else sum(work.values()))
    return dict(latency=latency, total=total, **work)


def step_us(record, consts):
    """(low, high) microseconds of one step of `record`'s kernel."""
    from bench.compile_report import launch_warps
    warps = launch_warps(record)
    return tuple(step_cycles(record["per_step"], warps, consts, end)["total"]
                 / (consts["clock_ghz"][end] * 1e3) for end in (0, 1))


# -- which kernels a shape runs -------------------------------------------------------------

def regime_jobs(cell, hidden, dtype, arch):
    """(regime text, forward job, backward job) the launcher would run for a unidirectional
    layer of `cell` with I = H = `hidden` on a GPU of arch `arch` (its SM count from the
    compile report), default plan (the shipped tuning table is consulted as the report does)."""
    from tritonrnn.kernels import cells, config, dtypes
    from tritonrnn.kernels.compile_specs import FUSED_FORMS, SPLIT_MAIN_FORMS
    from bench.compile_report import SMS, launched
    with dtypes.tf32_for(dtype):
        plan = config.default_plan(cells.lookup(cell).code, hidden, hidden,
                                   dtypes.torch_dtype(dtype))
    forms = SPLIT_MAIN_FORMS if plan.split else FUSED_FORMS
    jobs = [launched(dict(kernel=f, cell=cell, dtype=dtype, hidden_size=hidden, proj_size=0,
                          config=plan.as_dict()), arch) for f in forms]
    regime = "fused"
    if plan.split:
        slices = -(-hidden // jobs[0]["config"]["block_h"])
        regime = (f"split multi-slice x{min(slices, SMS[arch])} ({slices} slices)"
                  if jobs[0]["kernel"].endswith("_multi") else
                  f"split x{slices}" + ("" if jobs[0]["config"] == plan.as_dict() else
                                        f", {jobs[0]['config']['block_h']}-unit slices"))
    return regime, jobs[0], jobs[1]


def _waves(record, batch, sms):
    """Rounds in which the batch tiles' programs run (1 when all fit on the SMs at once)."""
    tiles = -(-batch // record["config"]["block_b"])
    per_tile = record.get("programs_per_group") or 1
    fit = max(1, sms // per_tile)
    return -(-tiles // fit)


def gemm_ms(flops, consts):
    return tuple(flops / (consts["gemm_tflops"][end] * 1e12) * 1e3 for end in (0, 1))


def sequence_ms(cell, batch, hidden, seq, forward, backward, consts):
    """{"forward": (low, high), "forward+backward": (low, high)} in ms, and the parts."""
    sms = consts["sms"][0]
    from tritonrnn.kernels import cells
    flops_in = 2.0 * seq * batch * hidden * cells.lookup(cell).gates * hidden  # x @ W_ih^T, I = H
    fwd_step = step_us(forward, consts)
    bwd_step = step_us(backward, consts)
    waves_f = _waves(forward, batch, sms)
    waves_b = _waves(backward, batch, sms)
    g_in = gemm_ms(flops_in, consts)
    g_bwd = gemm_ms(3 * flops_in, consts)  # dX, dW_ih and dW_hh (K = H): same size each
    fwd = tuple(seq * fwd_step[e] * waves_f / 1e3 + g_in[e] for e in (0, 1))
    both = tuple(fwd[e] + seq * bwd_step[e] * waves_b / 1e3 + g_bwd[e] for e in (0, 1))
    return {"forward": fwd, "forward+backward": both, "forward_step_us": fwd_step,
            "backward_step_us": bwd_step, "gemm_ms": (g_in, g_bwd)}


# -- records ----------------------------------------------------------------------------------

def load_calibration(gpu, path=None):
    path = path or os.path.join(CALIBRATION_DIR, f"{gpu}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def records_for(jobs, arch, known=(), progress=sys.stderr):
    """Compile-report records of `jobs` on sm_`arch` (reusing `known` ones)."""
    from bench.compile_report import compile_jobs
    records = compile_jobs([(j, arch) for j in jobs], workers=min(2, os.cpu_count() or 1),
                           progress=progress, known=known)
    bad = [r for r in records if r.get("error") or not r.get("per_step")]
    if bad:
        raise RuntimeError(f"compile failed for {[(r['kernel'], r['cell'], r['hidden_size']) for r in bad]}: "
                           f"{bad[0].get('error')}")
    return {(r["kernel"], r["cell"], r["hidden_size"], json.dumps(r["config"], sort_keys=True)): r
            for r in records}


def _lookup(records, job):
    return records[(job["kernel"], job["cell"], job["hidden_size"],
                    json.dumps(job["config"], sort_keys=True))]


# -- report -----------------------------------------------------------------------------------

def _range(pair, digits=2):
    return f"{pair[0]:.{digits}f}-{pair[1]:.{digits}f}"


def _counts_line(label, r, consts):
    from bench.compile_report import launch_warps
    p = r["per_step"]
    warps = launch_warps(r)
    hmma, hgmma = _mma_flops(p, warps)
    low = step_cycles(p, warps, consts, 0)
    high = step_cycles(p, warps, consts, 1)
    return (f"  {label:<24} {p['dependent_round_trips']:>6} {p['wait_loops']:>5} "
            f"{p['membar_instr']:>6} {p['bar_instr']:>5} {p['ldg_bytes'] / 1024:>8.1f} "
            f"{(p['lds_bytes'] + p['sts_bytes']) / 1024:>8.1f} "
            f"{p['hgmma_smem_bytes'] / 1024:>7.1f} "
            f"{(hmma + hgmma) / 1e6:>7.2f} {_instructions(p):>6.0f} "
            f"{'y' if p['nested_loop_loads_global'] else 'n':>3} "
            f"{low['total']:>7.0f}-{high['total']:<7.0f} "
            f"(latency {low['latency']:.0f}-{high['latency']:.0f})")


COUNTS_HEAD = (f"  {'kernel (per program, step)':<24} {'trips':>6} {'waits':>5} {'fences':>6} "
               f"{'BAR':>5} {'LDG KiB':>8} {'smem KiB':>8} {'wgmma':>7} {'MFLOP':>7} "
               f"{'instr':>6} {'W?':>3} "
               f"{'cycles low-high':>15}")


def report(gpu, dtype="fp16", known=(), calibration=None, out=sys.stdout, progress=sys.stderr):
    """Print the estimates; returns them as a JSON-ready dict."""
    consts = gpu_constants.constants(gpu, calibration)
    arch = ARCH[gpu]
    shapes = [ANCHOR] + [s for s in deepbench_inference() if s.batch <= DEEPBENCH_TARGET_MAX_BATCH]
    plans = {}
    for s in shapes:
        key = (s.cell, s.hidden)
        if key not in plans:
            plans[key] = regime_jobs(s.cell, s.hidden, dtype, arch)
    jobs = [j for _, f, b in plans.values() for j in (f, b)]
    records = records_for(jobs, arch, known, progress)
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"Per-step latency model, {gpu_constants.GPUS[gpu]['name']} (sm_{arch}), {dtype}: "
      f"ESTIMATES from compiled SASS counts and the constants below, not measurements.")
    src = gpu_constants.sources(gpu, calibration)
    for name, (lo, hi) in consts.items():
        p(f"  {name:<20} {lo:>9.4g} .. {hi:<9.4g} {src[name]}")
    result = dict(gpu=gpu, dtype=dtype, constants=consts, shapes=[])

    regime, fj, bj = plans[(ANCHOR.cell, ANCHOR.hidden)]
    fr, br = _lookup(records, fj), _lookup(records, bj)
    est = sequence_ms(ANCHOR.cell, ANCHOR.batch, ANCHOR.hidden, ANCHOR.seq, fr, br, consts)
    cfg = fr["config"]
    p("")
    p(f"Anchor: {ANCHOR.label()} {dtype}, regime {regime} (plan n{cfg['block_h']} "
      f"k{cfg['block_k']} w{cfg['num_warps']})")
    p(COUNTS_HEAD)
    p(_counts_line(f"{fr['kernel']} (training)", fr, consts))
    p(_counts_line(br["kernel"], br, consts))
    ref = ANCHOR_REFERENCE_MS["cuDNN persistent (H100)"]
    p(f"  forward:          {_range(est['forward_step_us'])} us/step, "
      f"{_range(est['forward'])} ms with the input GEMM ({_range(est['gemm_ms'][0], 3)} ms)"
      f"   cuDNN published (H100): {ref['forward']} ms")
    p(f"  forward+backward: {_range(est['forward+backward'])} ms (backward "
      f"{_range(est['backward_step_us'])} us/step; GEMMs {_range(est['gemm_ms'][1], 3)} ms)"
      f"   cuDNN published (H100): {ref['forward+backward']} ms")
    result["anchor"] = dict(regime=regime, **{k: v for k, v in est.items()},
                            cudnn_published_h100_ms=ref)
    p("")
    from bench import design_bound
    result["anchor_bounds"] = design_bound.print_anchor(consts, 2, arch, out)

    p("")
    p(f"DeepBench inference shapes with B <= {DEEPBENCH_TARGET_MAX_BATCH} (forward, I = H; "
      f"no published cuDNN figure on this GPU: DeepBench's are for older GPUs):")
    p(f"  {'shape':<34} {'regime':<28} {'us/step':>13} {'ms':>13}")
    for s in shapes[1:]:
        regime, fj, bj = plans[(s.cell, s.hidden)]
        fr, br = _lookup(records, fj), _lookup(records, bj)
        est = sequence_ms(s.cell, s.batch, s.hidden, s.seq, fr, br, consts)
        p(f"  {s.label():<34} {regime:<28} {_range(est['forward_step_us']):>13} "
          f"{_range(est['forward'], 3):>13}")
        result["shapes"].append(dict(shape=s.label(), regime=regime,
                                     forward_ms=est["forward"],
                                     forward_step_us=est["forward_step_us"]))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", choices=sorted(gpu_constants.GPUS), default="H100")
    parser.add_argument("--dtype", default="fp16", choices=("fp16", "bf16"))
    parser.add_argument("--report", nargs="+", default=(), metavar="JSON",
                        help="compile-report records to reuse (compiles only what is missing)")
    parser.add_argument("--calibration", default=None,
                        help="measured constants (default bench/calibration/<gpu>.json if present)")
    parser.add_argument("--json", default=None, help="also write the estimates here")
    parser.add_argument("--calibrate", action="store_true",
                        help="on a CUDA GPU: measure L2 latency, exchange cost and shared-memory "
                             "bandwidth and write bench/calibration/<gpu>.json")
    parser.add_argument("--out", default=None,
                        help="with --calibrate: write the measured constants here instead")
    args = parser.parse_args(argv)
    if args.calibrate:
        from bench import calibrate
        return calibrate.main(args.gpu, args.out)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("unset TRITON_INTERPRET: the model compiles the kernels ahead of time")
    known = []
    for path in args.report:
        with open(path) as f:
            known += json.load(f)
    result = report(args.gpu, args.dtype, known, load_calibration(args.gpu, args.calibration))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
