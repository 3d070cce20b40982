"""Persistent recurrence for the regime where one program holds all of W_hh.

Grid: (batch tiles, directions). Each program loads its direction's W_hh (and W_hr) once,
keeps h (and c) in registers, and loops over all T steps inside the one launch. Per step it
reads the step's input projection and writes h (plus, when training, what backward needs).

Legend: T time, B batch, H hidden, P projection, K width of h (P if projecting else H),
G gates (LSTM 4, GRU 3, RNN 1), S saved activations per step (see cells.py), D directions.
Offsets are int64: T*B*D*G*H passes 2^31 for long sequences.
"""
import triton
import triton.language as tl

from .cells import CELL_GRU, CELL_LSTM, cell_backward, cell_forward


@triton.jit
def load_tile(base, offs_r, offs_c, stride_r, n_r, n_c):
    """[len(offs_r), len(offs_c)] tile of a row-major matrix, zero outside n_r x n_c."""
    ptrs = base + offs_r[:, None].to(tl.int64) * stride_r + offs_c[None, :]
    mask = (offs_r[:, None] < n_r) & (offs_c[None, :] < n_c)
    return tl.load(ptrs, mask=mask, other=0.0)


@triton.jit
def load_tile_t(base, offs_r, offs_c, stride_c, n_r, n_c):
    """Transposed view: element [r, c] is base[c * stride_c + r]."""
    ptrs = base + offs_c[None, :].to(tl.int64) * stride_c + offs_r[:, None]
    mask = (offs_r[:, None] < n_r) & (offs_c[None, :] < n_c)
    return tl.load(ptrs, mask=mask, other=0.0)


