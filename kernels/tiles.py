"""Tiles both regimes' kernels are built from, in the [units, batch] orientation.

A program's products are taken transposed, acc^T [rows of W, batch] = W_rows @ h^T, so the
rows of W (gate-major: every gate's rows of the program's units) are the MMA's tall side and
the batch rides in its narrow side: on sm_90 a loop-invariant W operand is read by wgmma
straight from shared memory, and no two warps share an output tile while the rows outnumber
them. Every elementwise tile of a step (input projections, gates, c, h, what training saves)
is [units, batch]; `col` / `seq_col` are [1, BLOCK_B] rows of (t, b, d) in [T, B, D, *] and
(d, t, b) in [D, T, B, *] buffers.

Legend as in fused.py.
"""
import triton
import triton.language as tl

from .cells import CELL_GRU, CELL_LSTM


@triton.jit
def load_units(ptr, offs, mask):
    return tl.load(ptr + offs, mask=mask, other=0.0)


@triton.jit
def gate_rows(n0, H, G: tl.constexpr, GP: tl.constexpr, BLOCK_N: tl.constexpr):
    """Rows of W_hh [G*H, K] owned by the slice of units n0 + [0, BLOCK_N): [GP*BLOCK_N]
    int64 row indices, gate-major, and whether each row exists (padding gates, n >= H)."""
    r = tl.arange(0, GP * BLOCK_N)
    g = r // BLOCK_N
    n = n0 + r % BLOCK_N
    return g.to(tl.int64) * H + n, (g < G) & (n < H)


@triton.jit
def load_w_chunk(w_ptr, rows, rows_ok, row_stride, col_stride, kk, L):
    """[len(rows), len(kk)] tile: element [i, j] = w_ptr[rows[i] * row_stride + kk[j] *
    col_stride], zero outside the rows that exist and columns < L."""
    ptrs = w_ptr + rows[:, None] * row_stride + kk[None, :].to(tl.int64) * col_stride
    return tl.load(ptrs, mask=rows_ok[:, None] & (kk[None, :] < L), other=0.0)


