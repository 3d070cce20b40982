"""Measure bench/model.py's least certain constants on a CUDA GPU with three small kernels,
and write them to bench/calibration/<gpu>.json, which later estimates use in place of both
ends of those constants' ranges. Run as `python -m bench.model --calibrate [--gpu H200]`.

- l2_latency_clk: one program chases a random cycle of pointers, one per 128-byte line, over
  4 MiB (in L2, out of L1; loads bypass L1 with .cg): cycles per dependent load, read with
  the SM's clock64 counter around the chase.
- exchange_extra_clk: two programs hand a counter back and forth through global memory
  (store, then poll the other's word with volatile loads; every poll bounded). One
  hand-off is half a round trip; the model already counts the poll's own L2 round trip, so
  the extra is a hand-off minus the L2 latency.
- smem_bytes_per_clk: one program multiplies a loop-invariant [64, 256] tile by a
  loop-invariant [256, 16] tile many times; Triton keeps both in shared memory and the
  tensor cores read them from there every iteration (wgmma on sm_90): operand bytes per
  cycle. At these sizes shared memory, not the MMA rate, bounds it.
- clock_ghz: cycles counted by clock64 over the chase's wall time (CUDA events).

And, recorded under "raw" but not yet model constants:
- anchor_forward_ablation: the anchor's forward (LSTM fp16, B=16, T=1024, I=H=768) timed
  with parts of every step left out (kernels/split.py ABLATE_*; wrong results, right
  timings): as shipped, without the fence, without the waits, without both. The
  differences are what the waits and the fence cost inside the real kernel.
- the split regime's exchange alone:
- exchange_step: P programs run kernels/split.py's own step protocol with no arithmetic: each
  stores its [16 units, 16 batch] fp16 slice of h, publishes the step (barrier, release),
  waits for every program's flag (bounded volatile polls) and loads all of h (K = 16 P
  columns). Cycles per step for P = 8, 48 (the anchor's programs) and 128; the same with
  no h stored or loaded (flags only); and with the flag stored relaxed, no fence (not a safe
  protocol: it times the fence). The anchor forward's step minus this is what the
  arithmetic and the rest of the step cost.
"""
import datetime
import json
import os
import sys

import triton
import triton.language as tl

from tritonrnn.kernels.split import load_columns, publish, wait_for_group

LINE = 128           # bytes per pointer-chase element (one cache line each)
CHASE_BYTES = 4 << 20
HOPS = 20000
HANDOFFS = 2000
SPIN_LIMIT = 1 << 22  # polls before a hand-off is given up (never hang)
MMA_ITERS = 4096


@triton.jit
def _clock():
    return tl.inline_asm_elementwise("mov.u64 $0, %clock64;", "=l", [], dtype=tl.int64,
                                     is_pure=False, pack=1)


@triton.jit
def _chase_kernel(next_ptr, out_ptr, hops, STRIDE: tl.constexpr):
    idx = tl.load(next_ptr, cache_modifier=".cg")  # first hop, also warms the pipeline
    start = _clock()
    for _ in range(hops):
        idx = tl.load(next_ptr + idx * STRIDE, cache_modifier=".cg")
    stop = _clock()
    tl.store(out_ptr, stop - start)
    tl.store(out_ptr + 1, idx.to(tl.int64))  # keeps the chase alive


@triton.jit
def _ping_pong_kernel(flags_ptr, out_ptr, handoffs, spin_limit):
    """Program 0 writes i+1 to flags[0] and waits for flags[1] == i+1; program 1 answers."""
    pid = tl.program_id(0)
    mine = flags_ptr + pid
    other = flags_ptr + 1 - pid
    start = _clock()
    failed = tl.full([], 0, tl.int32)
    for i in range(handoffs):
        if pid == 0:
            tl.atomic_xchg(mine, i + 1, sem="release")
        spins = tl.full([], 0, tl.int32)
        seen = tl.load(other, volatile=True)
        while (seen < i + 1) & (spins < spin_limit):
            seen = tl.load(other, volatile=True)
            spins += 1
        failed += (spins >= spin_limit).to(tl.int32)
        if pid == 1:
            tl.atomic_xchg(mine, i + 1, sem="release")
    stop = _clock()
    tl.store(out_ptr + 2 * pid, stop - start)
    tl.store(out_ptr + 2 * pid + 1, failed.to(tl.int64))


