"""Persistent recurrence for the regime where one program holds all of W_hh.

Grid: (batch tiles, directions). Each program loads its direction's W_hh (and W_hr) once, as
loop-invariant dot operands that stay in shared memory for the whole sequence, keeps h (and
c) in registers, and loops over all T steps inside the one launch. Per step it reads the
step's input projection and writes h (plus, when training, what backward needs).

The products are taken transposed, as in the split regime (tiles.py): the forward's gates
acc^T [GP*H, B] = W_hh @ h^T with every gate's rows stacked (GRU's three padded to GP = 4 by
zero rows), the projection h^T = W_hr @ h_cell^T; the backward's dh^T = W_hh^T @ dG^T and
dh_cell^T = W_hr^T @ dh^T. W is the MMA's tall side, so on sm_90 wgmma reads it from shared
memory, and the launcher gives the kernel no more warps than its smallest product has output
tiles (config.fused_warps), so no two warps compute the same tile.

What a step reads from global memory does not depend on the recurrence. The forward's
input projection and the backward's saved c and h are loaded a step ahead, so no forward
step waits for global memory, and a backward step waits once, for its activations and dy.

Legend: T time, B batch, H hidden, P projection, K width of h (P if projecting else H),
G gates (LSTM 4, GRU 3, RNN 1), S saved activations per step (see cells.py), D directions.
Tiles are [units, batch]. Offsets are int64: T*B*D*G*H passes 2^31 for long sequences.
"""
import triton
import triton.language as tl

from .cells import CELL_GRU, CELL_LSTM, cell_backward, cell_forward
from .tiles import (dot_acc, gate_rows, load_activations, load_input_projection,
                    load_saved_states, load_units, load_w_chunk, split_gates, stack_gates,
                    step_coords, store_activations)


@triton.jit
def state_tile_t(state_ptr, W, state_col, BLOCK: tl.constexpr):
    """Offsets and mask of a [D, B, W] state buffer's tile [BLOCK, BLOCK_B], transposed."""
    offs = tl.arange(0, BLOCK)[:, None]
    return state_ptr + state_col * W + offs, offs < W


@triton.jit
def unit_tiles(H, K, mask_b, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr):
    """Unit offsets of the H and K tiles, which of them exist ([BLOCK_*, 1]), and the masks
    of the [units, batch] tiles."""
    offs_h = tl.arange(0, BLOCK_H)
    offs_k = tl.arange(0, BLOCK_K)
    units_h = (offs_h < H)[:, None]
    units_k = (offs_k < K)[:, None]
    return offs_h, offs_k, units_h, units_k, units_h & mask_b[None, :], units_k & mask_b[None, :]


@triton.jit
def load_weights(whh_ptr, whr_ptr, d64, H, K, G: tl.constexpr, GP: tl.constexpr,
                 PROJ: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
                 DOT_DTYPE: tl.constexpr):
    """Direction d's W_hh rows of every gate [GP*BLOCK_H, BLOCK_K] (zero rows pad GRU's gates
    and H) and W_hr as stored [BLOCK_K, BLOCK_H] (W_hh again without a projection): loaded
    once per launch, loop-invariant dot operands that stay in shared memory."""
    offs_h = tl.arange(0, BLOCK_H)
    offs_k = tl.arange(0, BLOCK_K)
    rows, rows_ok = gate_rows(0, H, G, GP, BLOCK_H)
    w = load_w_chunk(whh_ptr + d64 * G * H * K, rows, rows_ok, K, 1, offs_k, K).to(DOT_DTYPE)
    wr = w
    if PROJ:
        wr = load_w_chunk(whr_ptr + d64 * K * H, offs_k.to(tl.int64), offs_k < K, H, 1, offs_h,
                          H).to(DOT_DTYPE)
    return w, wr


