"""Which regime and block sizes a recurrence runs with.

Two regimes:
- fused: one program per (batch tile, direction) holds all of W_hh (and W_hr) on chip for the
  whole sequence (kernels/fused.py).
- split: the hidden dimension is divided into slices across programs, each keeping its rows
  of W_hh on chip, that exchange h through global memory every step (kernels/split.py), in
  one persistent launch; the programs of a batch tile wait for each other's step flags.
"""
import contextlib
import functools
import os
from dataclasses import dataclass, replace

import torch

from .cells import GATES
# The dtype names live in kernels/dtypes.py; these are used by the plans below.
from .dtypes import math_dtype_name, tf32_for, torch_dtype  # noqa: F401

# Triton reads TRITON_INTERPRET when each kernel is defined, so this is fixed at import.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

# Bytes of recurrent weights one program may try to keep on chip: the fused regime's plans
# are candidates up to this size. The fused kernels keep W as loop-invariant dot operands,
# which stay in shared memory (kernels/fused.py): 128 KiB of W plus the kernels' staging
# (LSTM fp16 H = 128: 132-144 KiB in all, AOT) fits the per-block shared memory of both
# architectures (A100 163 KiB, H100 227 KiB). Tiles are powers of two, so the next size up
# holds 2-4x as much (LSTM fp16 H = 256: 512 KiB) and fits neither. The compile report
# prunes the plans that spill or exceed shared memory (pruned_configs.json).
ONCHIP_WEIGHT_BYTES = 128 * 1024
BLOCK_B = 16      # batch rows per program; tl.dot needs every dimension >= 16
SPLIT_BLOCK_KC = 64  # reduction chunk of force_split plans (tests)

_forced_split = None


@dataclass(frozen=True)
class ForcedSplit:
    """Test settings of the split regime (None: the launcher's own choice)."""
    hidden_block: int
    reduction_chunk: int = SPLIT_BLOCK_KC
    resident_chunks: int = None  # W_hh (and W_hr) chunks kept on chip, 0..4
    programs: int = None         # programs per group (the interpreter's default is 1)
    batch_block: int = BLOCK_B   # batch rows per program


@contextlib.contextmanager
def force_split(hidden_block, reduction_chunk=SPLIT_BLOCK_KC, resident_chunks=None,
                programs=None, batch_block=BLOCK_B):
    """Run every recurrence in the split regime with `hidden_block` hidden units per program
    (power of two >= 16); lets tests drive the multi-program path at small sizes, choose how
    much of W stays resident (the rest is streamed), how many programs a group has (more
    than one under the interpreter needs every program in its own thread) and how many batch
    rows a program takes."""
    global _forced_split
    assert hidden_block >= 16 and hidden_block & (hidden_block - 1) == 0
    saved = _forced_split
    _forced_split = ForcedSplit(hidden_block, reduction_chunk, resident_chunks, programs,
                                batch_block)
    try:
        yield
    finally:
        _forced_split = saved


def block(n):
    """Padded tile width for n elements: a power of two, at least 16 (tl.dot's minimum)."""
    return max(16, 1 << max(0, int(n) - 1).bit_length())


@dataclass(frozen=True)
class Plan:
    """One launch configuration of a recurrence (forward and backward use the same)."""
    split: bool
    block_b: int      # batch rows per program
    block_h: int      # fused: all of H; split: hidden units per program
    block_k: int      # fused: all of K; split: reduction chunk
    num_warps: int
    num_stages: int = 1

    def as_dict(self):
        return dict(split=self.split, block_b=self.block_b, block_h=self.block_h,
                    block_k=self.block_k, num_warps=self.num_warps, num_stages=self.num_stages)


def default_plan(cell, hidden, width, dtype):
    """The plan used when no tuning-table entry applies: the first unpruned candidate (the
    candidate lists put the conservative choice first)."""
    return _default_plan(cell, hidden, width, dtype, math_dtype_name(dtype))


@functools.lru_cache(maxsize=None)
def _default_plan(cell, hidden, width, dtype, math_name):
    options = candidates(cell, hidden, width, dtype)
    if not options:
        raise RuntimeError(f"no launch configuration fits cell {cell}, hidden {hidden}, "
                           f"width {width}, {dtype}: every candidate is pruned")
    return options[0]


_forced_plan = None
_split_ablation = 0
_split_profiles = None


