"""What no kernel of the split design can go under, by the latency model's own terms: an
ESTIMATE of a bound (bench/model.py's formula and bench/gpu_constants.py's constants, no
compile, no GPU), next to the bytes a forward step loads in all.

The design (kernels/split.py): P programs, each owning U = H / P hidden units and holding
their rows of W_hh (G x U rows of K = H columns) in shared memory, and each, every step,
  - loads all of h_{t-1} ([B, H] in the storage dtype) and its units' input projection,
  - waits for the other programs once (one L2 round trip, plus the exchange's cost beyond
    it: bench.model's exchange_extra_clk),
  - reads its rows of W from shared memory into the tensor cores.
Only these three are counted; everything else a kernel does (fences, barriers, instruction
issue, shared-memory stores, the math) can only add to them. As in bench.model, the low end
takes the fast constants with the two work terms overlapped, the high end the slow ones with
them added:

    step = l2_latency + exchange_extra + {max, sum}((h + x) / L2 B/clk, W rows / smem B/clk)

Bytes a forward step loads, all programs together (what tests/test_traffic.py counts under
the interpreter): P x (h + the program's input projection) + one poll of the group's int32
flags by each program.
"""
from dataclasses import asdict, dataclass

from bench.model import gemm_ms
from tritonrnn.kernels.config import SHARED_PER_BLOCK
from tritonrnn.kernels.split import REGISTER_FILE

REGISTER_BYTES = REGISTER_FILE * 4  # a block's whole register file (sm_80, sm_90)
THREADS_IF_IN_REGISTERS = 8 * 32  # the warps a program holding W in registers would run


@dataclass(frozen=True)
class Bound:
    units: int            # hidden units a program owns (U)
    programs: int         # P
    w_bytes: int          # its rows of W_hh, the bytes it reads from shared memory a step
    fits: bool            # those rows fit a block's shared memory (its registers, w_in_registers),
                          # and P programs fit the SMs
    step_cycles: tuple    # (low, high): the least a forward step can take
    gemm_ms: tuple        # (low, high): the input projection's GEMM
    forward_ms: tuple     # (low, high): T such steps plus that GEMM
    step_bytes: int       # bytes loaded a forward step, all programs together


def bound(units, cell_gates, batch, hidden, seq, itemsize, consts, arch=90,
          w_in_registers=False):
    """The Bound of a forward step with `units`-unit slices (I = K = H, one direction).
    w_in_registers: the W rows held in registers instead (no shared-memory term): not this
    design, and not what Triton makes of a loop-invariant dot operand (shared memory)."""
    programs = -(-hidden // units)
    h_bytes = batch * hidden * itemsize
    x_bytes = batch * cell_gates * units * itemsize
    w_bytes = cell_gates * units * hidden * itemsize
    cycles = []
    for end in (0, 1):
        c = {k: v[end] for k, v in consts.items()}
        wait = c["l2_latency_clk"] + c["exchange_extra_clk"]
        l2 = (h_bytes + x_bytes) / c["l2_bytes_per_clk_sm"]
        smem = 0 if w_in_registers else w_bytes / c["smem_bytes_per_clk"]
        cycles.append(wait + (max(l2, smem) if end == 0 else l2 + smem))
    gemm = gemm_ms(2.0 * seq * batch * hidden * cell_gates * hidden, consts)
    forward = tuple(seq * cycles[e] / (consts["clock_ghz"][e] * 1e6) + gemm[e] for e in (0, 1))
    fits = (w_bytes <= (REGISTER_BYTES if w_in_registers else SHARED_PER_BLOCK[arch // 10])
            and programs <= consts["sms"][0])
    return Bound(units, programs, w_bytes, fits, tuple(cycles), gemm, forward,
                 programs * (h_bytes + x_bytes) + programs * programs * 4)


def slice_bounds(cell_gates, batch, hidden, seq, itemsize, consts, arch=90):
    """Bounds for every power-of-two slice width, one unit to all of H (`fits` says which
    can run: P programs on the SMs, each block's rows in its shared memory)."""
    out, units = [], 1
    while units <= hidden:
        out.append(bound(units, cell_gates, batch, hidden, seq, itemsize, consts, arch))
        units *= 2
    return out


def print_anchor(consts, dtype_itemsize, arch, out):
    """Print the anchor's bounds by slice width against the resident-weights issue's targets;
    returns them (JSON-ready)."""
    from bench.shapes import (ANCHOR, ANCHOR_MODEL_TARGET_MS, ANCHOR_STEP_BYTES_BEFORE,
                              ANCHOR_STEP_BYTES_TARGET)
    from tritonrnn.kernels import cells
    gates = cells.lookup(ANCHOR.cell).gates
    target_ms = ANCHOR_MODEL_TARGET_MS["forward"]
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("Least a forward step of this design can take at the anchor (bench/design_bound.py: one "
      "wait, all of h and")
    p("the input projection from L2, the W rows from shared memory, nothing else), and what a "
      "step loads in all.")
    p(f"Targets: forward <= {target_ms} ms at the high end; bytes under "
      f"{ANCHOR_STEP_BYTES_TARGET:.0%} of {ANCHOR_STEP_BYTES_BEFORE:,}. 'left': cycles a step "
      f"the time target leaves")
    p("for everything not counted (instruction issue, fences, barriers) at the high end. "
      "'W in regs': the forward")
    p("if the W rows were held in registers instead (not this design), with the registers a "
      "thread would give them at 8 warps.")
    p(f"  {'slice':>6} {'programs':>8} {'W KiB':>6} {'cycles/step':>13} {'left':>6} "
      f"{'forward ms':>12} {'bytes/step':>11} {'share':>6} {'meets':<8} {'W in regs':>16}")
    rows = []
    for b in slice_bounds(gates, ANCHOR.batch, ANCHOR.hidden, ANCHOR.seq, dtype_itemsize,
                          consts, arch):
        if not b.fits:
            continue
        share = b.step_bytes / ANCHOR_STEP_BYTES_BEFORE
        left = budget_cycles(b, target_ms, ANCHOR.seq, consts) - b.step_cycles[1]
        meets = [name for name, ok in (("time", left >= 0),
                                       ("bytes", share < ANCHOR_STEP_BYTES_TARGET)) if ok]
        regs = bound(b.units, gates, ANCHOR.batch, ANCHOR.hidden, ANCHOR.seq, dtype_itemsize,
                     consts, arch, w_in_registers=True)
        p(f"  {b.units:>6} {b.programs:>8} {b.w_bytes / 1024:>6.0f} "
          f"{b.step_cycles[0]:>6.0f}-{b.step_cycles[1]:<6.0f} {left:>6.0f} "
          f"{b.forward_ms[0]:>5.2f}-{b.forward_ms[1]:<6.2f} {b.step_bytes:>11,} "
          f"{share:>6.1%} {' and '.join(meets) or 'neither':<8} "
          f"{regs.forward_ms[0]:>4.2f}-{regs.forward_ms[1]:<4.2f} ms, {b.w_bytes // 4 // THREADS_IF_IN_REGISTERS:>3}")
        rows.append(dict(asdict(b), left_cycles=left, bytes_share=share, meets=meets,
                         w_in_registers_forward_ms=regs.forward_ms))
    return rows


def budget_cycles(b, target_ms, seq, consts):
    """High-end cycles a step may take for `target_ms` over `seq` steps, after the GEMM."""
    return (target_ms - b.gemm_ms[1]) * consts["clock_ghz"][1] * 1e6 / seq
