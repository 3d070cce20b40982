"""Run the recurrence kernels on tensors of more than 2^31 elements without the memory for them.

Run as ``python -m tests.offsets_worker`` under TRITON_INTERPRET=1 (test_extreme_sizes.py does,
in a subprocess, so that an out-of-bounds access from a wrapped 32-bit offset fails the test
instead of killing pytest).

How: every tensor whose size scales with B is a view of an anonymous MAP_NORESERVE mapping.
Such a mapping reserves address space only; a page takes memory when it is first touched, and
untouched pages read as zero. With B = 2^31 - 16 and H = 2 the buffers hold 2^33 to 2^37
elements, but only the first batch tile (16 rows) is filled, and the launch grid is cut down to
that one tile per direction: the programs still compute every offset from the full B, T, D,
G, H, so the rows they address for t >= 1 or d = 1 lie past 2^31 elements (t*B alone passes
2^31 at t = 2; (d*B + b)*K at d = 1). B stays below 2^31 on purpose: a larger B would reach the
kernel as a 64-bit argument and make every product 64-bit whatever the code says.

The same problem run with B = 16 (ordinary tensors) is the oracle: each row's recurrence is
independent of the others, so the huge-B run must reproduce it bit for bit. The fused regime
goes through the real launchers (kernels.recurrence.forward/backward); the split regime's
kernels are launched here directly, because its launcher allocates whole state buffers.
"""
import mmap
import os
import sys
from unittest import mock

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import torch  # noqa: E402

from tritonrnn.kernels import config, recurrence  # noqa: E402
from tritonrnn.kernels.cells import CELL_CODES, GATES, SAVED  # noqa: E402

BLOCK_B = config.BLOCK_B
HUGE_B = 2 ** 31 - BLOCK_B
T, H = 3, 2
# Linux's MAP_NORESERVE (the mmap module names it from Python 3.12 on).
MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)


def sparse(shape, dtype):
    """A zero tensor of `shape` that costs memory only for the pages written or read."""
    n = 1
    for s in shape:
        n *= s
    nbytes = max(n * torch.empty((), dtype=dtype).element_size(), 1)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_NORESERVE)
    return torch.frombuffer(buf, dtype=dtype).view(shape)


def _huge(small, batch_dim):
    """`small` (batch of BLOCK_B along batch_dim) copied into the first rows of a sparse tensor
    whose batch dimension is HUGE_B."""
    if small is None:
        return None
    shape = list(small.shape)
    shape[batch_dim] = HUGE_B
    big = sparse(shape, small.dtype)
    big.narrow(batch_dim, 0, BLOCK_B).copy_(small)
    return big


def _first_rows(t, batch_dim):
    return None if t is None else t.narrow(batch_dim, 0, BLOCK_B)


class _FirstBatchTile:
    """Wraps a jitted kernel so that kernel[grid] launches only the first batch tile."""

    def __init__(self, kernel, batch_axis):
        self.kernel, self.batch_axis = kernel, batch_axis

    def __getitem__(self, grid):
        grid = tuple(1 if i == self.batch_axis else g for i, g in enumerate(grid))
        return self.kernel[grid]


def _problem(cell, proj, D, gen):
    G = GATES[CELL_CODES[cell]]
    K = 1 if proj else H
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    lengths = torch.tensor([T, 1, 2] + [T] * (BLOCK_B - 3), dtype=torch.int32)
    return dict(
        xp=r(T, BLOCK_B, D, G, H), whh=r(D, G * H, K) * 0.5,
        bhn=r(D, H) if cell == "GRU" else None, whr=r(D, K, H) if proj else None,
        h0=r(D, BLOCK_B, K), c0=r(D, BLOCK_B, H) if cell == "LSTM" else None,
        lengths=lengths, dy=r(T, BLOCK_B, D, K), dh_n=r(D, BLOCK_B, K),
        dc_n=r(D, BLOCK_B, H) if cell == "LSTM" else None)


