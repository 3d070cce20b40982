"""Host launchers for the recurrence kernels: allocate outputs, pick the regime, build grids.

Tensors are [direction-stacked] and contiguous; see fused.py for the legend and layouts.
forward() returns what backward() needs; neither touches autograd.
"""
import torch
import triton
import triton.language as tl

from . import config, dtypes, launches
from .config import INTERPRET
from .cells import CELL_CODES, GATES, GRU, LSTM, SAVED
from .fused import fused_backward_kernel, fused_forward_kernel
from .memory import new_output
from .split import (FLAGS_AT, PROFILE_WORDS, loads_h_unmasked, split_backward_kernel,
                    split_backward_warps, split_forward_kernel, split_maxnreg)

def _dot_types(dtype):
    """(operand dtype, accumulator dtype, fp32 precision) for tl.dot on `dtype` weights."""
    if dtype == torch.float64:
        return tl.float64, tl.float64, "ieee"
    if dtype == torch.bfloat16 and INTERPRET:
        # The interpreter's bf16 x bf16 dot returns garbage; fp32 operands hold bf16 exactly.
        return tl.float32, tl.float32, "ieee"
    # torch's recurrent layers follow cudnn.allow_tf32 for fp32 math.
    precision = "tf32" if dtype == torch.float32 and torch.backends.cudnn.allow_tf32 else "ieee"
    return dtypes.tl_dtype(dtype), tl.float32, precision


def _fp32_precision(dtype):
    """How fp32 products run ("tf32" or "ieee"); None for the other dtypes."""
    return _dot_types(dtype)[2] if dtype == torch.float32 else None


def _acc_torch_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def fused_meta(plan, code, H, K, backward, precision):
    """Constexprs and launch options a fused kernel (kernels/fused.py) runs with under
    `plan`, its products in fp32 `precision` ("ieee": on the FMA units; None for other
    dtypes): the launcher's and the compile report's one source."""
    warps = config.fused_warps(plan, code, H, K, backward, tensor_cores=precision != "ieee")
    return dict(GP=config.padded_gates(code), BLOCK_H=plan.block_h, BLOCK_K=plan.block_k,
                num_warps=warps, num_stages=plan.num_stages)


def split_meta(layout, code, H, K, itemsize, backward):
    """Constexprs and launch options a split kernel (kernels/split.py) runs with under
    `layout`, its states `itemsize` bytes an element: the launcher's and the compile
    report's one source."""
    plan = layout.plan
    res_chunks, res_proj, stream_w, stream_wr, stages = layout.kernel_resident(H, K, backward)
    warps = split_backward_warps(plan.num_warps) if backward else plan.num_warps
    meta = dict(GP=config.padded_gates(code), MULTI=layout.multi,
                RES_CHUNKS=res_chunks, RES_PROJ=res_proj, STREAM_W=stream_w,
                STREAM_WR=stream_wr, STREAM_STAGES=stages,
                SLICES_P2=layout.slices_p2,
                BLOCK_B=plan.block_b, BLOCK_N=plan.block_h, BLOCK_KC=plan.block_k,
                num_warps=warps, num_stages=plan.num_stages, maxnreg=split_maxnreg(warps))
    if backward:  # the partial products' sum (split.sum_partials): one load per slice
        tiles, slices, rows, cols = partials_shape(layout, 1, K)[2:]
        meta.update(SUM_SLICES=layout.n_slices,
                    WIDE_PARTS=tiles * slices * rows * cols >= 2 ** 31)
    else:
        meta.update(WHOLE=loads_h_unmasked(H, K, plan.block_k, res_chunks, itemsize))
    return meta


def partials_shape(layout, n_groups, K):
    """Shape of the split backward's partial products (split.sum_partials): two steps, each
    group's [tiles of K, slices, block_b, block_h] (K rounded up to whole tiles)."""
    plan = layout.plan
    return (2, n_groups, triton.cdiv(K, plan.block_h), layout.n_slices, plan.block_b,
            plan.block_h)


def _split_launch(layout, code, B, H, K, D, dtype, device, backward):
    """(grid, sync words, launch meta) of a split-regime launch under `layout` (decided by
    config.launch): the zeroed ticket/status/flag words, and within config.profile_split
    the profile's words and PROFILE in the meta (a measurement's hook)."""
    n_groups = triton.cdiv(B, layout.plan.block_b) * D
    profiled = config._split_profiles is not None
    words = FLAGS_AT.value + n_groups * 2 * layout.progs
    if profiled:
        words += n_groups * layout.progs * PROFILE_WORDS.value
    sync = torch.zeros(words, dtype=torch.int32, device=device)
    sync[2] = torch.iinfo(torch.int32).max  # first step a wait gave up at: none yet
    meta = split_meta(layout, code, H, K, dtype.itemsize, backward)
    if profiled:
        meta["PROFILE"] = 1
    return (layout.progs * n_groups,), sync, meta


