"""Recurrence with the hidden dimension split across programs, for W_hh too big for one.

Work: (hidden slices, batch tiles, directions). A group of `progs` programs serves one
(batch tile, direction); slice s of BLOCK_N hidden units belongs to program s % progs of its
group. Every step needs all of h_{t-1}, so h travels through a ping-pong buffer in global
memory ("ring", slot step % 2 holds h after that step; the host puts h0 in slot 1 before
step 0), and the group's programs wait for each other at a barrier between phases:
  forward:  cell phase (gates, c, h or the unprojected h) [, projection phase (h = W_hr h)]
  backward: cell phase (gate gradients of its units), recurrent phase (dh_{t-1} for its
            slices of K, which needs every gate gradient of step t).
All T steps run in one launch, so there is no per-step host work at any length.

A barrier needs every program of the group running at once. The host keeps progs within the
SM count, and programs take their work from a ticket counter in the order they start rather
than from their program id: a group's programs hold consecutive tickets, so a waiting group
is never starved by later groups, and any number of groups (batch tiles x directions) runs
in waves. With progs = number of slices each program owns one slice and keeps its c (dc) in
registers (MULTI=False); with fewer (hidden sizes beyond the SM count, and the interpreter,
which runs programs one after another and so uses progs = 1) programs walk several slices
and keep c in global memory (MULTI=True).

Legend as in fused.py. W_hh is re-read each step here (from L2 on a GPU), in chunks of
BLOCK_KC along the reduction.
"""
import triton
import triton.language as tl

from .cells import cell_backward, cell_forward
from .fused import load_activations, load_tile, load_tile_t, mm, store_activations

REGISTER_FILE = 64 * 1024  # 32-bit registers per SM, and per block (sm_80, sm_90)


