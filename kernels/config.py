"""Which regime and block sizes a recurrence runs with.

Two regimes:
- fused: one program per (batch tile, direction) holds all of W_hh (and W_hr) on chip for the
  whole sequence (kernels/fused.py).
- split: the hidden dimension is divided across programs that exchange h through global
  memory every step (kernels/split.py), either in one persistent launch with a grid-wide
  barrier (GPU, all programs resident) or, where programs cannot wait on each other (the
  interpreter runs them one after another), one launch per step and phase.
"""
import contextlib
import os
from dataclasses import dataclass

import torch

from .cells import GATES

# Triton reads TRITON_INTERPRET when each kernel is defined, so this is fixed at import.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

# Bytes of recurrent weights one program may keep on chip. Triton stages the dot operands
# through shared memory: 128 KiB of weights plus the h tiles stays inside H100's 227 KiB
# per-block limit (A100: 163 KiB) -- H <= 128 in fp16/bf16 LSTM, H <= 64 in fp32.
ONCHIP_WEIGHT_BYTES = 128 * 1024
BLOCK_B = 16      # batch rows per program; tl.dot needs every dimension >= 16
SPLIT_BLOCK_N = 64  # hidden units per program in the split regime
SPLIT_BLOCK_KC = 64  # reduction chunk of the split regime's matmuls

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
    split: bool
    block_b: int
    block_h: int      # fused: all of H; split: hidden units per program
    block_k: int      # fused: all of K; split: reduction chunk
    num_warps: int


def plan(cell, hidden, width, dtype):
    """Regime and tiles for a recurrence with `hidden` units and h of `width` (K)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    bh, bk = block(hidden), block(width)
    weight_bytes = (GATES[cell] * bh * bk + (bh * bk if width != hidden else 0)) * itemsize
    if _forced_split_block is None and weight_bytes <= ONCHIP_WEIGHT_BYTES:
        return Plan(False, BLOCK_B, bh, bk, 4 if bh * bk <= 64 * 64 else 8)
    bn = _forced_split_block or SPLIT_BLOCK_N
    return Plan(True, BLOCK_B, min(bn, bh), min(SPLIT_BLOCK_KC, bk), 4)
