"""Recurrence with the hidden dimension split across programs, for W_hh too big for one.

Grid: (hidden slices, batch tiles, directions). Program p owns hidden units
[p*BLOCK_N, (p+1)*BLOCK_N): it computes their gates and keeps their c in registers. Every step
needs all of h_{t-1}, so h travels through a ping-pong buffer in global memory ("ring", slot
step % 2 holds h after that step; the host puts h0 in slot 1 before step 0).

Each step has one or two phases separated by a grid-wide barrier among the programs of one
(batch tile, direction):
  forward:  cell phase (gates, c, h or the unprojected h) [, projection phase (h = W_hr h)]
  backward: cell phase (gate gradients of its units), recurrent phase (dh_{t-1} for its
            slice of K, which needs every gate gradient of step t).
SYNC=True runs all steps in one launch with the barrier (GPU, all programs resident).
SYNC=False runs `n_steps` (1) steps of the phases enabled by RUN_* with no waiting: the host
launches once per step and phase, which is the only form the interpreter can run, since it
runs programs one after another.

Legend as in fused.py. W_hh is re-read each step here (from L2 on a GPU), in chunks of
BLOCK_KC along the reduction.
"""
import triton
import triton.language as tl

from .cells import cell_backward, cell_forward
from .fused import load_tile, load_tile_t, mm