def _after_split_launch(sync, grid, layout, meta, kernel):
    """Raise if the launch's programs gave up waiting (_check_waits); keep a profiled
    launch's step means (_keep_profile)."""
    _check_waits(sync, layout, kernel.removeprefix("split_"))
    if meta.get("PROFILE"):
        _keep_profile(sync, grid, layout, kernel)


def _keep_profile(sync, grid, layout, kernel):
    """A profiled split launch's per-program step means (config.profile_split), off its
    sync words: they follow the flags, grid[0] * 2 words (split.py's module doc)."""
    flags_end = FLAGS_AT.value + grid[0] * 2
    config._split_profiles.append(
        (kernel, sync[flags_end:].view(-1, layout.progs, PROFILE_WORDS.value).cpu()))


def _check_waits(sync, layout, what):
    """Raise if a split launch's programs gave up waiting for each other (their results are
    then wrong). Reading the status waits for the launch; skipped while a CUDA graph is
    being captured, where nothing may be read back."""
    if sync.is_cuda and torch.cuda.is_current_stream_capturing():
        return
    gave_up, step = sync[1:3].tolist()
    if gave_up:
        raise RuntimeError(
            f"tritonrnn {what}: a program of the split regime waited {config.SPIN_LIMIT} polls "
            f"at step {step} for the other {layout.progs - 1} programs of its group and gave "
            f"up, so the results are not valid. The {layout.progs} programs of a group must "
            "run at the same time; something else was probably holding the GPU's SMs "
            "(another process, or kernels on other streams).")


def _common(dtype):
    dot, acc, precision = _dot_types(dtype)
    return dict(DOT_DTYPE=dot, ACC_DTYPE=acc, PRECISION=precision)


def forward(xp, whh, bhn, whr, h0, c0, lengths, cell, training):
    """Run the recurrence over precomputed input projections.

    xp: [T, B, D, G, H]; whh: [D, G*H, K]; bhn: [D, H] or None (GRU); whr: [D, K, H] or None;
    h0: [D, B, K] or None; c0: [D, B, H] or None; lengths: int32 [B] on xp's device or None.
    Returns y [T, B, D, K], h_n [D, B, K], c_n [D, B, H] or None, and the saved tensors
    act [D, T, B, S, H] and cs [D, T, B, H] (None unless training).
    """
    code = CELL_CODES[cell]
    T, B, D, G, H = xp.shape
    K = whh.shape[2]
    dev, dtype = xp.device, xp.dtype
    S = SAVED[code]
    decided = config.launch(code, H, K, dtype, B, dev, D)
    plan = decided.plan
    y = new_output((T, B, D, K), dtype, dev)
    h_n = new_output((D, B, K), dtype, dev)
    c_n = new_output((D, B, H), dtype, dev) if code == LSTM else None
    act = new_output((D, T, B, S, H), dtype, dev) if training else None
    cs = new_output((D, T, B, H), dtype, dev) if training and code == LSTM else None
    flags = dict(CELL=code, G=G, S=S, HAS_BHN=bhn is not None,
                 PROJ=whr is not None, VARLEN=lengths is not None, TRAINING=training,
                 BLOCK_B=plan.block_b, **_common(dtype))
    dummy = xp  # stands in for pointers a constexpr flag leaves unused
    args = (bhn if bhn is not None else dummy, whr if whr is not None else dummy)
    n_btiles = triton.cdiv(B, plan.block_b)
    if not plan.split:
        fused_forward_kernel[(n_btiles, D)](
            xp, whh, *args, h0 if h0 is not None else dummy, c0 if c0 is not None else dummy,
            lengths if lengths is not None else dummy, y, h_n, c_n if c_n is not None else dummy,
            act if act is not None else dummy, cs if cs is not None else dummy,
            T, B, H, K, D, HAS_H0=h0 is not None, HAS_C0=c0 is not None,
            **fused_meta(plan, code, H, K, False, _fp32_precision(dtype)), **flags)
        launches.record("fused_forward")
        return y, h_n, c_n, act, cs

    grid, sync, meta = _split_launch(decided.layout, code, B, H, K, D, dtype, dev, False)
    if config._split_ablation:  # a measurement's hook (config.ablate_split_forward)
        meta["ABLATE"] = config._split_ablation
    layout = decided.layout
    acc = _acc_torch_dtype(dtype)
    ring = torch.zeros((2, D, B, K), dtype=dtype, device=dev)  # h in the storage dtype
    h_work = torch.zeros((D, B, K), dtype=acc, device=dev)
    c_work = torch.zeros((D, B, H), dtype=acc, device=dev)
    if h0 is not None:
        ring[1].copy_(h0)
        h_work.copy_(h0)
    if c0 is not None:
        c_work.copy_(c0)
    hh = torch.empty((D, B, H), dtype=dtype, device=dev) if whr is not None else dummy
    split_forward_kernel[grid](
        xp, whh, *args, lengths if lengths is not None else dummy, y,
        act if act is not None else dummy, cs if cs is not None else dummy, ring, hh, c_work,
        h_work, sync, T, B, H, K, D, layout.progs, config.SPIN_LIMIT,
        **dict(flags, **meta))
    launches.record("split_forward")
    _after_split_launch(sync, grid, layout, meta, "split_forward")
    h_n.copy_(h_work)
    if c_n is not None:
        c_n.copy_(c_work)
    return y, h_n, c_n, act, cs