@triton.jit
def _smem_stream_kernel(w_ptr, h_ptr, out_ptr, iters, M: tl.constexpr, N: tl.constexpr,
                        K: tl.constexpr):
    rm = tl.arange(0, M)
    rn = tl.arange(0, N)
    rk = tl.arange(0, K)
    w = tl.load(w_ptr + rm[:, None] * K + rk[None, :])   # [M, K], loop-invariant
    h = tl.load(h_ptr + rk[:, None] * N + rn[None, :])   # [K, N], loop-invariant
    acc = tl.zeros([M, N], tl.float32)
    start = _clock()
    for _ in range(iters):
        acc = tl.dot(w, h, acc)
    stop = _clock()
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], acc)
    tl.store(out_ptr + M * N, (stop - start).to(tl.float32))


@triton.jit(do_not_specialize=["steps", "progs"])  # the warm-up launch compiles the timed one
def _exchange_step_kernel(h_ptr, flags_ptr, sync_ptr, out_ptr, steps, progs, spin_limit,
                          K: tl.constexpr, K_P2: tl.constexpr, BLOCK_N: tl.constexpr,
                          BLOCK_B: tl.constexpr, SLICES_P2: tl.constexpr, MOVE_H: tl.constexpr,
                          RELEASE: tl.constexpr):
    """Program pid owns units pid * BLOCK_N + [0, BLOCK_N) of h, a [2 slots, BLOCK_B, K] fp16
    ring (slot = step parity, as safe as the kernels' own: a slot is rewritten only after
    every program has published the step that read it)."""
    pid = tl.program_id(0)
    units = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    batch = tl.arange(0, BLOCK_B)
    mask_b = batch < BLOCK_B
    h_mine = (units[:, None] + batch[None, :]).to(tl.float16)   # [BLOCK_N, BLOCK_B]
    total = tl.zeros([BLOCK_B], tl.float32)
    alive = tl.full([], 1, tl.int32)
    start = _clock()
    for step in range(steps):
        slot = h_ptr + (step % 2) * (BLOCK_B * K)
        if MOVE_H:
            tl.store(slot + batch[None, :] * K + units[:, None], h_mine)
        publish(flags_ptr + pid, step + 1, RELEASE)
        alive = wait_for_group(flags_ptr, progs, step + 1, alive, spin_limit, sync_ptr, step,
                               SLICES_P2)
        if MOVE_H:  # all of h_t, as the forward's resident chunks load it: one round trip
            cols = load_columns(slot, batch, mask_b, tl.arange(0, K_P2), K)  # [K_P2, BLOCK_B]
            total += tl.sum(cols.to(tl.float32), axis=0)
            h_mine = (total[None, :] * 1e-6 + units[:, None]).to(tl.float16)  # depends on h_t
    stop = _clock()
    tl.store(out_ptr + 2 * pid, stop - start)
    tl.store(out_ptr + 2 * pid + 1, (1 - alive).to(tl.int64))


EXCHANGE_STEPS = 4096
EXCHANGE_PROGRAMS = (8, 48, 128)


