"""What ``bash bench/gpu_evidence.sh --quick`` would run on an H200, and how long it would take:
the dry run's second half (``--quick --dry-run``), on any machine, no GPU.

Prints the imports and versions, each step's command and time limit, the plans the
launchers would choose on a GPU with SMS streaming multiprocessors (132: H200), the file
budget, and an estimate of the run time. How the estimate is made:
- compile: the number of distinct kernels each step compiles (from the plans above) times
  COMPILE_S, the seconds one kernel takes (from ahead-of-time compiles for sm_90 on an idle CI
  machine; the dry run compiles two again and prints this machine's figure beside it); the
  parity smoke divides its compiles among its worker processes;
- GPU time: timed calls per measurement (agreement check, warm-up, the timer's estimate, then
  as many samples as its budget allows within its bounds) times a per-call time from the
  stated per-step constants below (sources given);
- process start: IMPORT_S for importing torch + triton + tritonrnn (measured on an idle CI
  machine; printed again for this one) plus an allowance for CUDA initialisation;
- install: measured here by the dry run's own offline install.
Each constant is an assumption until a GPU run replaces it; the hard bound is the sum of the
steps' time limits, which the runner enforces.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

# Per-step GPU time of one recurrence launch, seconds, from the quick check's two runs on an
# H200 (2026-11-30, bench/results/h200-2026-11-30/), taken for every quick-run shape.
# tritonrnn: twice the slowest step measured (forward 5.29 ms / 512 steps at LSTM bf16 B=64
# H=1024; forward+backward 11.06 ms / 1024 at the anchor). torch.nn: the slowest forward step
# measured (12.39 ms / 512 steps, LSTM bf16 B=16 H=256: not cuDNN's fast path), and three
# times that for forward+backward (allowance: only the anchor's was measured, 6.7 ms / 1024).
TRITONRNN_STEP_S = {"forward": 2 * 5.29e-3 / 512, "forward+backward": 2 * 11.06e-3 / 1024}
TORCH_STEP_S = {"forward": 12.39e-3 / 512, "forward+backward": 3 * 12.39e-3 / 512}
CUDA_INIT_S = 5.0        # first CUDA context, cuBLAS/cuDNN handles (allowance)
IMPORT_S = 5.0           # import torch, triton, tritonrnn: 3-5 s measured on an idle 2-core
                         # CI machine (the dry run prints this machine's figure beside it)
COMPILE_S = 3.0          # one kernel on the GPU host: 1.3-2.0 s measured ahead of time for
                         # sm_90 on an idle 2-core CI machine (triton 3.6 and 3.9; printed by
                         # the dry run), plus 1 s for the JIT's launcher and cache (allowance)
PER_CASE_HOST_S = 0.5    # building models and inputs, the float64 reference (allowance)
GPU_CPUS = 16            # CPU cores of the GPU machine (the parity smoke's workers fit)
SMS = 132


CALIBRATE_GPU_S = 5.0    # the calibration's timed work: 4096-step exchanges, the ablations'
                         # timings, short chases (allowance; 16 s in all, compiles included,
                         # on the first H200 visit, before the ablations and the profile)


def _calibrate_kernels():
    """Kernels bench/calibrate.py compiles: its three constant kernels, each exchange-step
    variant (the tagged exchange among them), the profiled split kernels of each step profile (a forward; training: its
    saving forward and the backward) and the anchor's forward as shipped and ablated three
    ways."""
    from bench import calibrate
    profiled = sum(2 if training else 1 for _, training in calibrate.PROFILES)
    return (3 + len(calibrate.EXCHANGE_PROGRAMS) * len(calibrate.EXCHANGE_VARIANTS)
            + len(calibrate.TAGGED_PROGRAMS) + profiled + 4)


def _measure_imports(python):
    start = time.time()
    subprocess.run([python, "-c", "import torch, triton, tritonrnn.kernels"], check=True)
    return time.time() - start


def _compile_seconds():
    """Seconds to compile one recurrence kernel for sm_90 with the installed Triton, cold
    cache: the mean over a fused and a split kernel (forward and backward of the anchor's
    cell), compiled the way the compile report does."""
    from bench.compile_report import compile_job
    jobs = [dict(kernel="fused_backward", cell="LSTM", dtype="fp16", hidden_size=29,
                 proj_size=0, config=dict(split=False, block_b=16, block_h=32, block_k=32,
                                          num_warps=8, num_stages=1)),
            dict(kernel="split_forward", cell="LSTM", dtype="fp16", hidden_size=768,
                 proj_size=0, config=dict(split=True, block_b=16, block_h=16, block_k=32,
                                          num_warps=8, num_stages=1))]
    times = []
    for job in jobs:
        start = time.time()
        record = compile_job(job, 90)
        times.append(time.time() - start)
        if record.get("error"):
            raise RuntimeError(f"compile for sm_90 failed: {record['error']}")
    return sum(times) / len(times), times


def _layout(cell, hidden, width, dtype, sms):
    """(launched plan, programs per group, slices) as the launcher lays it out on `sms` SMs."""
    import torch
    from bench.parity_smoke import fake_sm_count
    from tritonrnn.kernels import config
    plan = config.default_plan(cell, hidden, width, dtype)
    if not plan.split:
        return plan, None, None
    with fake_sm_count(sms):
        layout = config.split_layout(plan, cell, hidden, width, dtype,
                                     config.device_limits(torch.device("cuda")))
    return layout.plan, layout.progs, layout.n_slices


def _calls(call_s, timing):
    """Timed calls of one provider in one measurement (bench/measure.py + timing.py)."""
    reps = min(timing["max_reps"], max(timing["min_reps"],
                                       int(timing["budget_ms"] / 1e3 // max(call_s, 1e-9))))
    return 1 + timing["warmup"] + 1 + reps


def _bench_cases(args):
    from bench.__main__ import gpu_plan, parse_args
    return gpu_plan(parse_args(args))


# Kernels a layer call compiles per (cell, dtype, plan), by mode: inference runs the forward
# kernel without saving activations; training runs the saving forward and the backward.
KERNELS_BY_MODE = {"forward": ("forward",), "forward+backward": ("forward_training", "backward")}


def _bench_estimate(args, timing, sms, show):
    """(seconds of GPU work, distinct kernels compiled, cases) of a `python -m bench` step,
    printing each case's plan."""
    from bench.parity_smoke import plan_text
    from tritonrnn.kernels import config
    from tritonrnn.kernels.cells import CELL_CODES
    gpu_s, kernels = 0.0, set()
    cases = _bench_cases(args)
    for case in cases:
        s = case.shape
        code, dtype = CELL_CODES[s.cell], config.torch_dtype(case.dtype)
        plan, progs, slices = _layout(code, s.hidden, s.hidden, dtype, sms)
        kernels.update((s.cell, case.dtype, plan, k) for k in KERNELS_BY_MODE[case.mode])
        for provider, per_step in (("tritonrnn", TRITONRNN_STEP_S), ("torch", TORCH_STEP_S)):
            call = per_step[case.mode] * s.seq
            gpu_s += _calls(call, timing) * call
        layout = f"{progs} programs/group x {slices} slices" if progs else "fused"
        if show:
            print(f"    {s.cell:5} {case.dtype:4} {case.mode:16} B={s.batch:<3} H={s.hidden:<5} "
                  f"T={s.seq:<5} {plan_text(plan):28} {layout}")
    return gpu_s, len(kernels), len(cases)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--install-seconds", type=float, default=0.0)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--sms", type=int, default=SMS)
    args = p.parse_args(argv)
    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="tritonrnn-estimate-")
    import torch
    import triton

    import tritonrnn
    from bench import gpu_quick, parity_smoke, plot, providers, timing  # noqa: F401
    from tritonrnn.kernels import capabilities
    print(f"imports ok: torch {torch.__version__}, triton {triton.__version__}, tritonrnn "
          f"{tritonrnn.__file__}; capabilities {capabilities.summary()}")
    try:
        import matplotlib
        print(f"matplotlib {matplotlib.__version__}: the sweep figure is a PNG")
    except ImportError:
        print("matplotlib missing here: the sweep figure would be an SVG")

    print(f"\nsteps (limits enforced by the runner; budget {gpu_quick.BUDGET_S} s, of which "
          f"{gpu_quick.RESERVE_S} s kept for the summary):")
    print(f"  install  limit {gpu_quick.INSTALL_LIMIT_S:>3} s  pip --no-index "
          "--no-build-isolation --no-deps -e .  (fallback: links to the sources)")
    print(f"  env      limit {gpu_quick.ENV_LIMIT_S:>3} s  versions, GPU name, SMs, clocks "
          "(torch + nvidia-smi)")
    for step in gpu_quick.steps():
        cmd = " ".join(step.command("python3", "OUT"))
        print(f"  {step.name:8} limit {step.limit_s:>3} s  {cmd}")
    limits = gpu_quick.limits_total()

    print(f"\nparity smoke plans (on {args.sms} SMs; split_multi on {parity_smoke.FAKE_SMS}):")
    rows = parity_smoke.dry_run(args.sms)
    for case, hidden, proj, plan, layout in rows:
        print(f"    {case.regime:11} {case.kind:9} {case.dtype:4} H={hidden:<3} P={proj:<3} "
              f"{plan:28} {layout}")
    missing = [r for r in rows if r[3] == "NONE"]
    print(f"\nanchor plans (on {args.sms} SMs; shipped tuning table has no entry for it, so "
          "the default plans):")
    anchor_gpu, anchor_kernels, anchor_cases = _bench_estimate(
        gpu_quick.ANCHOR_ARGS, gpu_quick.ANCHOR_TIMING, args.sms, True)
    print(f"\nsweep plans (on {args.sms} SMs):")
    sweep_gpu, sweep_kernels, sweep_cases = _bench_estimate(
        gpu_quick.SWEEP_ARGS, gpu_quick.SWEEP_TIMING, args.sms, True)

    print("\nthis machine, for comparison: import time and the compile time of one kernel "
          "(sm_90, cold cache)")
    imports_here = _measure_imports(args.python)
    compile_here, each = _compile_seconds()
    print(f"  imports {imports_here:.1f} s here (the estimate takes {IMPORT_S:.0f} s + "
          f"{CUDA_INIT_S:.0f} s CUDA init); compile {compile_here:.1f} s per kernel here "
          f"({', '.join(f'{t:.1f}' for t in each)} s; the estimate takes {COMPILE_S:.0f} s). "
          "This machine's figures are shown, not used: they swing with its load, and the GPU "
          "host is another machine.")
    start_s, compile_s = IMPORT_S + CUDA_INIT_S, COMPILE_S

    workers = min(gpu_quick.PARITY_WORKERS, GPU_CPUS)
    per_worker = math.ceil(len(rows) / workers)
    parity_s = start_s + per_worker * (2 * compile_s + PER_CASE_HOST_S)
    anchor_s = start_s + anchor_kernels * compile_s + anchor_cases * PER_CASE_HOST_S + anchor_gpu
    sweep_s = start_s + sweep_kernels * compile_s + sweep_cases * PER_CASE_HOST_S + sweep_gpu
    plot_s = 3.0
    calibrate_limit = next(st.limit_s for st in gpu_quick.steps() if st.name == "calibrate")
    calibrate_kernels = _calibrate_kernels()
    calibrate_s = start_s + calibrate_kernels * compile_s + CALIBRATE_GPU_S
    estimate = [
        ("install", args.install_seconds, "measured here (offline pip install)"),
        ("env", start_s, "one process start"),
        ("parity", parity_s, f"start + {per_worker} cases per worker ({len(rows)} over "
                             f"{workers} workers) x (2 kernels x {compile_s:.1f} s + "
                             f"{PER_CASE_HOST_S} s host)"),
        ("anchor", anchor_s, f"start + {anchor_kernels} kernels x {compile_s:.1f} s + "
                             f"{anchor_cases} cases x {PER_CASE_HOST_S} s + GPU "
                             f"{anchor_gpu:.1f} s"),
        ("calibrate", calibrate_s, f"start + {calibrate_kernels} kernels x {compile_s:.1f} s "
                                   f"(bench/calibrate.py) + GPU {CALIBRATE_GPU_S:.0f} s "
                                   f"(allowance; limit {calibrate_limit} s)"),
        ("sweep", sweep_s, f"start + {sweep_kernels} kernels x {compile_s:.1f} s + "
                           f"{sweep_cases} cases x {PER_CASE_HOST_S} s + GPU {sweep_gpu:.1f} s"),
        ("plot", plot_s, "matplotlib import and one figure (allowance)"),
    ]
    total = sum(s for _, s, _ in estimate)
    limits_by = {st.name: st.limit_s for st in gpu_quick.steps()}
    margin = {name: (limits_by[name] - (est - gpu)) / gpu
              for name, est, gpu in (("anchor", anchor_s, anchor_gpu), ("sweep", sweep_s, sweep_gpu))}
    print("\nestimate for an H200 run (GPU per-step constants: tritonrnn "
          f"{TRITONRNN_STEP_S['forward'] * 1e6:.0f} us/step forward (twice the slowest measured "
          f"on an H200), torch.nn {TORCH_STEP_S['forward'] * 1e6:.0f} us/step (the slowest "
          "measured there)):")
    for name, seconds, how in estimate:
        print(f"  {name:9} {seconds:6.0f} s   {how}")
    print(f"  total     {total:6.0f} s estimated; at most {limits} s (sum of the step limits) "
          f"+ the summary; budget {gpu_quick.BUDGET_S} s")
    parity_margin = (limits_by["parity"] - start_s - per_worker * PER_CASE_HOST_S) / \
        (per_worker * 2 * compile_s)
    print("  margin: the GPU time would have to be " +
          ", ".join(f"{m:.0f}x the estimate in the {n} step" for n, m in margin.items()) +
          f", the compile time {parity_margin:.1f}x in the parity step, before that step "
          "reaches its limit (then it is cut, keeping the rows it has)")

    print(f"\nfile budget: at most {gpu_quick.MAX_FILES} files of "
          f"{gpu_quick.MAX_FILE_BYTES // 2**20} MiB, all directly in OUT (depth 1):")
    sizes = {"summary": 2e3, "env": 4e3, "parity": len(rows) * 200,
             "anchor": anchor_cases * 2 * 3 * 500, "calibrate": 1e5,
             "sweep": sweep_cases * 2 * 3 * 500, "plot": 4e5, "log": 2e6}
    for key, name in gpu_quick.FILES.items():
        print(f"  {name:20} ~{sizes[key] / 1e3:8.0f} kB expected")
    fits = (total <= gpu_quick.BUDGET_S and limits <= gpu_quick.BUDGET_S - gpu_quick.RESERVE_S
            and len(gpu_quick.FILES) <= gpu_quick.MAX_FILES
            and max(sizes.values()) <= gpu_quick.MAX_FILE_BYTES and not missing)
    print(f"\nverdict: {'fits' if fits else 'DOES NOT FIT'} "
          f"({total:.0f} s estimated, {limits} s of limits, {gpu_quick.BUDGET_S} s budget; "
          f"{len(gpu_quick.FILES)} files)")
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