@triton.jit
def mm(a, b, DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    return tl.dot(a.to(DOT_DTYPE), b.to(DOT_DTYPE), out_dtype=ACC_DTYPE, input_precision=PRECISION)


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
    CELL: tl.constexpr, G: tl.constexpr, S: tl.constexpr,
    HAS_H0: tl.constexpr, HAS_C0: tl.constexpr, HAS_BHN: tl.constexpr,
    PROJ: tl.constexpr, VARLEN: tl.constexpr, TRAINING: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_b = tl.program_id(0)
    d = tl.program_id(1)
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_h = tl.arange(0, BLOCK_H)
    offs_k = tl.arange(0, BLOCK_K)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    d64 = d.to(tl.int64)
    col_h = offs_h[None, :] < H
    col_k = offs_k[None, :] < K
    mask_bh = mask_b[:, None] & col_h
    mask_bk = mask_b[:, None] & col_k

    # W_hh gate tiles, transposed for h @ W^T: [BLOCK_K, BLOCK_H], loaded once per launch.
    w_base = whh_ptr + d64 * G * H * K
    w0 = load_tile_t(w_base, offs_k, offs_h, K, K, H).to(DOT_DTYPE)
    w1 = w0
    w2 = w0
    w3 = w0
    if G > 1:
        w1 = load_tile_t(w_base + H * K, offs_k, offs_h, K, K, H).to(DOT_DTYPE)
        w2 = load_tile_t(w_base + 2 * H * K, offs_k, offs_h, K, K, H).to(DOT_DTYPE)
    if G > 3:
        w3 = load_tile_t(w_base + 3 * H * K, offs_k, offs_h, K, K, H).to(DOT_DTYPE)
    if PROJ:
        # W_hr^T: [BLOCK_H, BLOCK_K], element [n, p] = W_hr[p, n]
        wr = load_tile_t(whr_ptr + d64 * K * H, offs_h, offs_k, H, H, K).to(DOT_DTYPE)
    b_hn = tl.zeros([BLOCK_B, BLOCK_H], ACC_DTYPE)
    if HAS_BHN:
        b_hn += tl.load(bhn_ptr + d64 * H + offs_h, mask=offs_h < H, other=0.0).to(ACC_DTYPE)[None, :]

    state_bk = (d64 * B + b64)[:, None] * K + offs_k[None, :]
    state_bh = (d64 * B + b64)[:, None] * H + offs_h[None, :]
    h = tl.zeros([BLOCK_B, BLOCK_K], ACC_DTYPE)
    c = tl.zeros([BLOCK_B, BLOCK_H], ACC_DTYPE)
    if HAS_H0:
        h += tl.load(h0_ptr + state_bk, mask=mask_bk, other=0.0).to(ACC_DTYPE)
    if HAS_C0:
        c += tl.load(c0_ptr + state_bh, mask=mask_bh, other=0.0).to(ACC_DTYPE)
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)

    for s in range(T):
        t = s + d * (T - 1 - 2 * s)  # forward: s; reverse: T - 1 - s
        t64 = t.to(tl.int64)
        valid = mask_b
        if VARLEN:
            valid = valid & (t < lens)
        valid2 = valid[:, None]
        row = (t64 * B + b64) * D + d64  # [BLOCK_B] index of (t, b, d)
        xp_base = xp_ptr + row[:, None] * G * H + offs_h[None, :]
        x0 = tl.load(xp_base, mask=mask_bh, other=0.0).to(ACC_DTYPE)
        p0 = mm(h, w0, DOT_DTYPE, ACC_DTYPE, PRECISION)
        x1 = x0
        x2 = x0
        x3 = x0
        p1 = p0
        p2 = p0
        p3 = p0
        if G > 1:
            x1 = tl.load(xp_base + H, mask=mask_bh, other=0.0).to(ACC_DTYPE)
            x2 = tl.load(xp_base + 2 * H, mask=mask_bh, other=0.0).to(ACC_DTYPE)
            p1 = mm(h, w1, DOT_DTYPE, ACC_DTYPE, PRECISION)
            p2 = mm(h, w2, DOT_DTYPE, ACC_DTYPE, PRECISION)
        if G > 3:
            x3 = tl.load(xp_base + 3 * H, mask=mask_bh, other=0.0).to(ACC_DTYPE)
            p3 = mm(h, w3, DOT_DTYPE, ACC_DTYPE, PRECISION)
        # For GRU h_prev is h itself (K == H there); other cells ignore it.
        h_cell, c_new, a0, a1, a2, a3 = cell_forward(CELL, x0, x1, x2, x3, p0, p1, p2, p3,
                                                     b_hn, h, c)
        # Padding lanes (offs_h >= H, offs_k >= K) of the state stay 0: an infinite state
        # times a padding zero of W is NaN there, which the next dot would spread to the row.
        if PROJ:
            h_new = mm(tl.where(col_h, h_cell, 0.0), wr, DOT_DTYPE, ACC_DTYPE, PRECISION)
        else:
            h_new = h_cell
        h = tl.where(valid2 & col_k, h_new, h)
        c = tl.where(valid2 & col_h, c_new, c)
        tl.store(y_ptr + row[:, None] * K + offs_k[None, :],
                 tl.where(valid2, h_new, 0.0).to(y_ptr.dtype.element_ty), mask=mask_bk)
        if TRAINING:
            seq_row = ((d64 * T + t64) * B + b64)[:, None]
            store_activations(act_ptr, cs_ptr, seq_row * S * H + offs_h[None, :],
                              seq_row * H + offs_h[None, :], mask_bh, a0, a1, a2, a3, c_new,
                              CELL, S, H)

    tl.store(hn_ptr + state_bk, h.to(hn_ptr.dtype.element_ty), mask=mask_bk)
    if CELL == CELL_LSTM:
        tl.store(cn_ptr + state_bh, c.to(cn_ptr.dtype.element_ty), mask=mask_bh)


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
    CELL: tl.constexpr, G: tl.constexpr, S: tl.constexpr,
    HAS_DY: tl.constexpr, HAS_DHN: tl.constexpr, HAS_DCN: tl.constexpr,
    HAS_H0: tl.constexpr, HAS_C0: tl.constexpr,
    PROJ: tl.constexpr, VARLEN: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_b = tl.program_id(0)
    d = tl.program_id(1)
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_h = tl.arange(0, BLOCK_H)
    offs_k = tl.arange(0, BLOCK_K)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    d64 = d.to(tl.int64)
    col_h = offs_h[None, :] < H
    col_k = offs_k[None, :] < K
    mask_bh = mask_b[:, None] & col_h
    mask_bk = mask_b[:, None] & col_k

    # W_hh gate tiles as stored: [BLOCK_H, BLOCK_K], for dpre @ W.
    w_base = whh_ptr + d64 * G * H * K
    w0 = load_tile(w_base, offs_h, offs_k, K, H, K).to(DOT_DTYPE)
    w1 = w0
    w2 = w0
    w3 = w0
    if G > 1:
        w1 = load_tile(w_base + H * K, offs_h, offs_k, K, H, K).to(DOT_DTYPE)
        w2 = load_tile(w_base + 2 * H * K, offs_h, offs_k, K, H, K).to(DOT_DTYPE)
    if G > 3:
        w3 = load_tile(w_base + 3 * H * K, offs_h, offs_k, K, H, K).to(DOT_DTYPE)
    if PROJ:
        wr = load_tile(whr_ptr + d64 * K * H, offs_k, offs_h, H, K, H).to(DOT_DTYPE)  # [P, H]

    state_bk = (d64 * B + b64)[:, None] * K + offs_k[None, :]
    state_bh = (d64 * B + b64)[:, None] * H + offs_h[None, :]
    h_init = tl.zeros([BLOCK_B, BLOCK_K], ACC_DTYPE)
    c_init = tl.zeros([BLOCK_B, BLOCK_H], ACC_DTYPE)
    if HAS_H0:
        h_init += tl.load(h0_ptr + state_bk, mask=mask_bk, other=0.0).to(ACC_DTYPE)
    if HAS_C0:
        c_init += tl.load(c0_ptr + state_bh, mask=mask_bh, other=0.0).to(ACC_DTYPE)
    dh = tl.zeros([BLOCK_B, BLOCK_K], ACC_DTYPE)
    dc = tl.zeros([BLOCK_B, BLOCK_H], ACC_DTYPE)
    if HAS_DHN:
        dh += tl.load(dhn_ptr + state_bk, mask=mask_bk, other=0.0).to(ACC_DTYPE)
    if HAS_DCN:
        dc += tl.load(dcn_ptr + state_bh, mask=mask_bh, other=0.0).to(ACC_DTYPE)
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)
    else:
        lens = tl.zeros([BLOCK_B], tl.int32) + T

    for s in range(T):
        t = (T - 1 - s) + d * (2 * s - T + 1)  # forward direction walks back from T - 1
        tp = t - 1 + 2 * d                      # the step that came before t in the recurrence
        t64 = t.to(tl.int64)
        tp64 = tp.to(tl.int64)
        valid = mask_b & (t < lens)
        valid2 = valid[:, None]
        # a scalar-vs-vector bool mask breaks the interpreter: compare as vectors
        tp_b = tl.zeros([BLOCK_B], tl.int32) + tp
        prev_ok = (mask_b & (tp_b >= 0) & (tp_b < lens))[:, None]
        row = (t64 * B + b64) * D + d64
        if HAS_DY:
            dy = tl.load(dy_ptr + row[:, None] * K + offs_k[None, :], mask=mask_bk & valid2,
                         other=0.0)
            dh += dy.to(ACC_DTYPE)
        if PROJ:
            tl.store(dhs_ptr + ((d64 * T + t64) * B + b64)[:, None] * K + offs_k[None, :],
                     tl.where(valid2, dh, 0.0).to(dhs_ptr.dtype.element_ty), mask=mask_bk)
            dh_cell = tl.where(col_h, mm(dh, wr, DOT_DTYPE, ACC_DTYPE, PRECISION), 0.0)
        else:
            dh_cell = dh

        seq_row = ((d64 * T + t64) * B + b64)[:, None]
        a0, a1, a2, a3 = load_activations(act_ptr, y_ptr, seq_row * S * H + offs_h[None, :],
                                          row[:, None] * K + offs_h[None, :], mask_bh, S, H,
                                          ACC_DTYPE)
        c_t = c_init
        c_prev = c_init
        h_prev = h_init
        if CELL == CELL_LSTM:
            cs_row = ((d64 * T + t64) * B + b64)[:, None] * H + offs_h[None, :]
            c_t = tl.load(cs_ptr + cs_row, mask=mask_bh, other=0.0).to(ACC_DTYPE)
            csp_row = ((d64 * T + tp64) * B + b64)[:, None] * H + offs_h[None, :]
            c_prev = tl.load(cs_ptr + csp_row, mask=mask_bh & prev_ok, other=0.0).to(ACC_DTYPE)
            c_prev = tl.where(prev_ok, c_prev, c_init)
        if CELL == CELL_GRU:
            yp_row = (tp64 * B + b64) * D + d64
            h_prev = tl.load(y_ptr + yp_row[:, None] * K + offs_k[None, :],
                             mask=mask_bk & prev_ok, other=0.0).to(ACC_DTYPE)
            h_prev = tl.where(prev_ok, h_prev, h_init)

        g0, g1, g2, g3, g_hn, dc_prev, dh_direct = cell_backward(
            CELL, a0, a1, a2, a3, c_t, c_prev, h_prev, dh_cell, dc)
        g0 = tl.where(valid2, g0, 0.0)
        g1 = tl.where(valid2, g1, 0.0)
        g2 = tl.where(valid2, g2, 0.0)
        g3 = tl.where(valid2, g3, 0.0)
        dxp_base = dxp_ptr + row[:, None] * G * H + offs_h[None, :]
        ty = dxp_ptr.dtype.element_ty
        tl.store(dxp_base, g0.to(ty), mask=mask_bh)
        dh_rec = mm(g0, w0, DOT_DTYPE, ACC_DTYPE, PRECISION)
        if G > 1:
            tl.store(dxp_base + H, g1.to(ty), mask=mask_bh)
            tl.store(dxp_base + 2 * H, g2.to(ty), mask=mask_bh)
            dh_rec += mm(g1, w1, DOT_DTYPE, ACC_DTYPE, PRECISION)
        if CELL == CELL_GRU:
            # GRU's recurrent side of gate n sees r * d_n, not d_n; h_prev also feeds h directly.
            g_hn = tl.where(valid2, g_hn, 0.0)
            tl.store(dhg_ptr + ((d64 * T + t64) * B + b64)[:, None] * H + offs_h[None, :],
                     g_hn.to(dhg_ptr.dtype.element_ty), mask=mask_bh)
            dh_rec += mm(g_hn, w2, DOT_DTYPE, ACC_DTYPE, PRECISION) + dh_direct
        elif G > 1:
            dh_rec += mm(g2, w2, DOT_DTYPE, ACC_DTYPE, PRECISION)
        if G > 3:
            tl.store(dxp_base + 3 * H, g3.to(ty), mask=mask_bh)
            dh_rec += mm(g3, w3, DOT_DTYPE, ACC_DTYPE, PRECISION)
        dh = tl.where(valid2 & col_k, dh_rec, dh)  # padding lanes stay 0, as in forward
        dc = tl.where(valid2 & col_h, dc_prev, dc)

    tl.store(dh0_ptr + state_bk, dh.to(dh0_ptr.dtype.element_ty), mask=mask_bk)
    if CELL == CELL_LSTM:
        tl.store(dc0_ptr + state_bh, dc.to(dc0_ptr.dtype.element_ty), mask=mask_bh)