@triton.jit
def forward_col(s, T, B, D, d, b64, d64):
    """(t, [1, BLOCK_B] row of (t, b, d) in [T, B, D, *]) of forward step s: t = s, or
    T - 1 - s in the reverse direction."""
    t = s + d * (T - 1 - 2 * s)
    return t, ((t.to(tl.int64) * B + b64) * D + d64)[None, :]


@triton.jit(do_not_specialize=["T", "B"])
def fused_forward_kernel(
    xp_ptr,    # [T, B, D, G, H] input projections, all biases folded in except GRU's b_hn
    whh_ptr,   # [D, G, H, K]
    bhn_ptr,   # [D, H] GRU's b_hn
    whr_ptr,   # [D, P, H] projection weights
    h0_ptr,    # [D, B, K]
    c0_ptr,    # [D, B, H]
    len_ptr,   # [B] int32 valid lengths
    y_ptr,     # [T, B, D, K] output (zero past each length)
    hn_ptr,    # [D, B, K] final h
    cn_ptr,    # [D, B, H] final c
    act_ptr,   # [D, T, B, S, H] saved activations (training)
    cs_ptr,    # [D, T, B, H] saved c (training, LSTM)
    T, B, H, K, D,
    CELL: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, S: tl.constexpr,
    HAS_H0: tl.constexpr, HAS_C0: tl.constexpr, HAS_BHN: tl.constexpr,
    PROJ: tl.constexpr, VARLEN: tl.constexpr, TRAINING: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_b = tl.program_id(0)
    d = tl.program_id(1)
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    d64 = d.to(tl.int64)
    state_col = (d64 * B + b64)[None, :]  # [1, BLOCK_B] row of (d, b) in [D, B, *] buffers
    offs_h, offs_k, units_h, units_k, mask_h, mask_k = unit_tiles(H, K, mask_b, BLOCK_H,
                                                                  BLOCK_K)
    w, wr = load_weights(whh_ptr, whr_ptr, d64, H, K, G, GP, PROJ, BLOCK_H, BLOCK_K, DOT_DTYPE)
    b_hn = tl.zeros([BLOCK_H, BLOCK_B], ACC_DTYPE)
    if HAS_BHN:
        b_hn += tl.load(bhn_ptr + d64 * H + offs_h, mask=offs_h < H,
                        other=0.0).to(ACC_DTYPE)[:, None]

    h_ptrs, h_units = state_tile_t(h0_ptr, K, state_col, BLOCK_K)
    c_ptrs, c_units = state_tile_t(c0_ptr, H, state_col, BLOCK_H)
    h = tl.zeros([BLOCK_K, BLOCK_B], ACC_DTYPE)
    c = tl.zeros([BLOCK_H, BLOCK_B], ACC_DTYPE)
    if HAS_H0:
        h += load_units(h_ptrs, 0, h_units & mask_b[None, :]).to(ACC_DTYPE)
    if HAS_C0:
        c += load_units(c_ptrs, 0, c_units & mask_b[None, :]).to(ACC_DTYPE)
    lens = tl.zeros([BLOCK_B], tl.int32) + T
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)

    _, col = forward_col(0, T, B, D, d, b64, d64)  # T >= 1: the layers refuse empty sequences
    XP_DTYPE: tl.constexpr = xp_ptr.dtype.element_ty  # carried across a step as stored
    x0, x1, x2, x3 = load_input_projection(xp_ptr, 0, col, mask_b, H, G, BLOCK_H, XP_DTYPE)
    for s in range(T):
        t, col = forward_col(s, T, B, D, d, b64, d64)
        t64 = t.to(tl.int64)
        valid = (mask_b & (t < lens))[None, :]
        # The next step's input projection, loaded a step ahead: nothing in this step waits
        # for it. (Loaded in the step that uses it, each gate's tile waited for its load
        # before its layout conversion: 4 dependent round trips a step, LSTM, AOT.)
        _, col_next = forward_col(s + 1, T, B, D, d, b64, d64)
        more = mask_b & ((tl.zeros([BLOCK_B], tl.int32) + s + 1) < T)
        n0, n1, n2, n3 = load_input_projection(xp_ptr, 0, col_next, more, H, G, BLOCK_H,
                                               XP_DTYPE)
        acc = dot_acc(w, h, tl.zeros([GP * BLOCK_H, BLOCK_B], ACC_DTYPE), DOT_DTYPE, PRECISION)
        p0, p1, p2, p3 = split_gates(acc, GP, BLOCK_H, BLOCK_B)
        # For GRU h_prev is h itself (K == H there); other cells ignore it.
        h_cell, c_new, a0, a1, a2, a3 = cell_forward(
            CELL, x0.to(ACC_DTYPE), x1.to(ACC_DTYPE), x2.to(ACC_DTYPE), x3.to(ACC_DTYPE), p0,
            p1, p2, p3, b_hn, h, c)
        # Padding lanes (units past H or K) of the state stay 0: an infinite state times a
        # padding zero of W is NaN there, which the next product would spread.
        if PROJ:
            h_new = dot_acc(wr, tl.where(units_h, h_cell, 0.0),
                            tl.zeros([BLOCK_K, BLOCK_B], ACC_DTYPE), DOT_DTYPE, PRECISION)
        else:
            h_new = h_cell
        h = tl.where(valid & units_k, h_new, h)
        c = tl.where(valid & units_h, c_new, c)
        tl.store(y_ptr + col * K + offs_k[:, None],
                 tl.where(valid, h_new, 0.0).to(y_ptr.dtype.element_ty), mask=mask_k)
        if TRAINING:
            seq_col = ((d64 * T + t64) * B + b64)[None, :]  # (d, t, b) in [D, T, B, *]
            store_activations(act_ptr, cs_ptr, seq_col * S * H + offs_h[:, None],
                              seq_col * H + offs_h[:, None], mask_h, a0, a1, a2, a3, c_new,
                              CELL, S, H)
        x0, x1, x2, x3 = n0, n1, n2, n3

    hn_ptrs, _ = state_tile_t(hn_ptr, K, state_col, BLOCK_K)
    tl.store(hn_ptrs, h.to(hn_ptr.dtype.element_ty), mask=mask_k)
    if CELL == CELL_LSTM:
        cn_ptrs, _ = state_tile_t(cn_ptr, H, state_col, BLOCK_H)
        tl.store(cn_ptrs, c.to(cn_ptr.dtype.element_ty), mask=mask_h)


