"""Measure bench/model.py's least certain constants on a CUDA GPU with small kernels,
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

And, recorded under "raw" but not yet model constants, in this order (the file is rewritten
after each part, so a run its time limit stops keeps what it measured):
- step_profile_h768_inference, _h768_training, _h256_inference: where a split step's cycles
  go, from the SM's cycle counter inside the real kernels (kernels/split.py PROFILE, results
  unchanged), at the anchor's layer (48 programs; inference forward, then training forward
  and backward) and at H = 256 (16): per kernel and program, a step's mean cycles, its
  waits for the others' flags, its releases (barrier, fence, flag) and the rest, its own
  work, as [min, median, max] over the programs.
- anchor_forward_ablation: the anchor's forward (LSTM fp16, B=16, T=1024, I=H=768) timed
  with parts of every step left out (kernels/split.py ABLATE_*; wrong results, right
  timings): as shipped, without the fence, without the waits, without both. The
  differences are what the waits and the fence cost inside the real kernel.
- exchange_step: P programs run kernels/split.py's own step protocol with no arithmetic: each
  stores its [16 units, 16 batch] fp16 slice of h, publishes the step (barrier, release),
  waits for every program's flag (bounded volatile polls) and loads all of h (K = 16 P
  columns, in 256-column chunks as the forward loads them). Cycles per step for P = 8, 48
  (the anchor's programs) and 128; the same with no h stored or loaded (flags only); with
  the flag stored relaxed, no fence (not a safe protocol: it times the fence); and reading
  a ring nobody writes (read_unwritten_h): with h_and_flags, it tells loading h that other
  SMs have just written from loading h at all. tagged_h (P = 8, 48): the exchange with the
  flag in the data (_tagged_exchange_kernel: a step tag in every int32 word beside its fp16
  h; no flags, no fence, twice the bytes), against h_and_flags: whether building it into
  the kernels would pay.
  The first H200 visit's h_and_flags took 9,400-11,700 cycles a step at 48 and 128
  programs, more than the anchor's whole step. Its kernel was not the forward's exchange:
  under ptxas's default register cap, triton 3.6 issued its 16 loads of h one at a time, 16
  round trips a step where the forward has one (AOT, sm_90; 3.9 issued three at a time).
  The exchange kernels now run with the split kernels' register cap, and at 48 programs
  their 12 h loads go out together, as the forward's do.
"""
import datetime
import json
import os
import sys

import triton
import triton.language as tl

from tritonrnn.kernels.split import (clock64, load_columns, publish, split_maxnreg,
                                     wait_for_group)

LINE = 128           # bytes per pointer-chase element (one cache line each)
CHASE_BYTES = 4 << 20
HOPS = 20000
HANDOFFS = 2000
SPIN_LIMIT = 1 << 22  # polls before a hand-off is given up (never hang)
MMA_ITERS = 4096


@triton.jit
def _chase_kernel(next_ptr, out_ptr, hops, STRIDE: tl.constexpr):
    idx = tl.load(next_ptr, cache_modifier=".cg")  # first hop, also warms the pipeline
    start = clock64()
    for _ in range(hops):
        idx = tl.load(next_ptr + idx * STRIDE, cache_modifier=".cg")
    stop = clock64()
    tl.store(out_ptr, stop - start)
    tl.store(out_ptr + 1, idx.to(tl.int64))  # keeps the chase alive


@triton.jit
def _ping_pong_kernel(flags_ptr, out_ptr, handoffs, spin_limit):
    """Program 0 writes i+1 to flags[0] and waits for flags[1] == i+1; program 1 answers."""
    pid = tl.program_id(0)
    mine = flags_ptr + pid
    other = flags_ptr + 1 - pid
    start = clock64()
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
    stop = clock64()
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
    start = clock64()
    for _ in range(iters):
        acc = tl.dot(w, h, acc)
    stop = clock64()
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], acc)
    tl.store(out_ptr + M * N, (stop - start).to(tl.float32))


@triton.jit
def _own_units(BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr):
    """(units, batch, made-up h [BLOCK_N, BLOCK_B] fp16) of this program of an exchange
    kernel: it owns units pid * BLOCK_N + [0, BLOCK_N) of h."""
    units = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    batch = tl.arange(0, BLOCK_B)
    return units, batch, (units[:, None] + batch[None, :]).to(tl.float16)