@contextlib.contextmanager
def ablate_split_forward(mask):
    """Within: split forward launches leave out the parts of each step named by `mask`
    (bits split.ABLATE_*), so a GPU timing can tell what each part costs. Measurement
    only (bench/calibrate.py): such a launch computes wrong results."""
    global _split_ablation
    saved, _split_ablation = _split_ablation, mask
    try:
        yield
    finally:
        _split_ablation = saved


@contextlib.contextmanager
def profile_split():
    """Within: every split launch, forward and backward, also counts per program the mean SM
    cycles of its steps, of their waits and of their releases (split.PROFILE_WORDS), and
    appends (kernel name, int32 tensor [groups, progs, 3] on the CPU) to the list this
    yields. Results stay right; each launch waits for its kernel. Measurement only
    (bench/calibrate.py), on a GPU: the interpreter has no cycle counter."""
    global _split_profiles
    if INTERPRET:
        raise RuntimeError("profile_split reads the SM cycle counter: it needs a GPU "
                           "(TRITON_INTERPRET=1 runs kernels on the CPU)")
    saved, _split_profiles = _split_profiles, []
    try:
        yield _split_profiles
    finally:
        _split_profiles = saved


@contextlib.contextmanager
def force_plan(chosen):
    """Run every recurrence with `chosen` (a Plan): for the tuner and for tests."""
    global _forced_plan
    saved, _forced_plan = _forced_plan, chosen
    try:
        yield
    finally:
        _forced_plan = saved


def plan(cell, hidden, width, dtype, batch=None, device=None):
    """The plan a recurrence launches with: launch(...).plan."""
    return launch(cell, hidden, width, dtype, batch, device).plan


def multi_slice_plan(cell, hidden, width, dtype):
    """The split plan for a GPU with fewer SMs than the chosen plan has hidden slices: of the
    candidates that also compile clean in the multi-slice forms, the one with the widest
    slices (so the fewest per program; the first such in candidate order). Where none does
    (the projected LSTM in TF32: every candidate spilled walking its slices at H = 512 or
    past 2048, AOT, 2026-12-01), the widest split candidate all the same: slower, not
    wrong."""
    return _multi_slice_plan(cell, hidden, width, dtype, math_dtype_name(dtype))


def multi_slice_candidates(cell, hidden, width, dtype):
    """The split candidates that compile clean in the multi-slice forms too."""
    from .pruning import is_pruned
    return [p for p in candidates(cell, hidden, width, dtype) if p.split and not
            is_pruned(cell, width != hidden, math_dtype_name(dtype), p, multi_slice=True)]


@functools.lru_cache(maxsize=None)
def _multi_slice_plan(cell, hidden, width, dtype, math_name):
    clean = (multi_slice_candidates(cell, hidden, width, dtype)
             or [p for p in candidates(cell, hidden, width, dtype) if p.split])
    if not clean:
        raise RuntimeError(f"no multi-slice launch configuration fits cell {cell}, hidden "
                           f"{hidden}, width {width}, {dtype}: every candidate is pruned")
    return max(clean, key=lambda p: p.block_h)


# -- the launch configurations the library can select --------------------------------------