@triton.jit
def load_step_states(step, cs_ptr, y_ptr, h0_ptr, c0_ptr, T, B, D, d, b64, d64, mask_b, lens,
                     state_col, H, K, CELL: tl.constexpr, HAS_H0: tl.constexpr,
                     HAS_C0: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
                     SAVED: tl.constexpr):
    """tiles.load_saved_states of backward step `step`, as stored (SAVED): [BLOCK_H,
    BLOCK_B] c_t, c_prev, h_prev; nothing is loaded past the last step."""
    live, _, prev_ok, _, seq_col, prev_col, prev_seq_col = step_coords(
        step, T, B, D, d, b64, d64, mask_b, lens, BLOCK_B)
    mask = (tl.arange(0, BLOCK_H)[:, None] < H) & live[None, :]
    return load_saved_states(0, cs_ptr, y_ptr, h0_ptr, c0_ptr, seq_col, prev_col, prev_seq_col,
                             state_col, mask, prev_ok, H, K, CELL, HAS_H0, HAS_C0, BLOCK_H,
                             BLOCK_B, SAVED)


@triton.jit(do_not_specialize=["T", "B"])
def fused_backward_kernel(
    dy_ptr,    # [T, B, D, K] gradient of the output
    dhn_ptr,   # [D, B, K] gradient of the final h
    dcn_ptr,   # [D, B, H] gradient of the final c
    act_ptr,   # [D, T, B, S, H] saved activations
    cs_ptr,    # [D, T, B, H] saved c
    y_ptr,     # [T, B, D, K] forward output (h_prev for GRU)
    h0_ptr,    # [D, B, K]
    c0_ptr,    # [D, B, H]
    len_ptr,   # [B] int32
    whh_ptr,   # [D, G, H, K]
    whr_ptr,   # [D, P, H]
    dxp_ptr,   # [T, B, D, G, H] out: gradient of the input-side pre-activations
    dhg_ptr,   # [D, T, B, H] out, GRU: gradient of W_hn h + b_hn
    dhs_ptr,   # [D, T, B, K] out, projection: total gradient of h per step
    dh0_ptr,   # [D, B, K] out
    dc0_ptr,   # [D, B, H] out
    T, B, H, K, D,
    CELL: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, S: tl.constexpr,
    HAS_DY: tl.constexpr, HAS_DHN: tl.constexpr, HAS_DCN: tl.constexpr,
    HAS_H0: tl.constexpr, HAS_C0: tl.constexpr,
    PROJ: tl.constexpr, VARLEN: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_b = tl.program_id(0)
    d = tl.program_id(1)
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    d64 = d.to(tl.int64)
    state_col = (d64 * B + b64)[None, :]
    offs_h, offs_k, units_h, units_k, mask_h, mask_k = unit_tiles(H, K, mask_b, BLOCK_H,
                                                                  BLOCK_K)
    # the forward's tiles, used transposed: dh^T = W_hh^T @ dG^T, dh_cell^T = W_hr^T @ dh^T
    w, wr = load_weights(whh_ptr, whr_ptr, d64, H, K, G, GP, PROJ, BLOCK_H, BLOCK_K, DOT_DTYPE)

    dh_ptrs, dh_units = state_tile_t(dhn_ptr, K, state_col, BLOCK_K)
    dc_ptrs, dc_units = state_tile_t(dcn_ptr, H, state_col, BLOCK_H)
    dh = tl.zeros([BLOCK_K, BLOCK_B], ACC_DTYPE)
    dc = tl.zeros([BLOCK_H, BLOCK_B], ACC_DTYPE)
    if HAS_DHN:
        dh += load_units(dh_ptrs, 0, dh_units & mask_b[None, :]).to(ACC_DTYPE)
    if HAS_DCN:
        dc += load_units(dc_ptrs, 0, dc_units & mask_b[None, :]).to(ACC_DTYPE)
    lens = tl.zeros([BLOCK_B], tl.int32) + T
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)

    # The saved states a step reads do not depend on the recurrence: they are loaded a step
    # ahead, as stored, so that their layout conversions wait for nothing. The activations
    # and dy go out together at the step's start, one round trip. (All in the step, each
    # where it was used, LSTM waited 7 dependent round trips a step; all a step ahead
    # spilled on sm_80. AOT.)
    SAVED: tl.constexpr = act_ptr.dtype.element_ty
    c_t, c_prev, h_prev = load_step_states(
        0, cs_ptr, y_ptr, h0_ptr, c0_ptr, T, B, D, d, b64, d64, mask_b, lens, state_col, H, K,
        CELL, HAS_H0, HAS_C0, BLOCK_B, BLOCK_H, SAVED)
    for step in range(T):
        _, valid, _, col, seq_col, _, _ = step_coords(step, T, B, D, d, b64, d64, mask_b, lens,
                                                      BLOCK_B)
        _, n_c_prev, n_h_prev = load_step_states(
            step + 1, cs_ptr, y_ptr, h0_ptr, c0_ptr, T, B, D, d, b64, d64, mask_b, lens,
            state_col, H, K, CELL, HAS_H0, HAS_C0, BLOCK_B, BLOCK_H, SAVED)
        a0, a1, a2, a3 = load_activations(act_ptr, y_ptr, seq_col * S * H + offs_h[:, None],
                                          col * K + offs_h[:, None], mask_h, S, H, SAVED)
        if HAS_DY:
            dh += load_units(dy_ptr, col * K + offs_k[:, None], mask_k & valid).to(ACC_DTYPE)
        if PROJ:
            tl.store(dhs_ptr + seq_col * K + offs_k[:, None],
                     tl.where(valid, dh, 0.0).to(dhs_ptr.dtype.element_ty), mask=mask_k)
            # Always true: the branch puts this product in a region of its own. Triton
            # gives a dot whose operands come from another dot of the same region that
            # dot's warp layout; dh_rec would take this one's [warps, 1] and, with K's 16
            # rows, every warp would compute the same tile (AOT, H = 64, P = 16: 1.8x the
            # MMA work, and 456 B spilled against 224 B).
            dh_cell = tl.zeros([BLOCK_H, BLOCK_B], ACC_DTYPE)
            if K > 0:
                dh_cell = dot_acc(tl.trans(wr), dh, dh_cell, DOT_DTYPE, PRECISION)
            dh_cell = tl.where(units_h, dh_cell, 0.0)
        else:
            dh_cell = dh
        g0, g1, g2, g3, g_hn, dc_prev, dh_direct = cell_backward(
            CELL, a0.to(ACC_DTYPE), a1.to(ACC_DTYPE), a2.to(ACC_DTYPE), a3.to(ACC_DTYPE),
            c_t.to(ACC_DTYPE), c_prev.to(ACC_DTYPE), h_prev.to(ACC_DTYPE), dh_cell, dc)
        g0 = tl.where(valid, g0, 0.0)
        g1 = tl.where(valid, g1, 0.0)
        g2 = tl.where(valid, g2, 0.0)
        g3 = tl.where(valid, g3, 0.0)
        dxp_offs = col * G * H + offs_h[:, None]
        ty = dxp_ptr.dtype.element_ty
        tl.store(dxp_ptr + dxp_offs, g0.to(ty), mask=mask_h)
        if G > 1:
            tl.store(dxp_ptr + dxp_offs + H, g1.to(ty), mask=mask_h)
            tl.store(dxp_ptr + dxp_offs + 2 * H, g2.to(ty), mask=mask_h)
        if G > 3:
            tl.store(dxp_ptr + dxp_offs + 3 * H, g3.to(ty), mask=mask_h)
        g_rec2 = g2
        if CELL == CELL_GRU:  # GRU's recurrent side of gate n sees r * d_n, not d_n
            g_rec2 = tl.where(valid, g_hn, 0.0)
            tl.store(dhg_ptr + seq_col * H + offs_h[:, None],
                     g_rec2.to(dhg_ptr.dtype.element_ty), mask=mask_h)
        stack = stack_gates(g0, g1, g_rec2, g3, GP, BLOCK_H, BLOCK_B)
        dh_rec = dot_acc(tl.trans(w), stack, tl.zeros([BLOCK_K, BLOCK_B], ACC_DTYPE), DOT_DTYPE,
                         PRECISION)
        if CELL == CELL_GRU:  # h_prev also feeds h directly (K == H)
            dh_rec += dh_direct
        dh = tl.where(valid & units_k, dh_rec, dh)  # padding lanes stay 0, as in forward
        dc = tl.where(valid & units_h, dc_prev, dc)
        # the next step's c_t is this one's c_prev wherever that step is valid
        c_t, c_prev, h_prev = c_prev, n_c_prev, n_h_prev

    dh0_ptrs, _ = state_tile_t(dh0_ptr, K, state_col, BLOCK_K)
    tl.store(dh0_ptrs, dh.to(dh0_ptr.dtype.element_ty), mask=mask_k)
    if CELL == CELL_LSTM:
        dc0_ptrs, _ = state_tile_t(dc0_ptr, H, state_col, BLOCK_H)
        tl.store(dc0_ptrs, dc.to(dc0_ptr.dtype.element_ty), mask=mask_h)