# Batch dimension of every tensor the launchers take or return.
_BATCH_DIM = dict(xp=1, h0=1, c0=1, lengths=0, dy=1, dh_n=1, dc_n=1, y=1, h_n=1, c_n=1,
                  act=2, cs=2, dxp=1, dhg=2, dhs=2, dh0=1, dc0=1)
_FORWARD_OUT = ("y", "h_n", "c_n", "act", "cs")
_BACKWARD_OUT = ("dxp", "dhg", "dhs", "dh0", "dc0")


def _run_fused(cell, p):
    fwd = recurrence.forward(p["xp"], p["whh"], p["bhn"], p["whr"], p["h0"], p["c0"],
                             p["lengths"], cell, True)
    out = dict(zip(_FORWARD_OUT, fwd))
    bwd = recurrence.backward(p["dy"], p["dh_n"], p["dc_n"], out["act"], out["cs"], out["y"],
                              p["h0"], p["c0"], p["lengths"], p["whh"], p["whr"], cell)
    out.update(zip(_BACKWARD_OUT, bwd))
    return out


# The fused plan is pinned (whatever a tuning table would pick) so that the first batch tile
# is exactly the BLOCK_B rows filled here.
FUSED_PLAN = config.Plan(False, BLOCK_B, config.block(H), config.block(H), 4)


def check_fused(cell, proj, D):
    gen = torch.Generator().manual_seed(0)
    small = _problem(cell, proj, D, gen)
    with config.force_plan(FUSED_PLAN):
        expected = _run_fused(cell, small)
    huge = {k: (v if k not in _BATCH_DIM else _huge(v, _BATCH_DIM[k])) for k, v in small.items()}
    allocate = lambda shape, dtype, device: sparse(shape, dtype)  # noqa: E731
    with mock.patch.object(recurrence, "new_output", allocate), \
         mock.patch.object(recurrence, "fused_forward_kernel",
                           _FirstBatchTile(recurrence.fused_forward_kernel, 0)), \
         mock.patch.object(recurrence, "fused_backward_kernel",
                           _FirstBatchTile(recurrence.fused_backward_kernel, 0)), \
         config.force_plan(FUSED_PLAN):
        got = _run_fused(cell, huge)
    assert got["y"].shape[1] == HUGE_B and got["y"].numel() > 2 ** 31
    return _compare(f"fused {cell}{' proj' if proj else ''} D={D}", got, expected)


def _compare(label, got, expected):
    for name, want in expected.items():
        if want is None:
            assert got[name] is None, f"{label}: {name}"
            continue
        rows = _first_rows(got[name], _BATCH_DIM[name])
        if not torch.equal(rows, want):
            diff = (rows - want).abs().max().item()
            raise AssertionError(f"{label}: {name} differs from the B={BLOCK_B} run "
                                 f"(max |diff| {diff}); a 32-bit offset wrapped?")
    return len(expected)