def backward(dy, dh_n, dc_n, act, cs, y, h0, c0, lengths, whh, whr, cell):
    """Gradients through the recurrence (the matmuls with W_ih happen outside).

    dy: [T, B, D, K] or None; dh_n: [D, B, K] or None; dc_n: [D, B, H] or None.
    Returns dxp [T, B, D, G, H] (input-side pre-activation gradients, zero past each length),
    dhg [D, T, B, H] (GRU: recurrent-side gradient of gate n) or None,
    dhs [D, T, B, K] (projection: total gradient of h per step) or None, dh0, dc0 (or None).
    """
    code = CELL_CODES[cell]
    D, T, B, S, H = act.shape
    G = GATES[code]
    K = whh.shape[2]
    dev, dtype = act.device, act.dtype
    decided = config.launch(code, H, K, dtype, B, dev, D)
    plan = decided.plan
    dxp = new_output((T, B, D, G, H), dtype, dev)
    dhg = new_output((D, T, B, H), dtype, dev) if code == GRU else None
    dhs = new_output((D, T, B, K), dtype, dev) if whr is not None else None
    dh0 = new_output((D, B, K), dtype, dev)
    dc0 = new_output((D, B, H), dtype, dev) if code == LSTM else None
    dummy = act
    flags = dict(CELL=code, G=G, S=S, HAS_DY=dy is not None, HAS_H0=h0 is not None,
                 HAS_C0=c0 is not None, PROJ=whr is not None, VARLEN=lengths is not None,
                 BLOCK_B=plan.block_b, **_common(dtype))
    opt = lambda t: t if t is not None else dummy  # noqa: E731
    n_btiles = triton.cdiv(B, plan.block_b)
    if not plan.split:
        fused_backward_kernel[(n_btiles, D)](
            opt(dy), opt(dh_n), opt(dc_n), act, opt(cs), y, opt(h0), opt(c0), opt(lengths),
            whh, opt(whr), dxp, opt(dhg), opt(dhs), dh0, opt(dc0),
            T, B, H, K, D, HAS_DHN=dh_n is not None, HAS_DCN=dc_n is not None,
            **fused_meta(plan, code, H, K, True, _fp32_precision(dtype)), **flags)
        launches.record("fused_backward")
        return dxp, dhg, dhs, dh0, dc0

    grid, sync, meta = _split_launch(decided.layout, code, B, H, K, D, dtype, dev, True)
    layout = decided.layout
    acc = _acc_torch_dtype(dtype)
    n_groups = triton.cdiv(B, layout.plan.block_b) * D
    # every slice's partial product of dh_{t-1}, two steps' worth; zeroed: sum_partials reads
    # the rows past K of the last tile, which nobody writes
    parts = torch.zeros(partials_shape(layout, n_groups, K), dtype=acc, device=dev)
    dhx = torch.empty((D, B, K), dtype=acc, device=dev) if whr is not None else parts
    dh_work = torch.zeros((2, D, B, K), dtype=acc, device=dev)
    dc_work = torch.zeros((D, B, H), dtype=acc, device=dev)
    if dh_n is not None:
        dh_work[0].copy_(dh_n)
    if dc_n is not None:
        dc_work.copy_(dc_n)
    split_backward_kernel[grid](
        opt(dy), act, opt(cs), y, opt(h0), opt(c0), opt(lengths), whh, opt(whr), dxp, opt(dhg),
        opt(dhs), parts, dhx, dc_work, dh_work, sync, T, B, H, K, D, layout.progs,
        config.SPIN_LIMIT, **dict(flags, **meta))
    launches.record("split_backward")
    _after_split_launch(sync, grid, layout, meta, "split_backward")
    dh0.copy_(dh_work[0])
    if dc0 is not None:
        dc0.copy_(dc_work)
    return dxp, dhg, dhs, dh0, dc0
