"""Cell math as small @triton.jit functions, shared by every recurrence kernel.

All arguments are fp32 (or fp64) tiles of shape [BLOCK_B, BLOCK_H]. Cell codes:
0 RNN tanh, 1 RNN relu, 2 LSTM (gates i, f, g, o), 3 GRU (gates r, z, n). The cell table
(CELLS below: name, code, gates, saved activations, c, projection) is the one description
of a cell that the rest of tritonrnn reads.

Saved activations ("acts", used by backward), per cell:
  RNN: none (its activation is h, which backward reads from the output y);
  LSTM: i, f, g, o (after their nonlinearities);
  GRU: r, z, n, and hn = W_hn h + b_hn (needed for dr).
"""
from dataclasses import dataclass

import triton
import triton.language as tl

RNN_TANH = 0
RNN_RELU = 1
LSTM = 2
GRU = 3
# The same codes as the kernels compare their CELL constexpr with (a jit function reads only
# constexpr globals).
CELL_RNN_TANH = tl.constexpr(RNN_TANH)
CELL_RNN_RELU = tl.constexpr(RNN_RELU)
CELL_LSTM = tl.constexpr(LSTM)
CELL_GRU = tl.constexpr(GRU)


@dataclass(frozen=True)
class Cell:
    """One kind of recurrent cell, as every layer of tritonrnn names it.

    name: torch.nn's mode string ("RNN_TANH", "RNN_RELU", "LSTM", "GRU"), or "LSTM_PROJ" for
    an LSTM with proj_size (the compile report's and the pruned list's name for it);
    code: the kernels' CELL constexpr; gates: G; saved: S, activations training saves per
    step; has_c: carries a cell state c; projects: h = W_hr (o * tanh(c)), K = proj_size."""
    name: str
    code: int
    gates: int
    saved: int
    has_c: bool
    projects: bool = False

    @property
    def mode(self):
        """torch.nn's mode string (a projecting LSTM is an "LSTM" to torch.nn and the kernels)."""
        return "LSTM" if self.projects else self.name


# The cell table: every other description of a cell (the maps below, the layers, the
# reference loop, the tuner, the compile report, the tests) is read from it.
CELLS = (Cell("RNN_TANH", RNN_TANH, gates=1, saved=0, has_c=False),
         Cell("RNN_RELU", RNN_RELU, gates=1, saved=0, has_c=False),
         Cell("LSTM", LSTM, gates=4, saved=4, has_c=True),
         Cell("GRU", GRU, gates=3, saved=4, has_c=False))
_PROJECTING_LSTM = Cell("LSTM_PROJ", LSTM, gates=4, saved=4, has_c=True, projects=True)
_BY_NAME = {c.name: c for c in CELLS + (_PROJECTING_LSTM,)}
_BY_CODE = {c.code: c for c in CELLS}


def lookup(key, proj=False):
    """The Cell of a name ("LSTM", "LSTM_PROJ", ...), kernel code or Cell; with `proj` the
    projecting form of an LSTM."""
    found = key if isinstance(key, Cell) else (_BY_NAME[key] if isinstance(key, str)
                                               else _BY_CODE[key])
    if proj and not found.projects:
        if found.code != LSTM:
            raise ValueError(f"only an LSTM projects, not {found.name}")
        return _PROJECTING_LSTM
    return found


# Views of the table keyed the way the launchers look them up (by name, by code).
CELL_CODES = {c.name: c.code for c in CELLS}
GATES = {c.code: c.gates for c in CELLS}
SAVED = {c.code: c.saved for c in CELLS}


@triton.jit
def sigmoid(x):
    # exp of a non-positive number only: no overflow for large |x|, exact limits at +-inf.
    e = tl.exp(-tl.abs(x))
    return tl.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@triton.jit
def tanh(x):
    # tanh(|x|) = (1 - e) / (1 + e) with e = exp(-2|x|) <= 1: saturates to +-1 instead of NaN.
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x >= 0, t, -t)


@triton.jit
def cell_forward(CELL: tl.constexpr, x0, x1, x2, x3, p0, p1, p2, p3, b_hn, h_prev, c_prev):
    """x*: input projections per gate, p*: recurrent projections W_hh h per gate.

    Returns (h_new, c_new, a0, a1, a2, a3) with a* the activations backward needs.
    """
    if CELL == CELL_LSTM:
        i = sigmoid(x0 + p0)
        f = sigmoid(x1 + p1)
        g = tanh(x2 + p2)
        o = sigmoid(x3 + p3)
        c = f * c_prev + i * g
        h = o * tanh(c)
        return h, c, i, f, g, o
    elif CELL == CELL_GRU:
        r = sigmoid(x0 + p0)
        z = sigmoid(x1 + p1)
        hn = p2 + b_hn
        n = tanh(x2 + r * hn)
        h = (1.0 - z) * n + z * h_prev
        return h, c_prev, r, z, n, hn
    else:
        if CELL == CELL_RNN_TANH:
            h = tanh(x0 + p0)
        else:
            pre = x0 + p0
            h = tl.where(pre < 0.0, 0.0, pre)  # not tl.maximum, which turns NaN into 0
        return h, c_prev, h, h, h, h


@triton.jit
def cell_backward(CELL: tl.constexpr, a0, a1, a2, a3, c, c_prev, h_prev, dh, dc):
    """Gradients through one step of one cell.

    dh: gradient w.r.t. the cell's output (before any projection); dc: carried gradient of c.
    Returns (d0, d1, d2, d3, d_hn, dc_prev, dh_direct):
      d*: gradients of the pre-activations on the input side (x @ W_ih^T + b),
      d_hn: GRU only, gradient of W_hn h + b_hn (the recurrent side of gate n),
      dh_direct: GRU only, the gradient reaching h_prev without the matmul (z * dh).
    """
    zero = dh * 0.0
    if CELL == CELL_LSTM:
        tc = tanh(c)
        dct = dc + dh * a3 * (1.0 - tc * tc)
        d_i = dct * a2 * a0 * (1.0 - a0)
        d_f = dct * c_prev * a1 * (1.0 - a1)
        d_g = dct * a0 * (1.0 - a2 * a2)
        d_o = dh * tc * a3 * (1.0 - a3)
        return d_i, d_f, d_g, d_o, zero, dct * a1, zero
    elif CELL == CELL_GRU:
        d_n = dh * (1.0 - a1) * (1.0 - a2 * a2)
        d_z = dh * (h_prev - a2) * a1 * (1.0 - a1)
        d_r = d_n * a3 * a0 * (1.0 - a0)
        return d_r, d_z, d_n, zero, d_n * a0, dc, dh * a1
    else:
        if CELL == CELL_RNN_TANH:
            d = dh * (1.0 - a0 * a0)
        else:
            # as torch's threshold_backward (NaN passes dh). a0 is moved to dh's layout
            # before the comparison: a boolean tensor moved between layouts through shared
            # memory crashes the compiler (fp32 split backward, triton 3.9).
            a0 = a0 + tl.where(zero == 0.0, zero, 0.0)  # dh * 0, finite
            d = tl.where(a0 <= 0.0, 0.0, dh)
        return d, zero, zero, zero, zero, dc, zero