def check_split(cell, D):
    """The split kernels, forward then backward, on huge-B buffers, launched as the launcher
    launches them under the interpreter (one program per batch tile and direction walking
    every hidden slice; here the first batch tile only, and H = 2 is one slice); the B=16
    oracle runs the real launcher under config.force_split."""
    gen = torch.Generator().manual_seed(1)
    p = _problem(cell, False, D, gen)
    with config.force_split(16, reduction_chunk=16):
        expected = _run_fused(cell, p)  # the launcher takes the split regime here
    code = CELL_CODES[cell]
    G, S, K = GATES[code], SAVED[code], H
    big = {k: (v if k not in _BATCH_DIM else _huge(v, _BATCH_DIM[k])) for k, v in p.items()}
    B = HUGE_B
    f32 = torch.float32
    y, act = sparse((T, B, D, K), f32), sparse((D, T, B, S, H), f32)
    cs = sparse((D, T, B, H), f32) if code == 2 else act
    ring, hh = sparse((2, D, B, K), f32), sparse((D, B, H), f32)
    ring[1, :, :BLOCK_B].copy_(p["h0"])
    h_work, c_work = sparse((D, B, K), f32), sparse((D, B, H), f32)
    h_work[:, :BLOCK_B].copy_(p["h0"])
    if p["c0"] is not None:
        c_work[:, :BLOCK_B].copy_(p["c0"])
    # Tickets hand out groups (batch tile, direction) in order: D programs cover the first
    # batch tile of each direction; the sync words hold those D groups' flags.
    def new_sync():
        sync = torch.zeros(recurrence.FLAGS_AT.value + D * 2, dtype=torch.int32)
        sync[2] = torch.iinfo(torch.int32).max
        return sync
    plan = config.Plan(True, BLOCK_B, 16, 16, 4)
    layout = config.SplitLayout(plan, progs=1, n_slices=1, res_chunks=1, res_proj=0)
    meta = recurrence.split_meta(layout, code, H, K, 4, backward=False)
    common = dict(CELL=code, G=G, S=S, PROJ=False, VARLEN=True, **recurrence._common(f32))
    # Arguments as kernels/recurrence.py passes them: a constexpr-disabled pointer gets a dummy.
    bhn = big["bhn"] if big["bhn"] is not None else big["xp"]
    sync = new_sync()
    recurrence.split_forward_kernel[(D,)](
        big["xp"], p["whh"], bhn, big["xp"], big["lengths"], y, act, cs, ring, hh, c_work,
        h_work, sync, T, B, H, K, D, 1, config.SPIN_LIMIT, HAS_BHN=big["bhn"] is not None,
        TRAINING=True, **common, **meta)
    assert sync[1] == 0, "a wait gave up"
    dxp = sparse((T, B, D, G, H), f32)
    dhg = sparse((D, T, B, H), f32) if code == 3 else act
    n_groups = -(-B // BLOCK_B) * D
    parts = sparse(recurrence.partials_shape(layout, n_groups, K), f32)  # slot 1 past 2^31
    dh_work, dc_work = sparse((2, D, B, K), f32), sparse((D, B, H), f32)
    dh_work[0, :, :BLOCK_B].copy_(p["dh_n"])
    if p["dc_n"] is not None:
        dc_work[:, :BLOCK_B].copy_(p["dc_n"])
    bc0 = big["c0"] if big["c0"] is not None else act
    sync = new_sync()
    meta = recurrence.split_meta(layout, code, H, K, 4, backward=True)
    recurrence.split_backward_kernel[(D,)](
        big["dy"], act, cs, y, big["h0"], bc0, big["lengths"], p["whh"], act, dxp, dhg, act,
        parts, parts, dc_work, dh_work, sync, T, B, H, K, D, 1, config.SPIN_LIMIT,
        HAS_DY=True, HAS_H0=True, HAS_C0=big["c0"] is not None, **common, **meta)
    assert sync[1] == 0, "a wait gave up"
    got = dict(y=y, act=act, dxp=dxp, h_n=h_work, dh0=dh_work[0])
    if code == 2:
        got.update(cs=cs, c_n=c_work, dc0=dc_work)  # the final c and dc stay in the buffers
    if code == 3:
        got["dhg"] = dhg
    want = {k: expected[k] for k in got}
    return _compare(f"split {cell} D={D}", got, want)


def main():
    compared = 0
    # LSTM with projection covers every LSTM buffer plus dhs; GRU covers b_hn and dhg.
    for cell, proj in (("LSTM", True), ("GRU", False)):
        compared += check_fused(cell, proj, D=2)
    for cell in ("LSTM", "GRU"):
        compared += check_split(cell, D=2)
    print(f"OK {compared} tensors bitwise equal")


if __name__ == "__main__":
    sys.exit(main())