def fits_on_chip(cell, hidden, width, dtype):
    """Whether one program can hold all of W_hh (and W_hr): the fused regime."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    bh, bk = block(hidden), block(width)
    weight_bytes = (GATES[cell] * bh * bk + (bh * bk if width != hidden else 0)) * itemsize
    return weight_bytes <= ONCHIP_WEIGHT_BYTES


# The search space, kept small on purpose: every candidate is compiled by the compile report
# for sm_80 and sm_90 (minutes each) and timed by the tuner. Listed conservative first: the
# default plan is the first one the compile report did not prune.
# Fused: (batch tile, warps); all of W_hh is on chip, so the H and K tiles are fixed; the
# warps are the most a kernel gets (fused_warps). Batch tile 32 with 4 warps is left out:
# it spilled for every cell and dtype at H >= 64.
FUSED_SPACE = ((16, 8), (16, 4), (16, 16), (32, 8))
# Split: (rows of W_hh per program, warps, pipeline stages, reduction chunk) with batch tile
# 16. A program owns rows // GP hidden units (GP: gates padded to 4, or 1 for RNN), so 64
# rows are 16 units of LSTM/GRU or 64 of RNN: the tall side of a wgmma (M = 64). Its rows
# stay on chip in chunks of the reduction width (kernels/split.py).
SPLIT_SPACE = ((64, 4, 1, 256), (64, 8, 1, 256), (64, 4, 1, 128), (64, 8, 1, 128),
               (64, 8, 1, 64), (128, 8, 1, 128), (32, 4, 1, 64))


# Rows and batch columns of the smallest tensor-core output tile (mma.m16n8).
MMA_TILE_ROWS, MMA_TILE_COLS = 16, 8


def fused_warps(plan, cell, hidden, width, backward, tensor_cores=True):
    """Warps a fused kernel runs with under `plan`: the plan's, but on tensor cores no more
    than the output tiles of the kernel's smallest product, because Triton gives surplus
    warps copies of the same tiles (AOT: LSTM fp16 H=32 at 8 warps issued twice the MMA
    work, at 16 four times). Forward: the gates [GP*H, B] and the projection [P, B];
    backward: dh [K, B] and the projection's dh_cell [H, B] (kernels/fused.py). Products on
    the FMA units (fp32 without TF32) spread one output element per thread instead, and
    keep the plan's warps."""
    if not tensor_cores:
        return plan.num_warps
    bh, bk = block(hidden), block(width)
    projects = width != hidden
    if backward:
        rows = min(bk, bh) if projects else bk
    else:
        rows = min(padded_gates(cell) * bh, bk) if projects else padded_gates(cell) * bh
    tiles = max(1, rows // MMA_TILE_ROWS) * max(1, plan.block_b // MMA_TILE_COLS)
    warps = plan.num_warps
    while warps > tiles:
        warps //= 2
    return warps


def padded_gates(cell):
    """GP: gates a split-regime program holds rows for (GRU's 3 padded to 4; RNN 1)."""
    return 4 if GATES[cell] > 1 else 1


def candidates(cell, hidden, width, dtype, include_pruned=False):
    """Every Plan the library may select for this recurrence, conservative first: the fused
    regime's plans when all of W_hh fits on chip, then the split regime's. Leaves out the
    pruned ones (kernels/pruned_configs.json: those the compile report found failing to
    compile, spilling or over shared memory) unless `include_pruned`."""
    return list(_candidates(cell, hidden, width, dtype, include_pruned,
                            math_dtype_name(dtype)))


@functools.lru_cache(maxsize=None)
def _candidates(cell, hidden, width, dtype, include_pruned, math_name):
    # Cached: the tuning-table lookup checks its entry against these on every launch.
    from .pruning import is_pruned
    plans = []
    if fits_on_chip(cell, hidden, width, dtype):
        plans += [Plan(False, bb, block(hidden), block(width), warps, 1)
                  for bb, warps in FUSED_SPACE]
    plans += [Plan(True, BLOCK_B, min(rows // padded_gates(cell), block(hidden)),
                   min(kc, block(width)), warps, stages)
              for rows, warps, stages, kc in SPLIT_SPACE]
    unique = tuple(dict.fromkeys(plans))
    if include_pruned:
        return unique
    return tuple(p for p in unique if not is_pruned(cell, width != hidden, math_name, p))


# -- how a split-regime launch is laid out on a device --------------------------------------

# Opt-in shared memory per block (bytes) by compute capability major, for devices whose
# properties do not say (torch's own figures for H100 and A100).
SHARED_PER_BLOCK = {9: 232448, 8: 166912}
NOMINAL_SMS = 132  # an H100/H200, for the layout the compile report assumes
# Shared memory a split program needs besides its resident chunks and their staged state
# (gate split, layout conversions, the flags poll): a margin; the compile report checks the
# real figure (LSTM fp16: 16 KiB on sm_80, none beyond the staging on sm_90).
SHARED_RESERVE = 32 * 1024
WGMMA_MAJOR = 9  # compute capability from which the products run on wgmma
# Polls of the group's flags before a waiting program gives up (a few seconds on a GPU).
SPIN_LIMIT = 1 << 22


def slices_p2(n_slices):
    """The split kernels' SLICES_P2: the flags a wait reads, `n_slices` rounded up to a
    power of two."""
    return 1 << (n_slices - 1).bit_length()


@dataclass(frozen=True)
class SplitLayout:
    """What a split-regime launch runs with: its plan, programs per group, hidden slices,
    whether programs walk several slices (MULTI), how many [rows, block_k] chunks of W_hh
    (res_chunks) and of W_hr (res_proj) each program keeps on chip, and the pipeline stages
    of the loop that streams the rest (stream_stages_options): the forward kernel's, and
    the backward's where they differ (backward_form: those three; clean_resident)."""
    plan: Plan
    progs: int
    n_slices: int
    res_chunks: int
    res_proj: int
    stream_stages: int = 1
    backward_form: tuple = None

    @property
    def multi(self):
        return self.progs < self.n_slices

    @property
    def slices_p2(self):
        return slices_p2(self.n_slices)

    def forms(self):
        """(forward, backward): (res_chunks, res_proj, stream_stages) of each kernel."""
        forward = (self.res_chunks, self.res_proj, self.stream_stages)
        return forward, self.backward_form or forward

    @staticmethod
    def of(plan, progs, n_slices, forward, backward):
        """The layout whose kernels hold the forms `forward` and `backward`."""
        return SplitLayout(plan, progs, n_slices, *forward,
                           backward_form=None if backward == forward else backward)

    def streams(self, hidden, width):
        """(W_hh, W_hr): whether the forward streams any of a first slice's columns each
        step."""
        return self.kernel_resident(hidden, width, False)[2:4]

    def kernel_resident(self, hidden, width, backward):
        """The resident constexprs (pruning.RESIDENT_CONSTEXPRS: RES_CHUNKS, RES_PROJ,
        STREAM_W, STREAM_WR, STREAM_STAGES) the forward or backward split kernel runs
        with. The backward multiplies W_hr^T, whose rows are `width` long, not `hidden`:
        chunks past them would hold zeros in registers and load zero state (LSTM_PROJ fp16
        H=768 spilled 984 B with them; sm_90, triton 3.9)."""
        res, res_proj, stages = self.forms()[backward]
        chunk = self.plan.block_k
        proj_rows = hidden  # the length of W_hr's rows the kernel multiplies
        if backward and width != hidden:
            res_proj = min(res_proj, -(-width // chunk))
            proj_rows = width
        return (res, res_proj, res * chunk < width,
                width != hidden and res_proj * chunk < proj_rows, stages)


def resident_chunks(cell, plan, hidden, width, dtype, shared_limit, wgmma=True):
    """(W_hh chunks, W_hr chunks) a program of `plan` keeps on chip within shared_limit
    bytes: W_hh's first, as many as fit (at most 4 each, the kernel's resident tiles). With
    `wgmma` (sm_90) each product also stages its state chunk in shared memory (wgmma reads
    both operands there); mma.sync (sm_80) takes the state from registers. fp32 without
    TF32 keeps none: its products run on the FMA units, which hold both operands in
    registers, so a resident W would live in registers (it spilled 0.5-17 KiB at every
    size compiled); it is streamed in narrow chunks instead."""
    if math_dtype_name(dtype) == "fp32":
        return 0, 0
    item = dtype.itemsize
    rows = padded_gates(cell) * plan.block_h
    chunk = plan.block_k
    staging = chunk * plan.block_b * item if wgmma else 0
    budget = shared_limit - SHARED_RESERVE
    res = min(4, -(-width // chunk))
    while res > 0 and res * (rows * chunk * item + staging) > budget:
        res -= 1
    budget -= res * (rows * chunk * item + staging)
    res_proj = 0
    if width != hidden:
        res_proj = min(4, -(-max(hidden, width) // chunk))
        while res_proj > 0 and res_proj * (plan.block_h * chunk * item + staging) > budget:
            res_proj -= 1
    return res, res_proj


def stream_stages_options(dtype):
    """Pipeline stages the loop over a program's streamed chunks may run with, preferred
    first. Two for tensor-core products (16-bit, TF32): the next chunk's W is copied to
    shared memory (cp.async, no registers) while this one multiplies, so the chunks' loads
    overlap instead of each costing a round trip (AOT compile, sm_90: LSTM fp16 H=2048 18 ->
    3 round trips a step and 80 -> 0 spill bytes; TF32 LSTM H=768 keeping one chunk, 10 -> 2
    and clean). TF32 falls back to one stage where two spill (clean_resident). fp32 on the
    FMA units and fp64 take one: two made the fp32 forwards spill 16-72 B."""
    math = math_dtype_name(dtype)
    return {"fp16": (2,), "bf16": (2,), "tf32": (2, 1)}.get(math, (1,))


def clean_resident(cell, plan, hidden, width, dtype, res, res_proj, major):
    """(W_hh chunks, W_hr chunks, stream stages) the forward kernel and the backward kernel
    each keep on chip and stream the rest with: of the forms holding at most `res` and
    `res_proj` chunks (what shared memory allows), the one keeping the most bytes resident
    (then the most stages) that the compile report did not prune for that kernel on devices
    of compute capability `major` (kernels/pruning.py, "resident" entries: a form that
    spilled where the same plan with fewer chunks on chip, streaming the rest each step,
    compiles clean). When every form is pruned, (res, res_proj) with the preferred stages:
    the report shows the failure."""
    from .pruning import is_resident_form_pruned
    proj = width != hidden
    flags = slices_p2(-(-hidden // plan.block_h))  # what this size's waits read
    math = math_dtype_name(dtype)
    rows = padded_gates(cell) * plan.block_h
    options = stream_stages_options(dtype)
    by_bytes = sorted(((r, rp) for r in range(res, -1, -1) for rp in range(res_proj, -1, -1)),
                      key=lambda f: (f[0] * rows + f[1] * plan.block_h, f[0]), reverse=True)

    def first_clean(kernel, backward):
        for r, rp in by_bytes:
            for stages in options:
                resident = SplitLayout(plan, 1, 1, r, rp, stages).kernel_resident(
                    hidden, width, backward)
                if not is_resident_form_pruned(cell, proj, math, plan, major, kernel,
                                               resident, flags):
                    return r, rp, stages
                if not any(resident[2:4]):  # nothing streams: the stages change nothing
                    break
        return res, res_proj, options[0]
    return first_clean("split_forward", False), first_clean("split_backward", True)


def device_limits(device):
    """(SMs, shared memory per block, compute capability major) of a CUDA device; None for
    other devices."""
    if device is None or device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    shared = getattr(props, "shared_memory_per_block_optin", 0) or \
        SHARED_PER_BLOCK.get(props.major, 99 * 1024)
    return props.multi_processor_count, shared, props.major


def split_layout(plan, cell, hidden, width, dtype, limits=None):
    """The layout of a split launch of `plan` on a device with `limits` = (SMs, shared memory
    per block, compute capability major), None for the interpreter (planned as an H100). A
    group's programs wait for each other, so all must run at once: one program per slice
    when the device has as many SMs, else one per SM walking several slices with the
    widest-slice plan clean in that form. The interpreter runs programs one after another,
    so there one program walks all of a group's slices (unless a test forces more, each then
    in its own thread)."""
    n_slices = -(-hidden // plan.block_h)
    forced = _forced_split if plan.split else None
    if limits is None:
        progs = forced.programs if forced is not None and forced.programs else 1
        shared, major = SHARED_PER_BLOCK[9], 9
    else:
        sms, shared, major = limits
        if n_slices > sms:
            plan = multi_slice_plan(cell, hidden, width, dtype)
            n_slices = -(-hidden // plan.block_h)
        progs = min(n_slices, sms)
    layout = resident_layout(plan, cell, hidden, width, dtype, min(progs, n_slices), shared,
                             major)
    if forced is not None and forced.resident_chunks is not None:
        cap = forced.resident_chunks
        layout = SplitLayout.of(plan, layout.progs, n_slices, *(
            (min(r, cap), min(rp, cap), stages) for r, rp, stages in layout.forms()))
    return layout


def resident_layout(plan, cell, hidden, width, dtype, progs, shared, major):
    """The SplitLayout of `plan` with `progs` programs a group on a device with `shared`
    bytes of shared memory a block and compute capability `major`: what shared memory
    holds (resident_chunks), lowered in the main forms past the pruned resident forms
    (clean_resident); the multi-slice forms are pruned per plan and stream in the surest
    stages. The launcher's (split_layout) and the compile report's (compile_specs) one
    source."""
    n_slices = -(-hidden // plan.block_h)
    res, res_proj = resident_chunks(cell, plan, hidden, width, dtype, shared,
                                    wgmma=major >= WGMMA_MAJOR)
    forward = backward = (res, res_proj, stream_stages_options(dtype)[-1])
    if progs >= n_slices:
        forward, backward = clean_resident(cell, plan, hidden, width, dtype, res, res_proj,
                                           major)
    return SplitLayout.of(plan, progs, n_slices, forward, backward)


WIDE_BLOCK_B = 32  # a split program's batch tile where 16 rows would run in extra waves


def wide_batch_layout(plan, cell, hidden, width, dtype, limits=None):
    """The layout of the 32-row version of a split plan of 16 batch rows on a device with
    `limits` (an H100 where None), or None where it may not run: 16-bit products only (their
    MMA takes N = 32 whole), all of W_hh (and W_hr) resident (streamed chunks beside a 32-row
    tile spilled 0.03-0.6 KiB at H = 2048), and not pruned. The compile report of the
    shipped plans compiles its plan beside the default plan."""
    from .pruning import is_pruned
    math = math_dtype_name(dtype)
    if not plan.split or plan.block_b != BLOCK_B or math not in ("fp16", "bf16"):
        return None
    wide = replace(plan, block_b=WIDE_BLOCK_B)
    layout = split_layout(wide, cell, hidden, width, dtype,
                          limits or (NOMINAL_SMS, SHARED_PER_BLOCK[9], 9))
    if layout.plan != wide or layout.multi or any(
            any(layout.kernel_resident(hidden, width, backward)[2:4])
            for backward in (False, True)):
        return None
    return None if is_pruned(cell, width != hidden, math, wide) else layout


def batch_tiled_layout(layout, cell, hidden, width, dtype, batch, directions, limits):
    """`layout` (a default split plan's, 16 batch rows a program) with 32 rows a program
    instead where that runs the launch in fewer waves: a group's programs must all be
    resident, so groups beyond what the SMs hold wait for a second wave, which doubles the
    time (measured on an H200: LSTM fp16 B=64 T=512 took 1.9-2.0 ms at H=512, 4 groups of 32
    programs, and 3.9 ms at H=768, 4 groups of 48). A 32-row tile halves the groups at the
    cost of twice the h a program loads and multiplies a step. On a GPU, where
    wide_batch_layout allows it."""
    if limits is None or batch is None or batch <= BLOCK_B or layout.multi:
        return layout
    wide = wide_batch_layout(layout.plan, cell, hidden, width, dtype, limits)
    if wide is None:
        return layout

    def waves(lay):
        groups = -(-batch // lay.plan.block_b) * directions
        return -(-groups // max(1, limits[0] // lay.progs))
    return wide if waves(wide) < waves(layout) else layout


# -- the decision ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Launch:
    """What a recurrence launches: its plan and, in the split regime, its layout."""
    plan: Plan
    layout: SplitLayout = None  # None: the fused regime


def launch(cell, hidden, width, dtype, batch=None, device=None, directions=1):
    """The one decision of how a recurrence of `cell` (kernel code) with `hidden` units and h
    of `width` runs for `batch` rows and `directions` on `device`: a plan forced by a test or
    the tuner, else the tuning table's entry for this GPU and batch size
    (tritonrnn/tuning.py), else the default plan; then, in the split regime, its layout on
    this device (SM count and shared memory; the interpreter's one program per group), which
    may replace the plan by the multi-slice one, and a default plan's by its 32-row batch
    tile (batch_tiled_layout). The launchers, the tuner, the compile report and the tests
    ask this."""
    default = False
    if _forced_plan is not None:
        chosen = _forced_plan
    elif _forced_split is not None:
        chosen = Plan(True, _forced_split.batch_block,
                      min(_forced_split.hidden_block, block(hidden)),
                      min(_forced_split.reduction_chunk, block(width)), 4)
    else:
        chosen = _tuned(cell, hidden, width, dtype, batch, device)
        if chosen is None:
            chosen, default = default_plan(cell, hidden, width, dtype), True
    if not chosen.split:
        return Launch(chosen)
    limits = device_limits(device)
    layout = split_layout(chosen, cell, hidden, width, dtype, limits)
    if default:
        layout = batch_tiled_layout(layout, cell, hidden, width, dtype, batch, directions,
                                    limits)
    return Launch(layout.plan, layout)


def _tuned(cell, hidden, width, dtype, batch, device):
    """The tuning table's plan, or None (no batch size given, not a GPU, no entry)."""
    if batch is None or device is None or device.type != "cuda":
        return None
    from .. import tuning  # the table lives with the library (its JSON ships there)
    return tuning.tuned_plan(cell, hidden, width, dtype, batch, device)