def exchange_step_cycles(progs, move_h, release=True, steps=EXCHANGE_STEPS):
    """(clock64 cycles per step, the slowest program's; ns per step by CUDA events) of
    _exchange_step_kernel with `progs` programs (release=False: the flag stored relaxed,
    with no fence, to time what the fence costs)."""
    import torch
    dev = torch.device("cuda")
    block_n, block_b = 16, 16
    K = block_n * progs
    h = torch.zeros(2 * block_b * K, dtype=torch.float16, device=dev)
    flags = torch.zeros(progs, dtype=torch.int32, device=dev)
    sync = torch.zeros(4, dtype=torch.int32, device=dev)
    out = torch.zeros(2 * progs, dtype=torch.int64, device=dev)
    p2 = triton.next_power_of_2(progs)
    args = dict(K=K, K_P2=triton.next_power_of_2(K), BLOCK_N=block_n, BLOCK_B=block_b,
                SLICES_P2=p2, MOVE_H=move_h, RELEASE=release, num_warps=4)
    _exchange_step_kernel[(progs,)](h, flags, sync, out, 8, progs, SPIN_LIMIT, **args)  # compile
    flags.zero_()
    sync.zero_()
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    _exchange_step_kernel[(progs,)](h, flags, sync, out, steps, progs, SPIN_LIMIT, **args)
    end.record()
    torch.cuda.synchronize()
    if sync[1].item() or out[1::2].sum().item():
        raise RuntimeError(f"exchange step, {progs} programs: a wait exceeded its spin limit "
                           "(programs not co-resident, or another process holding the SMs?)")
    return out[0::2].max().item() / steps, begin.elapsed_time(end) * 1e6 / steps


def anchor_forward_ablation():
    """{variant: timing} of the anchor's inference forward (CUDA events, L2 cleared) with
    none, one or both of the fence and the waits left out of its split kernel's steps."""
    import torch
    import tritonrnn
    from bench.shapes import ANCHOR
    from bench.timing import CudaEventTimer, summarize
    from tritonrnn.kernels import config, split
    T = ANCHOR.seq
    model = tritonrnn.LSTM(ANCHOR.input_size, ANCHOR.hidden).to("cuda", torch.float16).eval()
    x = torch.randn(T, ANCHOR.batch, ANCHOR.input_size, device="cuda", dtype=torch.float16)
    no_wait, no_fence = split.ABLATE_NO_WAIT.value, split.ABLATE_NO_FENCE.value
    timer = CudaEventTimer(warmup=2, budget_ms=150, min_reps=5, max_reps=20)
    out = {}
    for name, mask in (("as_shipped", 0), ("no_fence", no_fence), ("no_wait", no_wait),
                       ("no_wait_no_fence", no_wait | no_fence)):
        with config.ablate_split_forward(mask), torch.no_grad():
            st = summarize(timer(lambda inputs: model(inputs), [x]))
        out[name] = dict(ms=st.median, p20=st.p20, p80=st.p80, n=st.n,
                         us_per_step=st.median * 1e3 / T)
    return out