@triton.jit
def grid_barrier(bar_ptr, target):
    """Wait until `target` arrivals are counted at bar_ptr (a monotonically growing counter)."""
    tl.debug_barrier()  # every thread's stores of this program are issued before arriving
    tl.atomic_add(bar_ptr, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(bar_ptr, 0, sem="acquire", scope="gpu")
    while seen < target:
        seen = tl.atomic_add(bar_ptr, 0, sem="acquire", scope="gpu")
    tl.debug_barrier()


@triton.jit(do_not_specialize=["step0", "n_steps", "T", "B"])
def split_forward_kernel(
    xp_ptr,    # [T, B, D, G, H]
    whh_ptr,   # [D, G, H, K]
    bhn_ptr,   # [D, H]
    whr_ptr,   # [D, P, H]
    ring_ptr,  # [2, D, B, K] h after step (slot step % 2)
    hh_ptr,    # [D, B, H] projection only: the cell output of the current step
    c_in_ptr,  # [D, B, H] c at launch start
    c_out_ptr,  # [D, B, H] c at launch end
    len_ptr,   # [B] int32
    y_ptr,     # [T, B, D, K]
    act_ptr,   # [D, T, B, S, H]
    cs_ptr,    # [D, T, B, H]
    bar_ptr,   # [n_batch_tiles, D] int32 barrier counters, zeroed
    step0, n_steps, T, B, H, K, D,
    CELL: tl.constexpr, G: tl.constexpr, S: tl.constexpr,
    HAS_C0: tl.constexpr, HAS_BHN: tl.constexpr, PROJ: tl.constexpr, VARLEN: tl.constexpr,
    TRAINING: tl.constexpr, SYNC: tl.constexpr, RUN_CELL: tl.constexpr, RUN_PROJ: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_b = tl.program_id(1)
    d = tl.program_id(2)
    n_prog = tl.num_programs(0)
    bar = bar_ptr + pid_b * D + d
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # owned hidden units (and P units)
    offs_kc = tl.arange(0, BLOCK_KC)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    d64 = d.to(tl.int64)
    mask_bn = mask_b[:, None] & (offs_n[None, :] < H)
    mask_bp = mask_b[:, None] & (offs_n[None, :] < K)
    state_row = d64 * B + b64            # [BLOCK_B] row of (d, b) in [D, B, *] buffers
    ring_stride = B.to(tl.int64) * D * K  # elements per ring slot; int64: D*B*K can pass 2^31
    w_base = whh_ptr + d64 * G * H * K
    c = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    if RUN_CELL and HAS_C0:
        c += tl.load(c_in_ptr + state_row[:, None] * H + offs_n[None, :], mask=mask_bn,
                     other=0.0).to(ACC_DTYPE)
    b_hn = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    if HAS_BHN:
        b_hn += tl.load(bhn_ptr + d64 * H + offs_n, mask=offs_n < H, other=0.0).to(ACC_DTYPE)[None, :]
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)
    n_barriers = 0

    for s in range(n_steps):
        step = step0 + s
        t = step + d * (T - 1 - 2 * step)
        t64 = t.to(tl.int64)
        valid = mask_b
        if VARLEN:
            valid = valid & (t < lens)
        valid2 = valid[:, None]
        prev = ring_ptr + ((step + 1) % 2).to(tl.int64) * ring_stride + state_row[:, None] * K
        cur = ring_ptr + (step % 2).to(tl.int64) * ring_stride + state_row[:, None] * K
        row = (t64 * B + b64) * D + d64
        if RUN_CELL:
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
            if not PROJ:  # K == H: this program's own slice of h_{t-1}
                h_prev = tl.load(prev + offs_n[None, :], mask=mask_bn, other=0.0,
                                 cache_modifier=".cg").to(ACC_DTYPE)
            h_cell, c_new, a0, a1, a2, a3 = cell_forward(CELL, x0, x1, x2, x3, p0, p1, p2, p3,
                                                         b_hn, h_prev, c)
            c = tl.where(valid2, c_new, c)
            if PROJ:
                tl.store(hh_ptr + state_row[:, None] * H + offs_n[None, :],
                         h_cell.to(hh_ptr.dtype.element_ty), mask=mask_bn)
            else:
                tl.store(cur + offs_n[None, :], tl.where(valid2, h_cell, h_prev).to(ring_ptr.dtype.element_ty),
                         mask=mask_bn)
                tl.store(y_ptr + row[:, None] * K + offs_n[None, :],
                         tl.where(valid2, h_cell, 0.0).to(y_ptr.dtype.element_ty), mask=mask_bn)
            if TRAINING:
                saved = ((d64 * T + t64) * B + b64)[:, None] * S * H + offs_n[None, :]
                ty = act_ptr.dtype.element_ty
                if S > 0:
                    tl.store(act_ptr + saved, a0.to(ty), mask=mask_bn)
                if S > 1:
                    tl.store(act_ptr + saved + H, a1.to(ty), mask=mask_bn)
                    tl.store(act_ptr + saved + 2 * H, a2.to(ty), mask=mask_bn)
                    tl.store(act_ptr + saved + 3 * H, a3.to(ty), mask=mask_bn)
                if CELL == 2:
                    tl.store(cs_ptr + ((d64 * T + t64) * B + b64)[:, None] * H + offs_n[None, :],
                             c_new.to(cs_ptr.dtype.element_ty), mask=mask_bn)
            if SYNC and PROJ:
                n_barriers += 1
                grid_barrier(bar, n_barriers * n_prog)
        if RUN_PROJ:
            # h_t[:, owned P units] = hh_t @ W_hr[owned]^T, reduced over all H in chunks.
            acc = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
            for j0 in range(0, H, BLOCK_KC):
                hc = j0 + offs_kc
                hh = tl.load(hh_ptr + state_row[:, None] * H + hc[None, :],
                             mask=mask_b[:, None] & (hc[None, :] < H), other=0.0, cache_modifier=".cg")
                acc += mm(hh, load_tile_t(whr_ptr + d64 * K * H, hc, offs_n, H, H, K), DOT_DTYPE, ACC_DTYPE, PRECISION)
            hp_prev = tl.load(prev + offs_n[None, :], mask=mask_bp, other=0.0, cache_modifier=".cg")
            tl.store(cur + offs_n[None, :], tl.where(valid2, acc, hp_prev.to(ACC_DTYPE)).to(ring_ptr.dtype.element_ty),
                     mask=mask_bp)
            tl.store(y_ptr + row[:, None] * K + offs_n[None, :],
                     tl.where(valid2, acc, 0.0).to(y_ptr.dtype.element_ty), mask=mask_bp)
        if SYNC:
            n_barriers += 1
            grid_barrier(bar, n_barriers * n_prog)

    if RUN_CELL and CELL == 2:
        tl.store(c_out_ptr + state_row[:, None] * H + offs_n[None, :], c.to(c_out_ptr.dtype.element_ty),
                 mask=mask_bn)


@triton.jit(do_not_specialize=["step0", "n_steps", "T", "B"])
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
    dc_in_ptr,  # [D, B, H]
    dc_out_ptr,  # [D, B, H]
    dxp_ptr,   # [T, B, D, G, H] out
    dhg_ptr,   # [D, T, B, H] out (GRU)
    dhs_ptr,   # [D, T, B, K] out (projection)
    bar_ptr,   # [n_batch_tiles, D] int32
    step0, n_steps, T, B, H, K, D,
    CELL: tl.constexpr, G: tl.constexpr, S: tl.constexpr,
    HAS_DY: tl.constexpr, HAS_DC: tl.constexpr, HAS_H0: tl.constexpr, HAS_C0: tl.constexpr,
    PROJ: tl.constexpr, VARLEN: tl.constexpr,
    SYNC: tl.constexpr, RUN_CELL: tl.constexpr, RUN_REC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_b = tl.program_id(1)
    d = tl.program_id(2)
    n_prog = tl.num_programs(0)
    bar = bar_ptr + pid_b * D + d
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # owned hidden units; owned K units in RUN_REC
    offs_kc = tl.arange(0, BLOCK_KC)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    d64 = d.to(tl.int64)
    mask_bn = mask_b[:, None] & (offs_n[None, :] < H)
    mask_bk = mask_b[:, None] & (offs_n[None, :] < K)
    state_row = d64 * B + b64
    ring_stride = B.to(tl.int64) * D * K  # int64, as in the forward kernel
    w_base = whh_ptr + d64 * G * H * K
    wr_base = whr_ptr + d64 * K * H
    dc = tl.zeros([BLOCK_B, BLOCK_N], ACC_DTYPE)
    if RUN_CELL and HAS_DC and CELL == 2:  # only LSTM has a c; other cells get a dummy here
        dc += tl.load(dc_in_ptr + state_row[:, None] * H + offs_n[None, :], mask=mask_bn,
                      other=0.0).to(ACC_DTYPE)
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)
    else:
        lens = tl.zeros([BLOCK_B], tl.int32) + T
    n_barriers = 0

    for s in range(n_steps):
        step = step0 + s
        t = (T - 1 - step) + d * (2 * step - T + 1)
        tp = t - 1 + 2 * d
        t64 = t.to(tl.int64)
        tp64 = tp.to(tl.int64)
        valid = mask_b & (t < lens)
        valid2 = valid[:, None]
        # a scalar-vs-vector bool mask breaks the interpreter: compare as vectors
        tp_b = tl.zeros([BLOCK_B], tl.int32) + tp
        prev_ok = (mask_b & (tp_b >= 0) & (tp_b < lens))[:, None]
        prev = ring_ptr + ((step + 1) % 2).to(tl.int64) * ring_stride + state_row[:, None] * K
        cur = ring_ptr + (step % 2).to(tl.int64) * ring_stride + state_row[:, None] * K
        row = (t64 * B + b64) * D + d64
        seq_row = (d64 * T + t64) * B + b64  # row of (d, t, b) in [D, T, B, *] buffers
        if RUN_CELL:
            if PROJ:
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
            saved = seq_row[:, None] * S * H + offs_n[None, :]
            if S > 0:
                a0 = tl.load(act_ptr + saved, mask=mask_bn, other=0.0).to(ACC_DTYPE)
            else:  # RNN saves nothing: its activation h is this step's output y (K == H)
                a0 = tl.load(y_ptr + row[:, None] * K + offs_n[None, :], mask=mask_bn,
                             other=0.0).to(ACC_DTYPE)
            a1 = a0
            a2 = a0
            a3 = a0
            if S > 1:
                a1 = tl.load(act_ptr + saved + H, mask=mask_bn, other=0.0).to(ACC_DTYPE)
                a2 = tl.load(act_ptr + saved + 2 * H, mask=mask_bn, other=0.0).to(ACC_DTYPE)
                a3 = tl.load(act_ptr + saved + 3 * H, mask=mask_bn, other=0.0).to(ACC_DTYPE)
            c_t = dc * 0.0
            c_prev = dc * 0.0
            h_prev = dc * 0.0
            if CELL == 2:
                c_t = tl.load(cs_ptr + seq_row[:, None] * H + offs_n[None, :], mask=mask_bn,
                              other=0.0).to(ACC_DTYPE)
                c_prev = tl.load(cs_ptr + ((d64 * T + tp64) * B + b64)[:, None] * H + offs_n[None, :],
                                 mask=mask_bn & prev_ok, other=0.0).to(ACC_DTYPE)
                if HAS_C0:
                    c_first = tl.load(c0_ptr + state_row[:, None] * H + offs_n[None, :],
                                      mask=mask_bn, other=0.0).to(ACC_DTYPE)
                    c_prev = tl.where(prev_ok, c_prev, c_first)
            if CELL == 3:
                h_prev = tl.load(y_ptr + ((tp64 * B + b64) * D + d64)[:, None] * K + offs_n[None, :],
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
            dc = tl.where(valid2, dc_prev, dc)
            if SYNC:
                n_barriers += 1
                grid_barrier(bar, n_barriers * n_prog)
        if RUN_REC:
            # dh_{t-1}[:, owned K units] = sum over gates of (gate grads) @ W_hh[:, owned units]
            dh_tot = tl.load(prev + offs_n[None, :], mask=mask_bk, other=0.0,
                             cache_modifier=".cg").to(ACC_DTYPE)
            if HAS_DY:
                dh_tot += tl.load(dy_ptr + row[:, None] * K + offs_n[None, :], mask=mask_bk & valid2,
                                  other=0.0).to(ACC_DTYPE)
            if PROJ:
                tl.store(dhs_ptr + seq_row[:, None] * K + offs_n[None, :],
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
                    rec += mm(grad, load_tile(w_base + g * H * K, hc, offs_n, K, H, K), DOT_DTYPE, ACC_DTYPE, PRECISION)
            if CELL == 3:  # h_prev also feeds h directly: dh_{t-1} += z * dh_t
                z = tl.load(act_ptr + seq_row[:, None] * S * H + H + offs_n[None, :], mask=mask_bk,
                            other=0.0).to(ACC_DTYPE)
                rec += z * dh_tot
            tl.store(cur + offs_n[None, :], tl.where(valid2, rec, dh_tot).to(ring_ptr.dtype.element_ty),
                     mask=mask_bk)
        if SYNC:
            n_barriers += 1
            grid_barrier(bar, n_barriers * n_prog)

    if RUN_CELL and CELL == 2:
        tl.store(dc_out_ptr + state_row[:, None] * H + offs_n[None, :], dc.to(dc_out_ptr.dtype.element_ty),
                 mask=mask_bn)