@triton.jit
def dot_acc(a, b, acc, DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    # out_dtype named: triton 3.6 requires it to equal the accumulator's (fp64 for fp64)
    return tl.dot(a.to(DOT_DTYPE), b.to(DOT_DTYPE), acc, input_precision=PRECISION,
                  out_dtype=acc.dtype)


@triton.jit
def split_last4(x):
    """[..., 4] -> its four [...] slices."""
    even, odd = tl.split(tl.reshape(x, x.shape[:-1] + [2, 2]))  # [..., i, j] is 2i + j
    x0, x2 = tl.split(even)
    x1, x3 = tl.split(odd)
    return x0, x1, x2, x3


@triton.jit
def split_gates(acc, GP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr):
    """[GP*BLOCK_N, BLOCK_B] gate-major rows -> four [BLOCK_N, BLOCK_B] (GP = 1: the one)."""
    if GP == 4:
        x = tl.permute(tl.reshape(acc, [4, BLOCK_N, BLOCK_B]), [1, 2, 0])
        x = tl.reshape(x, [BLOCK_N, BLOCK_B, 2, 2])  # [..., i, j] is gate 2i + j
        even_j, odd_j = tl.split(x)
        g0, g2 = tl.split(even_j)
        g1, g3 = tl.split(odd_j)
        return g0, g1, g2, g3
    else:
        return acc, acc, acc, acc


@triton.jit
def stack_gates(g0, g1, g2, g3, GP: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_B: tl.constexpr):
    """Inverse of split_gates: [GP*BLOCK_N, BLOCK_B] gate-major."""
    if GP == 4 and g0.dtype.primitive_bitwidth == 64:
        # Triton 3.6 gives the joined tile's dot operand kWidth 2, which its fp64 MMA
        # lowering rejects (assertion "fp64 don't support largeK MMA"); a one-hot sum over
        # a broadcast gate axis builds the same tile with no join.
        gate = tl.arange(0, 4)[:, None, None]
        x = tl.where(gate == 0, g0[None, :, :], 0.0) + tl.where(gate == 1, g1[None, :, :], 0.0)
        x += tl.where(gate == 2, g2[None, :, :], 0.0) + tl.where(gate == 3, g3[None, :, :], 0.0)
        return tl.reshape(x, [4 * BLOCK_N, BLOCK_B])
    elif GP == 4:
        x = tl.join(tl.join(g0, g2), tl.join(g1, g3))  # [..., i, j] is gate 2i + j
        x = tl.permute(tl.reshape(x, [BLOCK_N, BLOCK_B, 4]), [2, 0, 1])
        return tl.reshape(x, [4 * BLOCK_N, BLOCK_B])
    else:
        return g0


@triton.jit
def load_previous(seq_ptr, seq_offs, first_ptr, first_offs, mask, prev_ok,
                  HAS_FIRST: tl.constexpr):
    """A state before the step: seq_ptr's (the previous step's) where prev_ok, else the initial
    state at first_ptr (zero without one): one load, so that it goes out with the step's
    others instead of a second load and a select waiting for both."""
    if HAS_FIRST:
        return tl.load(tl.where(prev_ok, seq_ptr + seq_offs, first_ptr + first_offs),
                       mask=mask, other=0.0)
    return tl.load(seq_ptr + seq_offs, mask=mask & prev_ok, other=0.0)


@triton.jit
def load_input_projection(xp_ptr, n0, col, mask_b, H, G: tl.constexpr,
                          BLOCK_N: tl.constexpr, ACC_DTYPE: tl.constexpr):
    """The step's input projections x0..x3 [BLOCK_N, BLOCK_B] of units n0 + [0, BLOCK_N)."""
    offs_n = n0 + tl.arange(0, BLOCK_N)
    mask = (offs_n[:, None] < H) & mask_b[None, :]
    xp_offs = col * G * H + offs_n[:, None]
    x0 = load_units(xp_ptr, xp_offs, mask).to(ACC_DTYPE)
    x1 = x0
    x2 = x0
    x3 = x0
    if G > 1:
        x1 = load_units(xp_ptr, xp_offs + H, mask).to(ACC_DTYPE)
        x2 = load_units(xp_ptr, xp_offs + 2 * H, mask).to(ACC_DTYPE)
    if G > 3:
        x3 = load_units(xp_ptr, xp_offs + 3 * H, mask).to(ACC_DTYPE)
    return x0, x1, x2, x3


@triton.jit
def store_activations(act_ptr, cs_ptr, act_offs, cs_offs, mask, a0, a1, a2, a3, c_new,
                      CELL: tl.constexpr, S: tl.constexpr, H):
    """What training saves of one step: the S activations into act [D, T, B, S, H] and (LSTM)
    c into cs [D, T, B, H]. act_offs / cs_offs: element offsets of the tile's first
    activation in act and of its c in cs (any tile orientation)."""
    ty = act_ptr.dtype.element_ty
    if S > 0:
        tl.store(act_ptr + act_offs, a0.to(ty), mask=mask)
    if S > 1:
        tl.store(act_ptr + act_offs + H, a1.to(ty), mask=mask)
        tl.store(act_ptr + act_offs + 2 * H, a2.to(ty), mask=mask)
        tl.store(act_ptr + act_offs + 3 * H, a3.to(ty), mask=mask)
    if CELL == CELL_LSTM:
        tl.store(cs_ptr + cs_offs, c_new.to(cs_ptr.dtype.element_ty), mask=mask)


@triton.jit
def load_activations(act_ptr, y_ptr, act_offs, y_offs, mask, S: tl.constexpr, H,
                     ACC_DTYPE: tl.constexpr):
    """The saved activations a0..a3 of one step, in ACC_DTYPE (offsets as store_activations).
    RNN saves none: its activation h is the step's output, read from y [T, B, D, K] at
    y_offs (K == H)."""
    if S > 0:
        a0 = tl.load(act_ptr + act_offs, mask=mask, other=0.0).to(ACC_DTYPE)
    else:
        a0 = tl.load(y_ptr + y_offs, mask=mask, other=0.0).to(ACC_DTYPE)
    a1 = a0
    a2 = a0
    a3 = a0
    if S > 1:
        a1 = tl.load(act_ptr + act_offs + H, mask=mask, other=0.0).to(ACC_DTYPE)
        a2 = tl.load(act_ptr + act_offs + 2 * H, mask=mask, other=0.0).to(ACC_DTYPE)
        a3 = tl.load(act_ptr + act_offs + 3 * H, mask=mask, other=0.0).to(ACC_DTYPE)
    return a0, a1, a2, a3


@triton.jit
def step_coords(step, T, B, D, d, b64, d64, mask_b, lens, BLOCK_B: tl.constexpr):
    """Where step `step` reads and writes: (batch rows live, valid, prev_ok, col, seq_col,
    prev_col, prev_seq_col); no row is live past the last step."""
    t = (T - 1 - step) + d * (2 * step - T + 1)  # forward direction walks back from T - 1
    tp = t - 1 + 2 * d                          # the step before t in this direction
    t64 = t.to(tl.int64)
    tp64 = tp.to(tl.int64)
    # a scalar-vs-vector bool mask breaks the interpreter: compare as vectors
    live = mask_b & ((tl.zeros([BLOCK_B], tl.int32) + step) < T)
    valid = (live & (t < lens))[None, :]
    tp_b = tl.zeros([BLOCK_B], tl.int32) + tp
    prev_ok = (live & (tp_b >= 0) & (tp_b < lens))[None, :]
    col = ((t64 * B + b64) * D + d64)[None, :]
    seq_col = ((d64 * T + t64) * B + b64)[None, :]
    prev_col = ((tp64 * B + b64) * D + d64)[None, :]
    prev_seq_col = ((d64 * T + tp64) * B + b64)[None, :]
    return live, valid, prev_ok, col, seq_col, prev_col, prev_seq_col


@triton.jit
def load_step_saved(n0, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, col, seq_col, prev_col,
                    prev_seq_col, state_col, mask_b, prev_ok, H, K,
                    CELL: tl.constexpr, S: tl.constexpr, HAS_H0: tl.constexpr,
                    HAS_C0: tl.constexpr, ONE_LOAD: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_B: tl.constexpr, ACC_DTYPE: tl.constexpr):
    """What the forward saved for one step of units n0 + [0, BLOCK_N), as backward_cell
    takes it: (a0, a1, a2, a3, c_t, c_prev, h_prev), zero where a cell has none.

    The activations are four loads in dh's layout, which the cell's arithmetic runs in: one
    [.., 4] load and a split moved them through shared memory, behind a barrier that held
    the step's other loads back a round trip. ONE_LOAD (the projection, whose arithmetic
    runs in the layout of the projection's product, so every load is converted anyway)
    keeps the one load: one conversion instead of four, each a round trip of its own."""
    offs_n = n0 + tl.arange(0, BLOCK_N)
    mask = (offs_n[:, None] < H) & mask_b[None, :]
    ONE: tl.constexpr = ONE_LOAD and S == 4
    if ONE:
        act_offs = seq_col * S * H + offs_n[:, None]
        a = tl.load(act_ptr + act_offs[:, :, None] + (tl.arange(0, 4) * H)[None, None, :],
                    mask=mask[:, :, None], other=0.0).to(ACC_DTYPE)
    else:
        a0, a1, a2, a3 = load_activations(act_ptr, y_ptr, seq_col * S * H + offs_n[:, None],
                                          col * K + offs_n[:, None], mask, S, H, ACC_DTYPE)
    # the states' loads go out before the one load's split, whose barrier would hold them back
    c_t, c_prev, h_prev = load_saved_states(
        n0, cs_ptr, y_ptr, h0_ptr, c0_ptr, seq_col, prev_col, prev_seq_col, state_col, mask,
        prev_ok, H, K, CELL, HAS_H0, HAS_C0, BLOCK_N, BLOCK_B, ACC_DTYPE)
    if ONE:
        a0, a1, a2, a3 = split_last4(a)
    return a0, a1, a2, a3, c_t, c_prev, h_prev


@triton.jit
def load_saved_states(n0, cs_ptr, y_ptr, h0_ptr, c0_ptr, seq_col, prev_col, prev_seq_col,
                      state_col, mask, prev_ok, H, K, CELL: tl.constexpr, HAS_H0: tl.constexpr,
                      HAS_C0: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr,
                      DTYPE: tl.constexpr):
    """The states one backward step reads for units n0 + [0, BLOCK_N), in DTYPE: c_t and
    c_prev (LSTM), h_prev (GRU), zero where a cell has none; the previous step's state where
    prev_ok, else the initial one (zero without it)."""
    offs_n = n0 + tl.arange(0, BLOCK_N)
    c_t = tl.zeros([BLOCK_N, BLOCK_B], DTYPE)
    c_prev = c_t
    h_prev = c_t
    if CELL == CELL_LSTM:
        c_t = load_units(cs_ptr, seq_col * H + offs_n[:, None], mask).to(DTYPE)
        c_prev = load_previous(cs_ptr, prev_seq_col * H + offs_n[:, None], c0_ptr,
                               state_col * H + offs_n[:, None], mask, prev_ok, HAS_C0
                               ).to(DTYPE)
    if CELL == CELL_GRU:
        h_prev = load_previous(y_ptr, prev_col * K + offs_n[:, None], h0_ptr,
                               state_col * K + offs_n[:, None], mask, prev_ok, HAS_H0
                               ).to(DTYPE)
    return c_t, c_prev, h_prev