def _median(values):
    return sorted(values)[len(values) // 2]


def measure(repeats=5):
    import torch
    dev = torch.device("cuda")
    raw = {}
    # 1. dependent loads over a random cycle of 128-byte lines
    n = CHASE_BYTES // LINE
    stride = LINE // 4
    order = torch.randperm(n)
    nxt = torch.empty(n, dtype=torch.int64)
    nxt[order] = order.roll(-1)
    table = torch.zeros(n * stride, dtype=torch.int32)
    table[::stride] = nxt.to(torch.int32)
    table = table.to(dev)
    out = torch.zeros(2, dtype=torch.int64, device=dev)
    _chase_kernel[(1,)](table, out, 10, STRIDE=stride, num_warps=1)  # compile, warm L2
    _chase_kernel[(1,)](table, out, n, STRIDE=stride, num_warps=1)
    cycles, seconds = [], []
    for _ in range(repeats):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        _chase_kernel[(1,)](table, out, HOPS, STRIDE=stride, num_warps=1)
        end.record()
        torch.cuda.synchronize()
        cycles.append(out[0].item() / HOPS)
        seconds.append(begin.elapsed_time(end) / 1e3 / HOPS)
    raw["chase_cycles_per_hop"] = cycles
    raw["chase_ns_per_hop"] = [s * 1e9 for s in seconds]
    latency = _median(cycles)
    # 2. hand-offs between two programs
    flags = torch.zeros(2, dtype=torch.int32, device=dev)
    out = torch.zeros(4, dtype=torch.int64, device=dev)
    handoff = []
    for _ in range(repeats):
        flags.zero_()
        _ping_pong_kernel[(2,)](flags, out, HANDOFFS, SPIN_LIMIT, num_warps=1)
        torch.cuda.synchronize()
        if out[1].item() or out[3].item():
            raise RuntimeError("ping-pong: a hand-off exceeded its spin limit (programs not "
                               "co-resident, or another process holding the SMs?)")
        handoff.append(out[0].item() / (2 * HANDOFFS))
    raw["handoff_cycles"] = handoff
    # 3. shared-memory operand streaming by the tensor cores
    M, N, K = 64, 16, 256
    w = torch.randn(M, K, device=dev, dtype=torch.float16)
    h = torch.randn(K, N, device=dev, dtype=torch.float16)
    out = torch.zeros(M * N + 1, dtype=torch.float32, device=dev)
    rates = []
    for _ in range(repeats):
        _smem_stream_kernel[(1,)](w, h, out, MMA_ITERS, M=M, N=N, K=K, num_warps=4)
        torch.cuda.synchronize()
        rates.append((M * K + K * N) * 2 * MMA_ITERS / out[M * N].item())
    raw["smem_operand_bytes_per_clk"] = rates
    # 4. the anchor's forward with parts of its steps left out (recorded, not a constant yet)
    raw["anchor_forward_ablation"] = anchor_forward_ablation()
    # 5. the split regime's exchange alone (recorded, not a model constant yet)
    for progs in EXCHANGE_PROGRAMS:
        for move_h, release in ((True, True), (False, True), (True, False)):
            clk, ns = exchange_step_cycles(progs, move_h, release)
            what = ("h_and_flags" if move_h else "flags_only") + ("" if release else "_no_fence")
            raw[f"exchange_step_{progs}_programs_{what}"] = dict(cycles=clk, ns=ns)
    clock = _median(cycles) / _median(raw["chase_ns_per_hop"])  # cycles per ns = GHz
    constants = dict(l2_latency_clk=latency,
                     exchange_extra_clk=max(0.0, _median(handoff) - latency),
                     smem_bytes_per_clk=_median(rates), clock_ghz=clock)
    return constants, raw


def main(gpu, out=None):
    try:
        import torch
        available = torch.cuda.is_available()
    except ImportError:
        available = False
    if not available or os.environ.get("TRITON_INTERPRET", "0") == "1":
        print("--calibrate needs a CUDA GPU and TRITON_INTERPRET unset: it times small "
              "kernels on the device. Nothing was measured; the model keeps its assumed "
              "constants (bench/gpu_constants.py).", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name()
    constants, raw = measure()
    record = dict(gpu=name, model_gpu=gpu, date=datetime.datetime.now(datetime.timezone.utc)
                  .strftime("%Y-%m-%d %H:%M UTC"), triton=triton.__version__,
                  torch=torch.__version__, constants=constants, raw=raw)
    path = out or os.path.join(os.path.dirname(__file__), "calibration", f"{gpu}.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
    print(f"measured on {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in constants.items()))
    for name, t in raw["anchor_forward_ablation"].items():
        print(f"  anchor forward, {name}: {t['ms']:.3f} ms ({t['p20']:.3f}-{t['p80']:.3f}), "
              f"{t['us_per_step']:.2f} us a step")
    for key, value in raw.items():
        if key.startswith("exchange_step"):
            print(f"  {key}: {value['cycles']:.0f} cycles, {value['ns']:.0f} ns a step")
    print(f"wrote {path}")
    return 0