@triton.jit
def _next_h(total, units):
    """The program's next h, made to depend on all of h just read (its column sums)."""
    return (total[None, :] * 1e-6 + units[:, None]).to(tl.float16)


@triton.jit
def _load_ring_chunks(slot, batch, K: tl.constexpr, KC: tl.constexpr):
    """All of a ring slot's h as the forward's resident chunks load it: K / KC tiles
    [KC, BLOCK_B] (whole: no mask), every load issued before any is used (one round trip)."""
    chunks = ()
    for i in tl.static_range(K // KC):
        kk = i * KC + tl.arange(0, KC)
        chunks = chunks + (load_columns(slot, batch, kk, K, batch >= 0, True),)
    return chunks


@triton.jit
def _report(out_ptr, start, alive):
    """out[2 pid]: the program's cycles since `start`; out[2 pid + 1]: 1 if a wait gave up."""
    pid = tl.program_id(0)
    tl.store(out_ptr + 2 * pid, clock64() - start)
    tl.store(out_ptr + 2 * pid + 1, (1 - alive).to(tl.int64))


@triton.jit(do_not_specialize=["steps", "progs"])  # the warm-up launch compiles the timed one
def _exchange_step_kernel(h_ptr, flags_ptr, sync_ptr, out_ptr, steps, progs, spin_limit,
                          K: tl.constexpr, KC: tl.constexpr, BLOCK_N: tl.constexpr,
                          BLOCK_B: tl.constexpr, SLICES_P2: tl.constexpr, WRITE_H: tl.constexpr,
                          READ_H: tl.constexpr, RELEASE: tl.constexpr):
    """Program pid owns units pid * BLOCK_N + [0, BLOCK_N) of h, a [2 slots, BLOCK_B, K] fp16
    ring (slot = step parity, as safe as the kernels' own: a slot is rewritten only after
    every program has published the step that read it). h is read as the forward reads it:
    K / KC chunks [KC, BLOCK_B], all loaded before the first is used. READ_H without WRITE_H
    reads a ring nobody writes: what loading h costs when no other SM has just written it."""
    pid = tl.program_id(0)
    units, batch, h_mine = _own_units(BLOCK_N, BLOCK_B)
    total = tl.zeros([BLOCK_B], tl.float32)
    alive = tl.full([], 1, tl.int32)
    start = clock64()
    for step in range(steps):
        slot = h_ptr + (step % 2) * (BLOCK_B * K)
        if WRITE_H:
            tl.store(slot + batch[None, :] * K + units[:, None], h_mine)
        publish(flags_ptr + pid, step + 1, RELEASE)
        alive = wait_for_group(flags_ptr, progs, step + 1, alive, spin_limit, sync_ptr, step,
                               SLICES_P2)
        if READ_H:  # all of h_t, as the forward's resident chunks load it: one round trip
            chunks = _load_ring_chunks(slot, batch, K, KC)
            for i in tl.static_range(K // KC):
                total += tl.sum(chunks[i].to(tl.float32), axis=0)
            h_mine = _next_h(total, units)
    _report(out_ptr, start, alive)


@triton.jit
def _tagged_until_fresh(words, where, tag, limit):
    """Words of a tagged ring (see _tagged_exchange_kernel) first loaded from `where`,
    re-read where stale until every one carries `tag` (at most `limit` polls): (their fp16
    halves as fp32, 1 if all arrived else 0)."""
    stale = ((words >> 16) & 0xFFFF) != tag
    left = tl.sum(stale.to(tl.int32))
    polls = 0
    while (left > 0) & (polls < limit):
        words = tl.where(stale, tl.load(where, mask=stale, other=0, volatile=True), words)
        stale = ((words >> 16) & 0xFFFF) != tag
        left = tl.sum(stale.to(tl.int32))
        polls += 1
    h = (words & 0xFFFF).to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
    return h, (left == 0).to(tl.int32)


@triton.jit(do_not_specialize=["steps"])  # the warm-up launch compiles the timed one
def _tagged_exchange_kernel(ring_ptr, out_ptr, steps, spin_limit, K: tl.constexpr,
                            KC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr):
    """The exchange with the flag in the data: every int32 word of a [2 slots, BLOCK_B, K]
    ring carries one fp16 h in its low half and the step that wrote it (plus one, mod 2^16)
    in its high half. A word is stored and loaded whole (32-bit accesses are single-copy
    atomic), so a consumer that sees the step's tag sees its h: no flags, no fence, one
    round trip when everything has arrived, at twice the bytes of h. The ring is as safe as
    the flag ring (a slot is rewritten only after every program read it)."""
    units, batch, h_mine = _own_units(BLOCK_N, BLOCK_B)
    total = tl.zeros([BLOCK_B], tl.float32)
    alive = tl.full([], 1, tl.int32)
    start = clock64()
    for step in range(steps):
        slot = ring_ptr + (step % 2) * (BLOCK_B * K)
        tag = (step + 1) % 65536
        bits = h_mine.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
        tl.store(slot + batch[None, :] * K + units[:, None], bits | (tag << 16))
        words = _load_ring_chunks(slot, batch, K, KC)  # polled only once all are out
        for i in tl.static_range(K // KC):
            where = slot + batch[None, :] * K + (i * KC + tl.arange(0, KC))[:, None]
            h, ok = _tagged_until_fresh(words[i], where, tag, spin_limit * alive)
            total += tl.sum(h, axis=0)
            alive = alive * ok
        h_mine = _next_h(total, units)
    _report(out_ptr, start, alive)


EXCHANGE_STEPS = 4096
EXCHANGE_PROGRAMS = (8, 48, 128)
# The tagged exchange holds twice h's bytes in registers: at 128 programs (K = 2048) that
# spilled 344 B (AOT, sm_90), and the split kernels stream h there anyway.
TAGGED_PROGRAMS = (8, 48)


def _timed_exchange(kernel, progs, args, zeroed, out, sync, meta, steps, what):
    """(clock64 cycles per step, the slowest program's; ns per step by CUDA events) of
    `kernel` run by `progs` programs for `steps` steps (args(steps): its positional
    arguments; meta: its constexprs and options), after an 8-step launch that compiles it;
    `zeroed` buffers are reset in between. out: the kernel's [progs, 2] int64 report
    (_report); sync: sync words whose [1] says a wait gave up, or None."""
    import torch
    kernel[(progs,)](*args(8), **meta)
    for b in zeroed:
        b.zero_()
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    kernel[(progs,)](*args(steps), **meta)
    end.record()
    torch.cuda.synchronize()
    if (sync is not None and sync[1].item()) or out[1::2].sum().item():
        raise RuntimeError(f"{what}, {progs} programs: a wait exceeded its spin limit "
                           "(programs not co-resident, or another process holding the SMs?)")
    return out[0::2].max().item() / steps, begin.elapsed_time(end) * 1e6 / steps


def _exchange_meta(progs):
    """Constexprs and options both exchange kernels take: 16 units and 16 batch rows a
    program, K = 16 progs read in chunks of up to 256, and the split kernels' register cap
    (under ptxas's default, 40 registers, the h loads went out two or three at a time:
    several round trips, AOT, sm_90, not the forward's one)."""
    K = 16 * progs
    return dict(K=K, KC=min(K, 256), BLOCK_N=16, BLOCK_B=16, num_warps=4,
                maxnreg=split_maxnreg(4))


def exchange_step_cycles(progs, write_h, read_h, release=True, steps=EXCHANGE_STEPS):
    """_timed_exchange of _exchange_step_kernel (release=False: the flag stored relaxed,
    with no fence, to time what the fence costs)."""
    import torch
    meta = dict(_exchange_meta(progs), SLICES_P2=triton.next_power_of_2(progs),
                WRITE_H=write_h, READ_H=read_h, RELEASE=release)
    h = torch.zeros(2 * 16 * meta["K"], dtype=torch.float16, device="cuda")
    flags = torch.zeros(progs, dtype=torch.int32, device="cuda")
    sync = torch.zeros(4, dtype=torch.int32, device="cuda")
    out = torch.zeros(2 * progs, dtype=torch.int64, device="cuda")
    return _timed_exchange(_exchange_step_kernel, progs,
                           lambda n: (h, flags, sync, out, n, progs, SPIN_LIMIT),
                           [flags, sync], out, sync, meta, steps, "exchange step")


def tagged_exchange_cycles(progs, steps=EXCHANGE_STEPS):
    """_timed_exchange of _tagged_exchange_kernel (the flag in the data)."""
    import torch
    meta = _exchange_meta(progs)
    ring = torch.zeros(2 * 16 * meta["K"], dtype=torch.int32, device="cuda")
    out = torch.zeros(2 * progs, dtype=torch.int64, device="cuda")
    return _timed_exchange(_tagged_exchange_kernel, progs,
                           lambda n: (ring, out, n, SPIN_LIMIT), [ring], out, None, meta,
                           steps, "tagged exchange")


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


# (H, training) of the step profiles: the anchor's layer (48 programs a step) in inference
# and in training (its forward saves activations; then the backward), and H = 256 (16)
PROFILES = ((768, False), (768, True), (256, False))


def step_profile(hidden, training):
    """Where the split kernels' step cycles go: the anchor's layer (LSTM fp16, B=16, T=1024)
    at I = H = `hidden`, its forward (and, `training`, forward and backward) run twice under
    config.profile_split, the second run kept (the first compiles). For each split kernel
    launched, per program: mean SM cycles of a step, of its waits for the others' flags, of
    its releases (barrier, fence, flag), and the rest, its own work (loads, products, cell,
    stores, the backward's sum of partials); each as [min, median, max] over the programs."""
    import torch
    import tritonrnn
    from bench.shapes import ANCHOR
    from tritonrnn.kernels import config
    model = tritonrnn.LSTM(hidden, hidden).to("cuda", torch.float16).train(training)
    x = torch.randn(ANCHOR.seq, ANCHOR.batch, hidden, device="cuda", dtype=torch.float16,
                    requires_grad=training)

    def run():
        with torch.set_grad_enabled(training):
            y, _ = model(x)
            if training:
                y.backward(torch.ones_like(y))

    with config.profile_split() as profiles:
        run()
        del profiles[:]
        run()
    if not profiles:
        return dict(regime="fused: no split launch to profile")
    out = {}
    for kernel, words in profiles:
        words = words.reshape(-1, 3).double()  # [programs, (step, wait, release)]
        step, wait, release = words.unbind(1)
        parts = dict(step=step, wait=wait, release=release, work=step - wait - release)
        out[kernel] = dict(programs=words.shape[0], steps=ANCHOR.seq, **{
            k: [v.min().item(), v.median().item(), v.max().item()] for k, v in parts.items()})
    return out


def profile_text(profile):
    """step_profile's result in one line: each kernel's medians over its programs [min-max]."""
    if "regime" in profile:
        return profile["regime"]
    return "; ".join(
        f"{kernel}, {p['programs']} programs, cycles a step: " + ", ".join(
            f"{k} {p[k][1]:.0f} [{p[k][0]:.0f}-{p[k][2]:.0f}]"
            for k in ("step", "work", "wait", "release"))
        for kernel, p in profile.items())


def _median(values):
    return sorted(values)[len(values) // 2]


def _chase(repeats):
    """Cycles and ns per dependent load over a random cycle of 128-byte lines."""
    import torch
    n = CHASE_BYTES // LINE
    stride = LINE // 4
    order = torch.randperm(n)
    nxt = torch.empty(n, dtype=torch.int64)
    nxt[order] = order.roll(-1)
    table = torch.zeros(n * stride, dtype=torch.int32)
    table[::stride] = nxt.to(torch.int32)
    table = table.to("cuda")
    out = torch.zeros(2, dtype=torch.int64, device="cuda")
    _chase_kernel[(1,)](table, out, 10, STRIDE=stride, num_warps=1)  # compile, warm L2
    _chase_kernel[(1,)](table, out, n, STRIDE=stride, num_warps=1)
    cycles, ns = [], []
    for _ in range(repeats):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        _chase_kernel[(1,)](table, out, HOPS, STRIDE=stride, num_warps=1)
        end.record()
        torch.cuda.synchronize()
        cycles.append(out[0].item() / HOPS)
        ns.append(begin.elapsed_time(end) * 1e6 / HOPS)
    return cycles, ns


def _handoffs(repeats):
    """Cycles of one hand-off between two programs, per repetition."""
    import torch
    flags = torch.zeros(2, dtype=torch.int32, device="cuda")
    out = torch.zeros(4, dtype=torch.int64, device="cuda")
    handoff = []
    for _ in range(repeats):
        flags.zero_()
        _ping_pong_kernel[(2,)](flags, out, HANDOFFS, SPIN_LIMIT, num_warps=1)
        torch.cuda.synchronize()
        if out[1].item() or out[3].item():
            raise RuntimeError("ping-pong: a hand-off exceeded its spin limit (programs not "
                               "co-resident, or another process holding the SMs?)")
        handoff.append(out[0].item() / (2 * HANDOFFS))
    return handoff


def _smem_rates(repeats):
    """Shared-memory operand bytes per cycle of a loop-invariant [64, 256] @ [256, 16]."""
    import torch
    M, N, K = 64, 16, 256
    w = torch.randn(M, K, device="cuda", dtype=torch.float16)
    h = torch.randn(K, N, device="cuda", dtype=torch.float16)
    out = torch.zeros(M * N + 1, dtype=torch.float32, device="cuda")
    rates = []
    for _ in range(repeats):
        _smem_stream_kernel[(1,)](w, h, out, MMA_ITERS, M=M, N=N, K=K, num_warps=4)
        torch.cuda.synchronize()
        rates.append((M * K + K * N) * 2 * MMA_ITERS / out[M * N].item())
    return rates


# (write h, read h, release): what each exchange_step variant keeps of the split step
EXCHANGE_VARIANTS = {"h_and_flags": (True, True, True), "flags_only": (False, False, True),
                     "h_and_flags_no_fence": (True, True, False),
                     "read_unwritten_h": (False, True, True)}


def measure(repeats=5):
    """Yield (name, raw value): the model's constants first (a second), then the split
    forward's step profile, the anchor's ablations and the exchange alone, so that a run
    stopped by its time limit has saved what matters most."""
    cycles, ns = _chase(repeats)
    yield "chase_cycles_per_hop", cycles
    yield "chase_ns_per_hop", ns
    yield "handoff_cycles", _handoffs(repeats)
    yield "smem_operand_bytes_per_clk", _smem_rates(repeats)
    for hidden, training in PROFILES:
        yield (f"step_profile_h{hidden}_{'training' if training else 'inference'}",
               step_profile(hidden, training))
    yield "anchor_forward_ablation", anchor_forward_ablation()
    for progs in EXCHANGE_PROGRAMS:
        for what, (write_h, read_h, release) in EXCHANGE_VARIANTS.items():
            clk, step_ns = exchange_step_cycles(progs, write_h, read_h, release)
            yield f"exchange_step_{progs}_programs_{what}", dict(cycles=clk, ns=step_ns)
        if progs in TAGGED_PROGRAMS:
            clk, step_ns = tagged_exchange_cycles(progs)
            yield f"exchange_step_{progs}_programs_tagged_h", dict(cycles=clk, ns=step_ns)


def constants_from(raw):
    """The model's constants that the raw parts measured so far give."""
    constants = {}
    if "chase_cycles_per_hop" in raw and "chase_ns_per_hop" in raw:
        latency = _median(raw["chase_cycles_per_hop"])
        constants["l2_latency_clk"] = latency
        constants["clock_ghz"] = latency / _median(raw["chase_ns_per_hop"])  # cycles per ns
        if "handoff_cycles" in raw:
            constants["exchange_extra_clk"] = max(0.0, _median(raw["handoff_cycles"]) - latency)
    if "smem_operand_bytes_per_clk" in raw:
        constants["smem_bytes_per_clk"] = _median(raw["smem_operand_bytes_per_clk"])
    return constants


def _line(name, value):
    """One raw part as a line of the run's output."""
    if name == "anchor_forward_ablation":
        return "\n".join(f"  anchor forward, {k}: {t['ms']:.3f} ms ({t['p20']:.3f}-{t['p80']:.3f}), "
                         f"{t['us_per_step']:.2f} us a step" for k, t in value.items())
    if name.startswith("step_profile"):
        return f"  {name}: " + profile_text(value)
    if name.startswith("exchange_step"):
        return f"  {name}: {value['cycles']:.0f} cycles, {value['ns']:.0f} ns a step"
    return f"  {name}: " + ", ".join(f"{v:.4g}" for v in value)


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
    raw = {}
    record = dict(gpu=name, model_gpu=gpu, date=datetime.datetime.now(datetime.timezone.utc)
                  .strftime("%Y-%m-%d %H:%M UTC"), triton=triton.__version__,
                  torch=torch.__version__, constants={}, raw=raw)
    path = out or os.path.join(os.path.dirname(__file__), "calibration", f"{gpu}.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    print(f"measuring on {name}, writing {path} after each part", flush=True)
    for part, value in measure():
        raw[part] = value
        record["constants"] = constants_from(raw)
        with open(path, "w") as f:  # rewritten after each part: a stopped run keeps them
            json.dump(record, f, indent=1)
        print(_line(part, value), flush=True)
    print("constants: " + ", ".join(f"{k} {v:.4g}" for k, v in record["constants"].items()))
    print(f"wrote {path}")
    return 0
