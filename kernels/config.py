"""Which regime and block sizes a recurrence runs with.

Two regimes:
- fused: one program per (batch tile, direction) holds all of W_hh (and W_hr) on chip for the
  whole sequence (kernels/fused.py).
- split: the hidden dimension is divided into slices across programs that exchange h through
  global memory every step (kernels/split.py), in one persistent launch with a barrier per
  phase among the programs of a batch tile.
"""
import contextlib
import functools
import os
from dataclasses import dataclass

import torch

from .cells import GATES

# Triton reads TRITON_INTERPRET when each kernel is defined, so this is fixed at import.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

# Bytes of recurrent weights one program may try to keep on chip: the fused regime's plans
# are candidates up to this size. Shared memory fits it (H100 227 KiB, A100 163 KiB per
# block), but Triton keeps the loop-invariant W_hh in registers, which spill above about
# 64 KiB; the compile report prunes those plans (pruned_configs.json), so e.g. fp16 LSTM
# runs fused up to H = 64 and split above.
ONCHIP_WEIGHT_BYTES = 128 * 1024
BLOCK_B = 16      # batch rows per program; tl.dot needs every dimension >= 16
SPLIT_BLOCK_KC = 64  # reduction chunk of force_split plans (tests)

_forced_split_block = None


@contextlib.contextmanager
def force_split(hidden_block):
    """Run every recurrence in the split regime with `hidden_block` hidden units per program
    (power of two >= 16); lets tests drive the multi-program path at small sizes."""
    global _forced_split_block
    assert hidden_block >= 16 and hidden_block & (hidden_block - 1) == 0
    saved, _forced_split_block = _forced_split_block, hidden_block
    try:
        yield
    finally:
        _forced_split_block = saved


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


def math_dtype_name(dtype):
    """Name of the matmul arithmetic a recurrence on `dtype` tensors uses: fp32 tensors run
    TF32 matmuls when torch.backends.cudnn.allow_tf32 is set (torch's default for its
    recurrent layers), which compiles to different kernels."""
    if dtype == torch.float32:
        return "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"
    return {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64"}[dtype]


@contextlib.contextmanager
def tf32_for(name):
    """Within: fp32 tensors use the arithmetic `name` says ("tf32" on, "fp32" off); other
    names leave the switch alone."""
    saved = torch.backends.cudnn.allow_tf32
    if name in ("fp32", "tf32"):
        torch.backends.cudnn.allow_tf32 = name == "tf32"
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


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


# A tuning table (tritonrnn/tuning.py) registers itself here, so kernels/ never imports the
# layer above it. Called as source(cell, hidden, width, dtype, batch, device) -> Plan | None.
_plan_source = None
_forced_plan = None


def set_plan_source(source):
    global _plan_source
    _plan_source = source


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
    """Regime and tiles for a recurrence with `hidden` units and h of `width` (K): a forced
    plan, else the tuning table's choice for this batch size and device, else the default."""
    if _forced_plan is not None:
        return _forced_plan
    if _forced_split_block is not None:
        return Plan(True, BLOCK_B, min(_forced_split_block, block(hidden)),
                    min(SPLIT_BLOCK_KC, block(width)), 4)
    if _plan_source is not None and batch is not None:
        chosen = _plan_source(cell, hidden, width, dtype, batch, device)
        if chosen is not None:
            return chosen
    return default_plan(cell, hidden, width, dtype)


def multi_slice_plan(cell, hidden, width, dtype):
    """The split plan for a GPU with fewer SMs than the chosen plan has hidden slices: of the
    candidates that also compile clean in the multi-slice forms, the one with the widest
    slices (so the fewest per program; the first such in candidate order)."""
    return _multi_slice_plan(cell, hidden, width, dtype, math_dtype_name(dtype))


@functools.lru_cache(maxsize=None)
def _multi_slice_plan(cell, hidden, width, dtype, math_name):
    from .pruning import is_pruned
    clean = [p for p in candidates(cell, hidden, width, dtype)
             if p.split and not is_pruned(cell, width != hidden, math_name, p, multi_slice=True)]
    if not clean:
        raise RuntimeError(f"no multi-slice launch configuration fits cell {cell}, hidden "
                           f"{hidden}, width {width}, {dtype}: every candidate is pruned")
    return max(clean, key=lambda p: p.block_h)


# -- the launch configurations the library can select --------------------------------------

_TORCH_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
                 "bf16": torch.bfloat16, "fp64": torch.float64}


def torch_dtype(name):
    """torch dtype of a report/tuning dtype name ("tf32" is fp32 tensors, TF32 matmuls)."""
    return _TORCH_DTYPES[name]


def fits_on_chip(cell, hidden, width, dtype):
    """Whether one program can hold all of W_hh (and W_hr): the fused regime."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    bh, bk = block(hidden), block(width)
    weight_bytes = (GATES[cell] * bh * bk + (bh * bk if width != hidden else 0)) * itemsize
    return weight_bytes <= ONCHIP_WEIGHT_BYTES


# The search space, kept small on purpose: every candidate is compiled by the compile report
# for sm_80 and sm_90 (minutes each) and timed by the tuner. Listed conservative first: the
# default plan is the first one the compile report did not prune.
# Fused: (batch tile, warps); all of W_hh is on chip, so the H and K tiles are fixed. Batch
# tile 32 with 4 warps is left out: it spilled for every cell and dtype at H >= 64.
FUSED_SPACE = ((16, 8), (16, 4), (16, 16), (32, 8))
# Split: (hidden slice, warps, pipeline stages, reduction chunk) with batch tile 16. Batch
# tile 32 and 3 stages spilled in most split configurations when tried; fp32 (no tensor
# cores: FMA dots hold whole operand rows per thread) needs the narrower chunk or more warps;
# the 16-wide chunks are the last resort of fp32 LSTM with projection on sm_80.
SPLIT_SPACE = ((32, 8, 1, 64), (16, 8, 1, 64), (64, 8, 1, 64), (32, 4, 1, 64), (16, 4, 1, 64),
               (32, 8, 2, 64), (16, 8, 1, 32), (32, 8, 1, 32), (16, 4, 1, 32), (32, 8, 2, 32),
               (16, 16, 1, 64), (32, 16, 1, 32), (16, 8, 1, 16), (16, 16, 1, 16))


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
    plans += [Plan(True, BLOCK_B, min(bn, block(hidden)), min(kc, block(width)), warps, stages)
              for bn, warps, stages, kc in SPLIT_SPACE]
    unique = tuple(dict.fromkeys(plans))
    if include_pruned:
        return unique
    return tuple(p for p in unique if not is_pruned(cell, width != hidden, math_name, p))