def split_maxnreg(num_warps):
    """Register ceiling per thread for the split kernels. Left alone, ptxas caps some of them
    at 128 registers (room for a second program per SM) and spills; the split regime is built
    around one program per SM, so it may have all the block can hold (at most 255)."""
    return min(255, REGISTER_FILE // (32 * num_warps))


@triton.jit
def claim_work(bar_ptr, progs, D):
    """(program within group, batch tile, direction, barrier counter) of this program, by the
    order programs start: bar_ptr[0] is the ticket counter, bar_ptr[1 + group] the group's
    barrier."""
    ticket = tl.atomic_add(bar_ptr, 1, sem="relaxed", scope="gpu")
    group = ticket // progs
    return ticket % progs, group // D, group % D, bar_ptr + 1 + group


@triton.jit
def grid_barrier(bar_ptr, target):
    """Wait until `target` arrivals are counted at bar_ptr (a monotonically growing counter)."""
    tl.debug_barrier()  # every thread's stores of this program are issued before arriving
    tl.atomic_add(bar_ptr, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(bar_ptr, 0, sem="acquire", scope="gpu")
    while seen < target:
        seen = tl.atomic_add(bar_ptr, 0, sem="acquire", scope="gpu")
    tl.debug_barrier()


@triton.jit
def load_state(ptr, state_row, offs_n, mask_b, H):
    """[BLOCK_B, BLOCK_N] tile of a [D, B, H] state buffer (c or dc), zero outside."""
    mask = mask_b[:, None] & (offs_n[None, :] < H)
    return tl.load(ptr + state_row[:, None] * H + offs_n[None, :], mask=mask, other=0.0)


@triton.jit
def store_state(ptr, value, state_row, offs_n, mask_b, H):
    mask = mask_b[:, None] & (offs_n[None, :] < H)
    tl.store(ptr + state_row[:, None] * H + offs_n[None, :], value, mask=mask)


@triton.jit
def forward_cell_slice(
    offs_n, c, xp_ptr, w_base, bhn_ptr, hh_ptr, y_ptr, act_ptr, cs_ptr, prev, cur,
    row, saved_row, state_row, mask_b, valid2, d64, H, K,
    CELL: tl.constexpr, G: tl.constexpr, S: tl.constexpr, HAS_BHN: tl.constexpr,
    PROJ: tl.constexpr, TRAINING: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    """One forward step of the cell for hidden units offs_n [BLOCK_N]; c [BLOCK_B, BLOCK_N]
    is their cell state before the step. Returns it after the step (kept past each length).
    Writes h (or, projecting, the cell output to hh), y and what training saves."""
    offs_kc = tl.arange(0, BLOCK_KC)
    mask_bn = mask_b[:, None] & (offs_n[None, :] < H)
    xp_base = xp_ptr + row[:, None] * G * H + offs_n[None, :]
    x0 = tl.load(xp_base, mask=mask_bn, other=0.0).to(ACC_DTYPE)
    x1 = x0
    x2 = x0
    x3 = x0
    if G > 1:
        x1 = tl.load(xp_base + H, mask=mask_bn, other=0.0).to(ACC_DTYPE)
        x2 = tl.load(xp_base + 2 * H, mask=mask_bn, other=0.0).to(ACC_DTYPE)
    if G > 3:
        x3 = tl.load(xp_base + 3 * H, mask=mask_bn, other=0.0).to(ACC_DTYPE)
    b_hn = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    if HAS_BHN:
        b_hn += tl.load(bhn_ptr + d64 * H + offs_n, mask=offs_n < H, other=0.0).to(ACC_DTYPE)[None, :]
    # p_g = h_{t-1} @ W_hh[gate g, owned units]^T, reduced over K in chunks
    p0 = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    p1 = p0
    p2 = p0
    p3 = p0
    for k0 in range(0, K, BLOCK_KC):
        kk = k0 + offs_kc
        h_chunk = tl.load(prev + kk[None, :], mask=mask_b[:, None] & (kk[None, :] < K),
                          other=0.0, cache_modifier=".cg")
        p0 += mm(h_chunk, load_tile_t(w_base, kk, offs_n, K, K, H), DOT_DTYPE, ACC_DTYPE, PRECISION)
        if G > 1:
            p1 += mm(h_chunk, load_tile_t(w_base + H * K, kk, offs_n, K, K, H), DOT_DTYPE, ACC_DTYPE, PRECISION)
            p2 += mm(h_chunk, load_tile_t(w_base + 2 * H * K, kk, offs_n, K, K, H), DOT_DTYPE, ACC_DTYPE, PRECISION)
        if G > 3:
            p3 += mm(h_chunk, load_tile_t(w_base + 3 * H * K, kk, offs_n, K, K, H), DOT_DTYPE, ACC_DTYPE, PRECISION)
    h_prev = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    if not PROJ:  # K == H: these units' own h_{t-1}
        h_prev = tl.load(prev + offs_n[None, :], mask=mask_bn, other=0.0,
                         cache_modifier=".cg").to(ACC_DTYPE)
    h_cell, c_new, a0, a1, a2, a3 = cell_forward(CELL, x0, x1, x2, x3, p0, p1, p2, p3,
                                                 b_hn, h_prev, c)
    if PROJ:
        tl.store(hh_ptr + state_row[:, None] * H + offs_n[None, :],
                 h_cell.to(hh_ptr.dtype.element_ty), mask=mask_bn)
    else:
        tl.store(cur + offs_n[None, :], tl.where(valid2, h_cell, h_prev).to(cur.dtype.element_ty),
                 mask=mask_bn)
        tl.store(y_ptr + row[:, None] * K + offs_n[None, :],
                 tl.where(valid2, h_cell, 0.0).to(y_ptr.dtype.element_ty), mask=mask_bn)
    if TRAINING:
        store_activations(act_ptr, cs_ptr, saved_row, offs_n, mask_bn, a0, a1, a2, a3, c_new,
                          CELL, S, H)
    return tl.where(valid2, c_new, c)


@triton.jit
def forward_proj_slice(
    offs_p, whr_ptr, hh_ptr, y_ptr, prev, cur, row, state_row, mask_b, valid2, d64, H, K,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    """h_t[:, offs_p] = hh_t @ W_hr[offs_p]^T, reduced over all H in chunks; writes h and y."""
    offs_kc = tl.arange(0, BLOCK_KC)
    mask_bp = mask_b[:, None] & (offs_p[None, :] < K)
    acc = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    for j0 in range(0, H, BLOCK_KC):
        hc = j0 + offs_kc
        hh = tl.load(hh_ptr + state_row[:, None] * H + hc[None, :],
                     mask=mask_b[:, None] & (hc[None, :] < H), other=0.0, cache_modifier=".cg")
        acc += mm(hh, load_tile_t(whr_ptr + d64 * K * H, hc, offs_p, H, H, K), DOT_DTYPE, ACC_DTYPE, PRECISION)
    hp_prev = tl.load(prev + offs_p[None, :], mask=mask_bp, other=0.0, cache_modifier=".cg")
    tl.store(cur + offs_p[None, :], tl.where(valid2, acc, hp_prev.to(ACC_DTYPE)).to(cur.dtype.element_ty),
             mask=mask_bp)
    tl.store(y_ptr + row[:, None] * K + offs_p[None, :],
             tl.where(valid2, acc, 0.0).to(y_ptr.dtype.element_ty), mask=mask_bp)


@triton.jit(do_not_specialize=["T", "B", "progs"])
def split_forward_kernel(
    xp_ptr,    # [T, B, D, G, H]
    whh_ptr,   # [D, G, H, K]
    bhn_ptr,   # [D, H]
    whr_ptr,   # [D, P, H]
    ring_ptr,  # [2, D, B, K] h after step (slot step % 2); slot 1 holds h0 on entry
    hh_ptr,    # [D, B, H] projection only: the cell output of the current step
    c_ptr,     # [D, B, H] LSTM: c0 (or zeros) on entry, c_n on exit
    len_ptr,   # [B] int32
    y_ptr,     # [T, B, D, K]
    act_ptr,   # [D, T, B, S, H]
    cs_ptr,    # [D, T, B, H]
    bar_ptr,   # [1 + batch tiles * D] int32, zeroed: ticket counter, then a barrier per group
    T, B, H, K, D, progs,
    CELL: tl.constexpr, G: tl.constexpr, S: tl.constexpr,
    HAS_BHN: tl.constexpr, PROJ: tl.constexpr, VARLEN: tl.constexpr, TRAINING: tl.constexpr,
    MULTI: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_n, pid_b, d, bar = claim_work(bar_ptr, progs, D)
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    d64 = d.to(tl.int64)
    state_row = d64 * B + b64            # [BLOCK_B] row of (d, b) in [D, B, *] buffers
    ring_stride = B.to(tl.int64) * D * K  # elements per ring slot; int64: D*B*K can pass 2^31
    w_base = whh_ptr + d64 * G * H * K
    n_cell = tl.cdiv(H, BLOCK_N)         # slices of the cell phase
    n_out = tl.cdiv(K, BLOCK_N)          # slices of the projection phase
    own_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # MULTI=False: the one owned slice
    c = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    if CELL == 2 and not MULTI:
        c += load_state(c_ptr, state_row, own_n, mask_b, H)
    lens = tl.zeros([BLOCK_B], tl.int32) + T
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)
    n_barriers = 0

    for step in range(T):
        t = step + d * (T - 1 - 2 * step)
        t64 = t.to(tl.int64)
        valid2 = (mask_b & (t < lens))[:, None]
        prev = ring_ptr + ring_stride * ((step + 1) % 2) + state_row[:, None] * K
        cur = ring_ptr + ring_stride * (step % 2) + state_row[:, None] * K
        row = (t64 * B + b64) * D + d64      # row of (t, b, d) in [T, B, D, *] buffers
        saved_row = (d64 * T + t64) * B + b64  # row of (d, t, b) in [D, T, B, *] buffers
        if MULTI:
            for sl in range(pid_n, n_cell, progs):
                offs_n = sl * BLOCK_N + tl.arange(0, BLOCK_N)
                c_sl = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
                if CELL == 2:
                    c_sl += load_state(c_ptr, state_row, offs_n, mask_b, H)
                c_sl = forward_cell_slice(
                    offs_n, c_sl, xp_ptr, w_base, bhn_ptr, hh_ptr, y_ptr, act_ptr, cs_ptr, prev,
                    cur, row, saved_row, state_row, mask_b, valid2, d64, H, K, CELL, G, S,
                    HAS_BHN, PROJ, TRAINING, BLOCK_B, BLOCK_N, BLOCK_KC, DOT_DTYPE, ACC_DTYPE,
                    PRECISION)
                if CELL == 2:
                    store_state(c_ptr, c_sl, state_row, offs_n, mask_b, H)
        else:
            c = forward_cell_slice(
                own_n, c, xp_ptr, w_base, bhn_ptr, hh_ptr, y_ptr, act_ptr, cs_ptr, prev, cur,
                row, saved_row, state_row, mask_b, valid2, d64, H, K, CELL, G, S, HAS_BHN,
                PROJ, TRAINING, BLOCK_B, BLOCK_N, BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
        if PROJ:
            n_barriers += 1
            grid_barrier(bar, n_barriers * progs)
            if MULTI:
                for sl in range(pid_n, n_out, progs):
                    forward_proj_slice(sl * BLOCK_N + tl.arange(0, BLOCK_N), whr_ptr, hh_ptr,
                                       y_ptr, prev, cur, row, state_row, mask_b, valid2, d64, H,
                                       K, BLOCK_B, BLOCK_N, BLOCK_KC, DOT_DTYPE, ACC_DTYPE,
                                       PRECISION)
            elif pid_n < n_out:  # K < H: the last programs own no slice of K
                forward_proj_slice(own_n, whr_ptr, hh_ptr, y_ptr, prev, cur, row, state_row,
                                   mask_b, valid2, d64, H, K, BLOCK_B, BLOCK_N, BLOCK_KC,
                                   DOT_DTYPE, ACC_DTYPE, PRECISION)
        n_barriers += 1
        grid_barrier(bar, n_barriers * progs)

    if CELL == 2 and not MULTI:
        store_state(c_ptr, c, state_row, own_n, mask_b, H)


@triton.jit
def backward_cell_slice(
    offs_n, dc, dy_ptr, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, wr_base, dxp_ptr, dhg_ptr,
    prev, row, seq_row, prev_row, prev_seq_row, state_row, mask_b, valid2, prev_ok, H, K,
    CELL: tl.constexpr, G: tl.constexpr, S: tl.constexpr, HAS_DY: tl.constexpr,
    HAS_H0: tl.constexpr, HAS_C0: tl.constexpr, PROJ: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    """Gate gradients of step t for hidden units offs_n; dc [BLOCK_B, BLOCK_N] is their dc_t.
    Writes dxp (and GRU's dhg) and returns dc_{t-1} (kept past each length)."""
    offs_kc = tl.arange(0, BLOCK_KC)
    mask_bn = mask_b[:, None] & (offs_n[None, :] < H)
    if PROJ:  # dh of the cell output = (dh_t + dy_t) @ W_hr[:, offs_n], reduced over K
        dh_cell = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
        for k0 in range(0, K, BLOCK_KC):
            kk = k0 + offs_kc
            mk = mask_b[:, None] & (kk[None, :] < K)
            dh_k = tl.load(prev + kk[None, :], mask=mk, other=0.0, cache_modifier=".cg").to(ACC_DTYPE)
            if HAS_DY:
                dh_k += tl.load(dy_ptr + row[:, None] * K + kk[None, :], mask=mk & valid2,
                                other=0.0).to(ACC_DTYPE)
            dh_cell += mm(dh_k, load_tile(wr_base, kk, offs_n, H, K, H), DOT_DTYPE, ACC_DTYPE, PRECISION)
    else:
        dh_cell = tl.load(prev + offs_n[None, :], mask=mask_bn, other=0.0,
                          cache_modifier=".cg").to(ACC_DTYPE)
        if HAS_DY:
            dh_cell += tl.load(dy_ptr + row[:, None] * K + offs_n[None, :],
                               mask=mask_bn & valid2, other=0.0).to(ACC_DTYPE)
    a0, a1, a2, a3 = load_activations(act_ptr, y_ptr, seq_row, row, offs_n, mask_bn, S, H, K,
                                      ACC_DTYPE)
    c_t = dc * 0.0
    c_prev = dc * 0.0
    h_prev = dc * 0.0
    if CELL == 2:
        c_t = tl.load(cs_ptr + seq_row[:, None] * H + offs_n[None, :], mask=mask_bn,
                      other=0.0).to(ACC_DTYPE)
        c_prev = tl.load(cs_ptr + prev_seq_row[:, None] * H + offs_n[None, :],
                         mask=mask_bn & prev_ok, other=0.0).to(ACC_DTYPE)
        if HAS_C0:
            c_first = tl.load(c0_ptr + state_row[:, None] * H + offs_n[None, :],
                              mask=mask_bn, other=0.0).to(ACC_DTYPE)
            c_prev = tl.where(prev_ok, c_prev, c_first)
    if CELL == 3:
        h_prev = tl.load(y_ptr + prev_row[:, None] * K + offs_n[None, :],
                         mask=mask_bn & prev_ok, other=0.0).to(ACC_DTYPE)
        if HAS_H0:
            h_first = tl.load(h0_ptr + state_row[:, None] * K + offs_n[None, :],
                              mask=mask_bn, other=0.0).to(ACC_DTYPE)
            h_prev = tl.where(prev_ok, h_prev, h_first)
    g0, g1, g2, g3, g_hn, dc_prev, dh_direct = cell_backward(
        CELL, a0, a1, a2, a3, c_t, c_prev, h_prev, dh_cell, dc)
    dxp_base = dxp_ptr + row[:, None] * G * H + offs_n[None, :]
    ty = dxp_ptr.dtype.element_ty
    tl.store(dxp_base, tl.where(valid2, g0, 0.0).to(ty), mask=mask_bn)
    if G > 1:
        tl.store(dxp_base + H, tl.where(valid2, g1, 0.0).to(ty), mask=mask_bn)
        tl.store(dxp_base + 2 * H, tl.where(valid2, g2, 0.0).to(ty), mask=mask_bn)
    if G > 3:
        tl.store(dxp_base + 3 * H, tl.where(valid2, g3, 0.0).to(ty), mask=mask_bn)
    if CELL == 3:
        tl.store(dhg_ptr + seq_row[:, None] * H + offs_n[None, :],
                 tl.where(valid2, g_hn, 0.0).to(dhg_ptr.dtype.element_ty), mask=mask_bn)
    return tl.where(valid2, dc_prev, dc)


@triton.jit
def backward_rec_slice(
    offs_k, dy_ptr, act_ptr, w_base, dxp_ptr, dhg_ptr, dhs_ptr, prev, cur, row, seq_row,
    mask_b, valid2, H, K,
    CELL: tl.constexpr, G: tl.constexpr, S: tl.constexpr, HAS_DY: tl.constexpr,
    PROJ: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    """dh_{t-1}[:, offs_k] = sum over gates of (gate grads of step t) @ W_hh[:, offs_k]."""
    offs_kc = tl.arange(0, BLOCK_KC)
    mask_bk = mask_b[:, None] & (offs_k[None, :] < K)
    dh_tot = tl.load(prev + offs_k[None, :], mask=mask_bk, other=0.0,
                     cache_modifier=".cg").to(ACC_DTYPE)
    if HAS_DY:
        dh_tot += tl.load(dy_ptr + row[:, None] * K + offs_k[None, :], mask=mask_bk & valid2,
                          other=0.0).to(ACC_DTYPE)
    if PROJ:
        tl.store(dhs_ptr + seq_row[:, None] * K + offs_k[None, :],
                 tl.where(valid2, dh_tot, 0.0).to(dhs_ptr.dtype.element_ty), mask=mask_bk)
    rec = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    for j0 in range(0, H, BLOCK_KC):
        hc = j0 + offs_kc
        mh = mask_b[:, None] & (hc[None, :] < H)
        g_base = dxp_ptr + row[:, None] * G * H + hc[None, :]
        for g in tl.static_range(G):
            if CELL == 3 and g == 2:
                grad = tl.load(dhg_ptr + seq_row[:, None] * H + hc[None, :], mask=mh,
                               other=0.0, cache_modifier=".cg")
            else:
                grad = tl.load(g_base + g * H, mask=mh, other=0.0, cache_modifier=".cg")
            rec += mm(grad, load_tile(w_base + g * H * K, hc, offs_k, K, H, K), DOT_DTYPE, ACC_DTYPE, PRECISION)
    if CELL == 3:  # h_prev also feeds h directly: dh_{t-1} += z * dh_t
        z = tl.load(act_ptr + seq_row[:, None] * S * H + H + offs_k[None, :], mask=mask_bk,
                    other=0.0).to(ACC_DTYPE)
        rec += z * dh_tot
    tl.store(cur + offs_k[None, :], tl.where(valid2, rec, dh_tot).to(cur.dtype.element_ty),
             mask=mask_bk)


@triton.jit(do_not_specialize=["T", "B", "progs"])
def split_backward_kernel(
    dy_ptr,    # [T, B, D, K]
    act_ptr,   # [D, T, B, S, H]
    cs_ptr,    # [D, T, B, H]
    y_ptr,     # [T, B, D, K]
    h0_ptr,    # [D, B, K]
    c0_ptr,    # [D, B, H]
    len_ptr,   # [B] int32
    whh_ptr,   # [D, G, H, K]
    whr_ptr,   # [D, P, H]
    ring_ptr,  # [2, D, B, K] carried dh: slot step % 2 after backward step `step`; slot 1 = dh_n
    dc_ptr,    # [D, B, H] LSTM: dc_n (or zeros) on entry, dc0 on exit
    dxp_ptr,   # [T, B, D, G, H] out
    dhg_ptr,   # [D, T, B, H] out (GRU)
    dhs_ptr,   # [D, T, B, K] out (projection)
    bar_ptr,   # [1 + batch tiles * D] int32, zeroed, as in the forward kernel
    T, B, H, K, D, progs,
    CELL: tl.constexpr, G: tl.constexpr, S: tl.constexpr,
    HAS_DY: tl.constexpr, HAS_H0: tl.constexpr, HAS_C0: tl.constexpr,
    PROJ: tl.constexpr, VARLEN: tl.constexpr, MULTI: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_n, pid_b, d, bar = claim_work(bar_ptr, progs, D)
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    d64 = d.to(tl.int64)
    state_row = d64 * B + b64
    ring_stride = B.to(tl.int64) * D * K  # int64, as in the forward kernel
    w_base = whh_ptr + d64 * G * H * K
    wr_base = whr_ptr + d64 * K * H
    n_cell = tl.cdiv(H, BLOCK_N)  # slices of the cell phase
    n_rec = tl.cdiv(K, BLOCK_N)   # slices of the recurrent phase
    own_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    dc = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    if CELL == 2 and not MULTI:
        dc += load_state(dc_ptr, state_row, own_n, mask_b, H)
    lens = tl.zeros([BLOCK_B], tl.int32) + T
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)
    n_barriers = 0

    for step in range(T):
        t = (T - 1 - step) + d * (2 * step - T + 1)
        tp = t - 1 + 2 * d  # the step before t in this direction's order
        t64 = t.to(tl.int64)
        tp64 = tp.to(tl.int64)
        valid2 = (mask_b & (t < lens))[:, None]
        # a scalar-vs-vector bool mask breaks the interpreter: compare as vectors
        tp_b = tl.zeros([BLOCK_B], tl.int32) + tp
        prev_ok = (mask_b & (tp_b >= 0) & (tp_b < lens))[:, None]
        prev = ring_ptr + ring_stride * ((step + 1) % 2) + state_row[:, None] * K
        cur = ring_ptr + ring_stride * (step % 2) + state_row[:, None] * K
        row = (t64 * B + b64) * D + d64
        seq_row = (d64 * T + t64) * B + b64
        prev_row = (tp64 * B + b64) * D + d64
        prev_seq_row = (d64 * T + tp64) * B + b64
        if MULTI:
            for sl in range(pid_n, n_cell, progs):
                offs_n = sl * BLOCK_N + tl.arange(0, BLOCK_N)
                dc_sl = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
                if CELL == 2:
                    dc_sl += load_state(dc_ptr, state_row, offs_n, mask_b, H)
                dc_sl = backward_cell_slice(
                    offs_n, dc_sl, dy_ptr, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, wr_base,
                    dxp_ptr, dhg_ptr, prev, row, seq_row, prev_row, prev_seq_row, state_row,
                    mask_b, valid2, prev_ok, H, K, CELL, G, S, HAS_DY, HAS_H0, HAS_C0, PROJ,
                    BLOCK_B, BLOCK_N, BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
                if CELL == 2:
                    store_state(dc_ptr, dc_sl, state_row, offs_n, mask_b, H)
        else:
            dc = backward_cell_slice(
                own_n, dc, dy_ptr, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, wr_base, dxp_ptr,
                dhg_ptr, prev, row, seq_row, prev_row, prev_seq_row, state_row, mask_b, valid2,
                prev_ok, H, K, CELL, G, S, HAS_DY, HAS_H0, HAS_C0, PROJ, BLOCK_B, BLOCK_N,
                BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
        n_barriers += 1
        grid_barrier(bar, n_barriers * progs)
        if MULTI:
            for sl in range(pid_n, n_rec, progs):
                backward_rec_slice(sl * BLOCK_N + tl.arange(0, BLOCK_N), dy_ptr, act_ptr, w_base,
                                   dxp_ptr, dhg_ptr, dhs_ptr, prev, cur, row, seq_row, mask_b,
                                   valid2, H, K, CELL, G, S, HAS_DY, PROJ, BLOCK_B, BLOCK_N,
                                   BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
        elif pid_n < n_rec:  # K < H (projection): the last programs own no slice of K
            backward_rec_slice(own_n, dy_ptr, act_ptr, w_base, dxp_ptr, dhg_ptr, dhs_ptr, prev,
                               cur, row, seq_row, mask_b, valid2, H, K, CELL, G, S, HAS_DY, PROJ,
                               BLOCK_B, BLOCK_N, BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
        n_barriers += 1
        grid_barrier(bar, n_barriers * progs)

    if CELL == 2 and not MULTI:
        store_state(dc_ptr, dc, state_row, own_n, mask_b, H)
