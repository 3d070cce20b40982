"""Recurrence with the hidden units split across programs, each keeping its rows of W_hh on chip.

Work: (hidden slices, batch tiles, directions). A group of `progs` programs serves one
(batch tile, direction); slice s (BLOCK_N hidden units) belongs to program s % progs. All T
steps run in one launch.

Weights stay resident. A program's first slice owns M = GP * BLOCK_N rows of W_hh (its units'
rows of every gate, gate-major; GRU's three gates are padded to GP = 4 with zero rows so that
M = 64 at BLOCK_N = 16). Before the time loop the program loads them as RES_CHUNKS
loop-invariant [M, BLOCK_KC] tiles: Triton keeps the shared-memory copy of a loop-invariant
dot operand out of the loop, so W_hh is read from DRAM once per sequence. The products are
taken transposed, acc^T [M, BLOCK_B] = W_rows @ h^T, so M is the MMA's tall side (sm_90 runs
wgmma reading W straight from shared memory) and the batch rides in its narrow side. Columns
of K past RES_CHUNKS * BLOCK_KC (large K, or fewer chunks where more spilled:
config.clean_resident), and the rows of further slices of a program that walks several
(MULTI), are streamed from global memory each step, in a loop of STREAM_STAGES pipeline
stages. W_hr (projection) is held the same way by the programs that own slices of K.

Exchange, not a barrier. Every step needs all of h_{t-1}. Each program writes its units' h
into a two-slot ring in the storage dtype (h after step s in slot s % 2, h0 in slot 1), then
publishes the step in its own flag (one release store); the others poll the group's flags
with relaxed loads (no read-modify-write, no L1 invalidation), then read all of h_{t-1} in
one round trip (strong loads, served by L2; with no mask where the sizes allow:
load_columns). A program keeps its own units' h and c in fp32 registers. Backward keeps the
same rows of W_hh: each program forms the partial product W_rows^T @ dG^T [K, B] of its
slice's gate gradients and writes it; after the exchange the owner of each slice of K sums
the partials of every slice in a fixed order, so results are bitwise the same whatever the
number of programs. With a projection each step has two exchanges (the cell output, then h).

Memory ordering, and what is not yet proven: the producer's data stores are ordered before
its flag by the release (a GPU-scope fence); the consumer's data loads are strong loads
issued only after its poll loop has seen every flag (a control dependency), so they reach L2
after the data did. The PTX memory model guarantees this only with an acquire on the
consumer's side, which would invalidate L1 each step; NVIDIA GPUs do not issue loads
speculatively past a branch, which is what this relies on. The interpreter is sequentially
consistent and cannot show a violation: the gpu tier's parity tests (tests/test_gpu.py) are
where a stale read would show, and no GPU has run them yet.

Never hang. A group's programs take consecutive tickets from a counter in the order they
start, so the host only needs one group resident at a time (any number of groups runs in
waves). Every wait is bounded by `spin_limit` polls: past it the program records the step in
the status words and stops waiting for the rest of the launch; the host then raises.

Legend as in fused.py; tiles here are [units, batch] (transposed against fused.py).
sync_ptr (int32): [0] ticket counter, [1] status (1: a wait gave up), [2] first step that
gave up, [3] unused, then flags [groups, 2 phases, progs] (last step published, plus one),
then, in a profiled launch only, [groups, progs, PROFILE_WORDS].
"""
import triton
import triton.language as tl

from .cells import CELL_GRU, cell_backward, cell_forward
from .tiles import (dot_acc, gate_rows, load_input_projection, load_step_saved, load_units,
                    load_w_chunk, split_gates, stack_gates, step_coords, store_activations)

REGISTER_FILE = 64 * 1024  # 32-bit registers per SM, and per block (sm_80, sm_90)
# Width of the chunks of W streamed each step (the columns past a program's resident chunks,
# and every column of further slices): narrower than the resident chunks so that a streamed
# tile and its h chunk hold fewer registers (a 256-wide fp16 tile spilled at H = 2048).
STREAM_KC = tl.constexpr(64)
FLAGS_AT = tl.constexpr(4)        # first flag word in sync_ptr
STATUS_GAVE_UP = tl.constexpr(1)
# Partial products summed per round trip (split.sum_partials): loads in flight hold a
# register each, so 128 slices (H = 2048) at once spilled (LSTM_PROJ fp16 backward, sm_90,
# triton 3.9: 248 B). 64 leaves every H <= 1024 (16-unit slices) at one round trip.
SUM_BATCH = tl.constexpr(64)
# Parts of a forward step a GPU measurement may leave out, to see what each costs (bits of
# split_forward_kernel's ABLATE, set through config.ablate_split_forward; 0 in every real
# launch, and the results of an ablated launch are wrong).
ABLATE_NO_WAIT = tl.constexpr(1)   # no program waits for the others' flags
ABLATE_NO_FENCE = tl.constexpr(2)  # flags stored relaxed: no barrier-and-fence release
# Where a step's cycles go (the split kernels' PROFILE, set through config.profile_split;
# 0 in every real launch, GPU only: the interpreter has no clock). Each program writes,
# after the sync words' flags, PROFILE_WORDS int32: the mean SM cycles of its steps, of
# their waits (polling for the others' flags) and of their releases (barrier, fence, flag);
# the rest of a step is its own work.
PROFILE_WORDS = tl.constexpr(3)


@triton.jit
def clock64():
    """The SM's cycle counter (measurement only: the interpreter cannot run it). Not pure,
    so the compiler keeps it in order with the loads, stores and barriers around it."""
    return tl.inline_asm_elementwise("mov.u64 $0, %clock64;", "=l", [], dtype=tl.int64,
                                     is_pure=False, pack=1)


@triton.constexpr_function
def keeps(ablate, part):
    """Whether a step keeps `part` (an ABLATE_* bit) under the mask `ablate`."""
    value = lambda x: x.value if isinstance(x, tl.constexpr) else x  # noqa: E731
    return (value(ablate) & value(part)) == 0


def split_maxnreg(num_warps):
    """Register ceiling per thread for the split kernels. Left alone, ptxas caps some of them
    at 128 registers (room for a second program per SM) and spills; the split regime is built
    around one program per SM, so it may have all the block can hold (at most 255)."""
    return min(255, REGISTER_FILE // (32 * num_warps))


def split_backward_warps(num_warps):
    """Warps of the split backward kernel for a plan of `num_warps`: at least 8. It spilled
    at 4 before the partial sums were summed within each thread; at 4 it now compiles clean.
    (Its per-step global loads once seemed to halve at 8 warps, 26,880 B against 53,248 B
    at LSTM fp16 H=768, sm_90, AOT; the 8-warp kernel had been counted at the plan's 4
    warps. Counted at 8 it loads 53,760 B, so which is faster is for a GPU to say.)"""
    return max(8, num_warps)


# -- work, flags and waits ---------------------------------------------------------------

@triton.jit
def claim_work(sync_ptr, progs, D):
    """(program within group, batch tile, direction, group) of this program, by the order
    programs start (ticket counter sync_ptr[0])."""
    ticket = tl.atomic_add(sync_ptr, 1, sem="relaxed", scope="gpu")
    group = ticket // progs
    return ticket % progs, group // D, group % D, group


@triton.jit
def publish(flag_ptr, step_done, FENCED: tl.constexpr = True):
    """Tell the group this program's writes of a phase are done (flag = step_done).
    FENCED=False only to time the fence (ABLATE_NO_FENCE): the flag may then overtake the
    data."""
    tl.debug_barrier()  # every thread's stores are issued before the release
    if FENCED:
        tl.atomic_xchg(flag_ptr, step_done, sem="release", scope="gpu")
    else:
        tl.atomic_xchg(flag_ptr, step_done, sem="relaxed", scope="gpu")


@triton.jit
def wait_for_group(flag_row, progs, target, alive, spin_limit, sync_ptr, step,
                   SLICES_P2: tl.constexpr):
    """Wait until every program's flag in flag_row [progs] reaches `target`, polling at most
    spin_limit times. Returns `alive` (int32 1/0): 0 once any wait of this program gave up;
    a program that gave up records it in the status words and waits no more. `seen` is a
    reduction over the CTA, the same in every thread, so no barrier is needed after the
    loop (Triton adds the one its shared-memory scratch needs: a barrier of our own there
    cost the backward a barrier and 28 instructions a step, AOT, sm_90, triton 3.9)."""
    offs = tl.arange(0, SLICES_P2)
    mask = offs < progs
    seen = tl.min(tl.load(flag_row + offs, mask=mask, other=target, volatile=True), axis=0)
    polls = 0
    limit = spin_limit * alive
    while (seen < target) & (polls < limit):
        seen = tl.min(tl.load(flag_row + offs, mask=mask, other=target, volatile=True), axis=0)
        polls += 1
    ok = (seen >= target).to(tl.int32)
    if alive * (1 - ok) > 0:
        tl.atomic_xchg(sync_ptr + 1, STATUS_GAVE_UP, sem="relaxed", scope="gpu")
        tl.atomic_min(sync_ptr + 2, step, sem="relaxed", scope="gpu")
    return alive * ok


@triton.jit
def timed_publish(flag_ptr, step_done, spent, FENCED: tl.constexpr, PROFILE: tl.constexpr):
    """publish; PROFILE: also returns `spent` plus the cycles it took."""
    if PROFILE:
        start = clock64()
        publish(flag_ptr, step_done, FENCED)
        spent += clock64() - start
    else:
        publish(flag_ptr, step_done, FENCED)
    return spent


@triton.jit
def timed_wait(flag_row, progs, target, alive, spin_limit, sync_ptr, step, spent,
               SLICES_P2: tl.constexpr, PROFILE: tl.constexpr):
    """wait_for_group; returns (alive, `spent` plus the cycles it took when PROFILE)."""
    if PROFILE:
        start = clock64()
        alive = wait_for_group(flag_row, progs, target, alive, spin_limit, sync_ptr, step,
                               SLICES_P2)
        spent += clock64() - start
    else:
        alive = wait_for_group(flag_row, progs, target, alive, spin_limit, sync_ptr, step,
                               SLICES_P2)
    return alive, spent


@triton.jit
def store_profile(sync_ptr, group, pid_n, progs, T, B, D, spent_step, spent_wait,
                  spent_release, BLOCK_B: tl.constexpr):
    """A profiled launch's means over the steps (PROFILE_WORDS), after every group's flags."""
    steps = tl.maximum(T, 1)
    groups = tl.cdiv(B, BLOCK_B) * D
    where = sync_ptr + FLAGS_AT + groups * 2 * progs + (group * progs + pid_n) * PROFILE_WORDS
    tl.store(where, (spent_step // steps).to(tl.int32))
    tl.store(where + 1, (spent_wait // steps).to(tl.int32))
    tl.store(where + 2, (spent_release // steps).to(tl.int32))


# -- resident rows and products --------------------------------------------------------

@triton.jit
def load_resident(w_ptr, rows, rows_ok, row_stride, col_stride, L,
                  RES: tl.constexpr, M: tl.constexpr, BLOCK_KC: tl.constexpr,
                  DOT_DTYPE: tl.constexpr):
    """The first RES (<= 4) [M, BLOCK_KC] chunks of a program's rows, loaded once per launch
    and kept on chip (as loop-invariant dot operands)."""
    offs = tl.arange(0, BLOCK_KC)
    w0 = tl.zeros([M, BLOCK_KC], DOT_DTYPE)
    w1 = w0
    w2 = w0
    w3 = w0
    if RES > 0:
        w0 = load_w_chunk(w_ptr, rows, rows_ok, row_stride, col_stride, offs, L).to(DOT_DTYPE)
    if RES > 1:
        w1 = load_w_chunk(w_ptr, rows, rows_ok, row_stride, col_stride, BLOCK_KC + offs,
                          L).to(DOT_DTYPE)
    if RES > 2:
        w2 = load_w_chunk(w_ptr, rows, rows_ok, row_stride, col_stride, 2 * BLOCK_KC + offs,
                          L).to(DOT_DTYPE)
    if RES > 3:
        w3 = load_w_chunk(w_ptr, rows, rows_ok, row_stride, col_stride, 3 * BLOCK_KC + offs,
                          L).to(DOT_DTYPE)
    return w0, w1, w2, w3


# -- exchanged state ----------------------------------------------------------------------

def loads_h_unmasked(hidden, width, block_kc, resident, itemsize):
    """Whether the split forward loads the exchanged h with no mask (its WHOLE: load_columns):
    not projecting (width == hidden), the `resident` chunks of block_kc columns it loads
    beside its resident chunks of W all end within h, and h has 16 bits (`itemsize` bytes):
    fp32 and fp64 chunks hold 2-4x the registers (unmasked, RNN_RELU TF32 H=512's forward
    spilled 8 B, sm_80, triton 3.9)."""
    return width == hidden and resident * block_kc <= width and itemsize == 2


@triton.jit
def load_columns(src, state_col, kk, L, mask_b, WHOLE: tl.constexpr):
    """[len(kk), BLOCK_B] tile of a [D, B, L] exchange buffer, transposed: element [j, b] is
    src[state_col[b] * L + kk[j]]. Strong loads: the data another program just published.

    WHOLE (every kk < L, and state_col clamped to rows < B, as the forward's is): no mask,
    the batch lanes past B reading row B - 1, which nothing of theirs stores. Masked, each
    load cost a predicate and the zeroing of its registers: LSTM fp16 H=768 forward, sm_90,
    673 instructions a warp a step against 618 (triton 3.9), 602 against 544 (3.6), AOT.
    Else masked on both columns and batch."""
    ptrs = src + state_col * L + kk[:, None]
    if WHOLE:
        return tl.load(ptrs, volatile=True)
    return tl.load(ptrs, mask=(kk[:, None] < L) & mask_b[None, :], other=0.0, volatile=True)


@triton.jit
def rows_times_state(w0, w1, w2, w3, w_ptr, rows, rows_ok, row_stride, col_stride,
                     src, state_col, L, mask_b,
                     RES: tl.constexpr, STREAM: tl.constexpr, STAGES: tl.constexpr,
                     M: tl.constexpr, BLOCK_B: tl.constexpr,
                     BLOCK_KC: tl.constexpr, DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr,
                     PRECISION: tl.constexpr, WHOLE: tl.constexpr):
    """acc^T [M, BLOCK_B] = W[rows, :L] @ S^T, S [B, L] the exchanged state in src (rows
    state_col; mask_b, and WHOLE for the resident chunks' loads: load_columns):
    the resident chunks w0..w(RES-1) first, with every one of their state chunks loaded
    before the first product (one round trip), then (STREAM) the rest of L streamed, in a
    loop of STAGES pipeline stages (config.stream_stages_options). STREAM is a constexpr
    because the streaming loop's registers, even when it runs no trip, make a fully resident
    program spill."""
    offs = tl.arange(0, BLOCK_KC)
    acc = tl.zeros([M, BLOCK_B], ACC_DTYPE)
    s0 = tl.zeros([BLOCK_KC, BLOCK_B], src.dtype.element_ty)
    s1 = s0
    s2 = s0
    s3 = s0
    if RES > 0:
        s0 = load_columns(src, state_col, offs, L, mask_b, WHOLE)
    if RES > 1:
        s1 = load_columns(src, state_col, BLOCK_KC + offs, L, mask_b, WHOLE)
    if RES > 2:
        s2 = load_columns(src, state_col, 2 * BLOCK_KC + offs, L, mask_b, WHOLE)
    if RES > 3:
        s3 = load_columns(src, state_col, 3 * BLOCK_KC + offs, L, mask_b, WHOLE)
    if RES > 0:
        acc = dot_acc(w0, s0, acc, DOT_DTYPE, PRECISION)
    if RES > 1:
        acc = dot_acc(w1, s1, acc, DOT_DTYPE, PRECISION)
    if RES > 2:
        acc = dot_acc(w2, s2, acc, DOT_DTYPE, PRECISION)
    if RES > 3:
        acc = dot_acc(w3, s3, acc, DOT_DTYPE, PRECISION)
    if STREAM:  # narrower chunks than the resident ones: fewer registers in flight
        offs_s = tl.arange(0, STREAM_KC)
        for k0 in tl.range(RES * BLOCK_KC, L, STREAM_KC, num_stages=STAGES):
            kk = k0 + offs_s
            w = load_w_chunk(w_ptr, rows, rows_ok, row_stride, col_stride, kk, L)
            acc = dot_acc(w, load_columns(src, state_col, kk, L, mask_b, False), acc, DOT_DTYPE,
                          PRECISION)
    return acc


@triton.jit
def store_partial(part_ptr, w, stack, k0, K, tile_stride, BLOCK_B: tl.constexpr,
                  BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr, DOT_DTYPE: tl.constexpr,
                  ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    """Rows k0 + [0, BLOCK_KC) of a slice's partial product w^T @ stack, written into the
    tiles of K they fall in (part_ptr: the slice's [BLOCK_B, BLOCK_N] block in tile 0; tiles
    are tile_stride elements apart; layout in sum_partials)."""
    part = tl.dot(tl.trans(w).to(DOT_DTYPE), stack.to(DOT_DTYPE), out_dtype=ACC_DTYPE,
                  input_precision=PRECISION)
    r = tl.arange(0, BLOCK_KC)
    if BLOCK_KC % BLOCK_N == 0:  # whole tiles: every chunk shares one set of offsets
        part_ptr += (k0 // BLOCK_N) * tile_stride
        offs = (r // BLOCK_N) * tile_stride + r % BLOCK_N
    else:
        offs = ((k0 + r) // BLOCK_N) * tile_stride + (k0 + r) % BLOCK_N
    tl.store(part_ptr + offs[:, None] + tl.arange(0, BLOCK_B)[None, :] * BLOCK_N, part,
             mask=r[:, None] < K - k0)


@triton.jit
def rows_t_times_stack(w0, w1, w2, w3, w_ptr, rows, rows_ok, stack, part_ptr, K, tile_stride,
                       RES: tl.constexpr, STREAM: tl.constexpr, STAGES: tl.constexpr,
                       BLOCK_B: tl.constexpr,
                       BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
                       DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr,
                       PRECISION: tl.constexpr):
    """part [K, BLOCK_B] = W[rows, :K]^T @ stack [M, BLOCK_B]: a slice's share of dh_{t-1}."""
    if RES > 0:
        store_partial(part_ptr, w0, stack, 0, K, tile_stride, BLOCK_B, BLOCK_N, BLOCK_KC,
                      DOT_DTYPE, ACC_DTYPE, PRECISION)
    if RES > 1:
        store_partial(part_ptr, w1, stack, BLOCK_KC, K, tile_stride, BLOCK_B, BLOCK_N,
                      BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
    if RES > 2:
        store_partial(part_ptr, w2, stack, 2 * BLOCK_KC, K, tile_stride, BLOCK_B, BLOCK_N,
                      BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
    if RES > 3:
        store_partial(part_ptr, w3, stack, 3 * BLOCK_KC, K, tile_stride, BLOCK_B, BLOCK_N,
                      BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
    if STREAM:  # narrower chunks than the resident ones: fewer registers in flight
        offs = tl.arange(0, STREAM_KC)
        for k0 in tl.range(RES * BLOCK_KC, K, STREAM_KC, num_stages=STAGES):  # as forward
            w = load_w_chunk(w_ptr, rows, rows_ok, K, 1, k0 + offs, K)
            store_partial(part_ptr, w, stack, k0, K, tile_stride, BLOCK_B, BLOCK_N, STREAM_KC,
                          DOT_DTYPE, ACC_DTYPE, PRECISION)


@triton.jit
def sum_partials(tile_parts, BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr,
                 SUM_SLICES: tl.constexpr):
    """dh_{t-1} [BLOCK_N, BLOCK_B] at the rows of K of one tile (tile_parts): the sum of every
    slice's partial product, in slice order (so bitwise the same whatever the number of
    programs). Rows of the last tile past K are zeros nobody writes (the launcher zeroes the
    buffer), so the loads need no mask: masked, they cost 29 instructions a warp a step
    (LSTM fp16 H=768, sm_90, triton 3.9, AOT).

    Partials are stored tile-major, [tiles of K, slices, BLOCK_B, BLOCK_N]: the slices of
    one tile (tile_parts) lie next to each other, a constant BLOCK_N * BLOCK_B elements
    apart, so a thread needs one address for all of them (each load takes its slice's
    offset as an immediate). Each thread holds one element of every slice's block and sums
    them itself: dh comes out one element per thread, units contiguous like the step's
    other tiles (dy, c, the activations), and the cell's arithmetic runs in that layout with
    no conversion. (A [slices, K, BLOCK_B] layout summed across threads left dh, and every
    elementwise tile of the step with it, replicated over the threads that had held the
    slices, 16 copies at LSTM H=768, with per-element offsets held across the time loop:
    that spilled.) The loads are independent and go out together, SUM_BATCH at a time.
    SUM_SLICES is the number of slices (the launcher's layout.n_slices, cdiv(H, BLOCK_N)):
    up to SUM_BATCH of them, the loads are unrolled with no test of the slice (it cost an
    instruction per load: 48 LOP3 a step, LSTM fp16 H=768, sm_90)."""
    inner = tl.arange(0, BLOCK_N)[:, None] + tl.arange(0, BLOCK_B)[None, :] * BLOCK_N
    acc = tl.zeros([BLOCK_N, BLOCK_B], tile_parts.dtype.element_ty)
    if SUM_SLICES <= SUM_BATCH:
        for s in tl.static_range(SUM_SLICES):
            acc += tl.load(tile_parts + (s * BLOCK_N * BLOCK_B + inner), volatile=True)
    else:
        BATCH: tl.constexpr = SUM_BATCH
        for s0 in tl.range(0, SUM_SLICES, BATCH, num_stages=1):
            for j in tl.static_range(BATCH):
                s = s0 + j
                # the slice test as a vector: a scalar bool in a mask breaks the interpreter
                slice_ok = (tl.zeros([BLOCK_N], tl.int32) + s < SUM_SLICES)[:, None]
                acc += tl.load(tile_parts + (s * BLOCK_N * BLOCK_B + inner), mask=slice_ok,
                               other=0.0, volatile=True)
    return acc


# -- forward ---------------------------------------------------------------------------

@triton.jit
def forward_cell(
    n0, c, h_own, x0, x1, x2, x3, w0, w1, w2, w3, w_base, bhn_ptr, prev, cur, hh_ptr, y_ptr,
    act_ptr, cs_ptr, col, seq_col, state_col, mask_b, valid, d64, H, K,
    CELL: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, S: tl.constexpr,
    HAS_BHN: tl.constexpr, PROJ: tl.constexpr, TRAINING: tl.constexpr, RES: tl.constexpr,
    STREAM: tl.constexpr, STAGES: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
    WHOLE: tl.constexpr,
):
    """One forward step of the cell for units n0 + [0, BLOCK_N); c and h_own [BLOCK_N,
    BLOCK_B] are their c and (unprojected) h before it, in ACC_DTYPE, x0..x3 their input
    projections. Reads h_{t-1} from the ring slot prev (WHOLE: load_columns) and writes h to
    cur (projecting: the cell output to hh), y and what training saves; returns c and h_own
    after the step (kept past each length)."""
    offs_n = n0 + tl.arange(0, BLOCK_N)
    mask = (offs_n[:, None] < H) & mask_b[None, :]
    b_hn = tl.zeros([BLOCK_N, BLOCK_B], ACC_DTYPE)
    if HAS_BHN:
        b_hn += tl.load(bhn_ptr + d64 * H + offs_n, mask=offs_n < H,
                        other=0.0).to(ACC_DTYPE)[:, None]
    rows, rows_ok = gate_rows(n0, H, G, GP, BLOCK_N)
    acc = rows_times_state(w0, w1, w2, w3, w_base, rows, rows_ok, K, 1, prev, state_col, K, mask_b,
                           RES, STREAM, STAGES, GP * BLOCK_N, BLOCK_B, BLOCK_KC, DOT_DTYPE,
                           ACC_DTYPE, PRECISION, WHOLE)
    p0, p1, p2, p3 = split_gates(acc, GP, BLOCK_N, BLOCK_B)
    h_cell, c_new, a0, a1, a2, a3 = cell_forward(CELL, x0, x1, x2, x3, p0, p1, p2, p3, b_hn,
                                                 h_own, c)
    if PROJ:
        tl.store(hh_ptr + state_col * H + offs_n[:, None], h_cell.to(hh_ptr.dtype.element_ty),
                 mask=mask)
        h_next = h_own
    else:
        h_next = tl.where(valid, h_cell, h_own)
        tl.store(cur + state_col * K + offs_n[:, None], h_next.to(cur.dtype.element_ty),
                 mask=mask)
        tl.store(y_ptr + col * K + offs_n[:, None],
                 tl.where(valid, h_cell, 0.0).to(y_ptr.dtype.element_ty), mask=mask)
    if TRAINING:
        store_activations(act_ptr, cs_ptr, seq_col * S * H + offs_n[:, None],
                          seq_col * H + offs_n[:, None], mask, a0, a1, a2, a3, c_new, CELL, S, H)
    return tl.where(valid, c_new, c), h_next


@triton.jit
def forward_projection(
    p0_, h_own, r0, r1, r2, r3, wr_base, hh_ptr, cur, y_ptr, col, state_col, mask_b, valid,
    H, K, RES_PROJ: tl.constexpr, STREAM: tl.constexpr, STAGES: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_KC: tl.constexpr, DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """h[p0_ + [0, BLOCK_N)] = W_hr[those rows] @ hh^T for every unit of the cell output;
    writes h and y; returns h_own after the step (kept past each length). The cell output
    loads masked: a projecting forward never takes the unmasked loads (loads_h_unmasked)."""
    offs_p = p0_ + tl.arange(0, BLOCK_N)
    mask = (offs_p[:, None] < K) & mask_b[None, :]
    acc = rows_times_state(r0, r1, r2, r3, wr_base, offs_p.to(tl.int64), offs_p < K, H, 1,
                           hh_ptr, state_col, H, mask_b, RES_PROJ, STREAM, STAGES, BLOCK_N, BLOCK_B,
                           BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION, False)
    h_next = tl.where(valid, acc, h_own)
    tl.store(cur + state_col * K + offs_p[:, None], h_next.to(cur.dtype.element_ty), mask=mask)
    tl.store(y_ptr + col * K + offs_p[:, None],
             tl.where(valid, acc, 0.0).to(y_ptr.dtype.element_ty),
             mask=mask)
    return h_next


@triton.jit
def state_tile(state_ptr, W, state_col, n0, mask_b, BLOCK_N: tl.constexpr):
    """Pointers and mask of units n0 + [0, BLOCK_N) of a [D, B, W] state buffer."""
    offs = n0 + tl.arange(0, BLOCK_N)
    ptrs = state_ptr + state_col * W + offs[:, None]
    return ptrs, (offs[:, None] < W) & mask_b[None, :]


@triton.jit
def store_state(state_ptr, W, state_col, n0, mask_b, value, BLOCK_N: tl.constexpr):
    """Store value [BLOCK_N, BLOCK_B] at units n0 + [0, BLOCK_N) of a [D, B, W] state
    buffer, after the time loop. Its pointers are formed here, in an order common-
    subexpression elimination does not merge with state_tile's, so they are not kept live
    across the loop: kept, ptxas spilled them (32 B, LSTM fp16 H=1024 forward, sm_90,
    triton 3.6)."""
    units = tl.arange(0, BLOCK_N)[:, None]
    row = state_ptr + (state_col * W + n0)  # [1, BLOCK_B]
    tl.store(row + units, value, mask=(units < W - n0) & mask_b[None, :])


@triton.jit(do_not_specialize=["T", "B", "progs", "spin_limit"])
def split_forward_kernel(
    xp_ptr,     # [T, B, D, G, H] input projections, biases folded in except GRU's b_hn
    whh_ptr,    # [D, G*H, K]
    bhn_ptr,    # [D, H]
    whr_ptr,    # [D, K, H] (K = P)
    len_ptr,    # [B] int32
    y_ptr,      # [T, B, D, K]
    act_ptr,    # [D, T, B, S, H]
    cs_ptr,     # [D, T, B, H]
    ring_ptr,   # [2, D, B, K] storage dtype: h after step s in slot s % 2; slot 1 = h0
    hh_ptr,     # [D, B, H] storage dtype, projection: the current step's cell output
    c_ptr,      # [D, B, H] ACC_DTYPE: c0 (or zeros) on entry, c_n on exit
    h_ptr,      # [D, B, K] ACC_DTYPE: h0 (or zeros) on entry, h_n on exit
    sync_ptr,   # int32 [4 + groups * 2 * progs (+ profile)], module doc; zero but [2] = INT32_MAX
    T, B, H, K, D, progs, spin_limit,
    CELL: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, S: tl.constexpr,
    HAS_BHN: tl.constexpr, PROJ: tl.constexpr, VARLEN: tl.constexpr, TRAINING: tl.constexpr,
    MULTI: tl.constexpr, RES_CHUNKS: tl.constexpr, RES_PROJ: tl.constexpr,
    STREAM_W: tl.constexpr, STREAM_WR: tl.constexpr, STREAM_STAGES: tl.constexpr,
    SLICES_P2: tl.constexpr, WHOLE: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
    ABLATE: tl.constexpr = 0, PROFILE: tl.constexpr = 0,
):
    WAITS: tl.constexpr = keeps(ABLATE, ABLATE_NO_WAIT)
    FENCED: tl.constexpr = keeps(ABLATE, ABLATE_NO_FENCE)
    pid_n, pid_b, d, group = claim_work(sync_ptr, progs, D)
    flags_cell = sync_ptr + FLAGS_AT + group * 2 * progs   # [progs] phase 0: h (or hh) out
    flags_out = flags_cell  # the phase that completes h
    if PROJ:
        flags_out = flags_cell + progs
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    if WHOLE:  # lanes past B take row B - 1: all they store is masked, so h needs no mask
        # (clamped where it is not needed, the projected LSTM's TF32 forward at H=256 spilled
        # 16 B on sm_90; rows padded to whole batch tiles instead took a second row index,
        # which spilled LSTM fp16 H=2048's on sm_80 under triton 3.6, 32 B)
        b64 = tl.minimum(offs_b, B - 1).to(tl.int64)
    d64 = d.to(tl.int64)
    state_col = (d64 * B + b64)[None, :]  # [1, BLOCK_B] row of (d, b) in [D, B, *] buffers
    ring_slot = B.to(tl.int64) * D * K    # elements per ring slot; int64: D*B*K can pass 2^31
    w_base = whh_ptr + d64 * G * H * K
    wr_base = whr_ptr + d64 * K * H
    n_cell = tl.cdiv(H, BLOCK_N)  # slices of the cell phase
    n_out = tl.cdiv(K, BLOCK_N)   # slices of the projection phase
    n_own = pid_n * BLOCK_N       # first unit of the program's first slice

    # This program's first slice: its rows of W_hh (and W_hr) on chip for the whole launch,
    # its c and h in registers.
    rows, rows_ok = gate_rows(n_own, H, G, GP, BLOCK_N)
    w0, w1, w2, w3 = load_resident(w_base, rows, rows_ok, K, 1, K, RES_CHUNKS, GP * BLOCK_N,
                                   BLOCK_KC, DOT_DTYPE)
    offs_own = n_own + tl.arange(0, BLOCK_N)
    r0, r1, r2, r3 = w0, w0, w0, w0
    if PROJ:
        r0, r1, r2, r3 = load_resident(wr_base, offs_own.to(tl.int64), offs_own < K, H, 1, H,
                                       RES_PROJ, BLOCK_N, BLOCK_KC, DOT_DTYPE)
    c_ptrs, c_mask = state_tile(c_ptr, H, state_col, n_own, mask_b, BLOCK_N)
    h_ptrs, h_mask = state_tile(h_ptr, K, state_col, n_own, mask_b, BLOCK_N)
    c = tl.load(c_ptrs, mask=c_mask, other=0.0)
    h_own = tl.load(h_ptrs, mask=h_mask, other=0.0)
    lens = tl.zeros([BLOCK_B], tl.int32) + T
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)
    alive = 1
    spent_step = tl.zeros([], tl.int64)  # PROFILE: cycles summed over the steps
    spent_wait = spent_step
    spent_release = spent_step

    for step in range(T):
        if PROFILE:
            step_start = clock64()
        t = step + d * (T - 1 - 2 * step)  # forward: step; reverse: T - 1 - step
        t64 = t.to(tl.int64)
        valid = (mask_b & (t < lens))[None, :]
        prev = ring_ptr + ring_slot * ((step + 1) % 2)
        cur = ring_ptr + ring_slot * (step % 2)
        col = ((t64 * B + b64) * D + d64)[None, :]      # (t, b, d) in [T, B, D, *]
        seq_col = ((d64 * T + t64) * B + b64)[None, :]  # (d, t, b) in [D, T, B, *]
        # the input projection goes out before waiting for h_{t-1}
        x0, x1, x2, x3 = load_input_projection(xp_ptr, n_own, col, mask_b, H, G, BLOCK_N,
                                               ACC_DTYPE)
        if WAITS:
            alive, spent_wait = timed_wait(flags_out, progs, step, alive, spin_limit, sync_ptr,
                                           step, spent_wait, SLICES_P2, PROFILE)
        # the cell output of every owned slice
        c, h_cell_own = forward_cell(
            n_own, c, h_own, x0, x1, x2, x3, w0, w1, w2, w3, w_base, bhn_ptr, prev, cur, hh_ptr,
            y_ptr, act_ptr, cs_ptr, col, seq_col, state_col, mask_b, valid, d64, H, K, CELL, G, GP,
            S, HAS_BHN, PROJ, TRAINING, RES_CHUNKS, STREAM_W, STREAM_STAGES, BLOCK_B, BLOCK_N,
            BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION, WHOLE)
        if not PROJ:
            h_own = h_cell_own
        if MULTI:
            for sl in range(pid_n + progs, n_cell, progs):
                sc_ptrs, sc_mask = state_tile(c_ptr, H, state_col, sl * BLOCK_N, mask_b,
                                              BLOCK_N)
                sh_ptrs, sh_mask = state_tile(h_ptr, K, state_col, sl * BLOCK_N, mask_b,
                                              BLOCK_N)
                xs0, xs1, xs2, xs3 = load_input_projection(xp_ptr, sl * BLOCK_N, col, mask_b, H,
                                                           G, BLOCK_N, ACC_DTYPE)
                c_sl, h_sl = forward_cell(
                    sl * BLOCK_N, tl.load(sc_ptrs, mask=sc_mask, other=0.0),
                    tl.load(sh_ptrs, mask=sh_mask, other=0.0), xs0, xs1, xs2, xs3, w0, w1, w2,
                    w3, w_base, bhn_ptr, prev, cur, hh_ptr, y_ptr, act_ptr, cs_ptr, col, seq_col,
                    state_col, mask_b, valid, d64, H, K, CELL, G, GP, S, HAS_BHN, PROJ, TRAINING, 0,
                    True, STREAM_STAGES, BLOCK_B, BLOCK_N, BLOCK_KC, DOT_DTYPE, ACC_DTYPE,
                    PRECISION, WHOLE)
                tl.store(sc_ptrs, c_sl, mask=sc_mask)
                if not PROJ:
                    tl.store(sh_ptrs, h_sl, mask=sh_mask)
        spent_release = timed_publish(flags_cell + pid_n, step + 1, spent_release, FENCED,
                                      PROFILE)
        if PROJ:  # h = W_hr hh, once every cell output of the step is out
            if WAITS:
                alive, spent_wait = timed_wait(flags_cell, progs, step + 1, alive, spin_limit,
                                               sync_ptr, step, spent_wait, SLICES_P2, PROFILE)
            if pid_n < n_out:
                h_own = forward_projection(
                    n_own, h_own, r0, r1, r2, r3, wr_base, hh_ptr, cur, y_ptr, col, state_col,
                    mask_b, valid, H, K, RES_PROJ, STREAM_WR, STREAM_STAGES, BLOCK_B, BLOCK_N,
                    BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
            if MULTI:
                for sl in range(pid_n + progs, n_out, progs):
                    sh_ptrs, sh_mask = state_tile(h_ptr, K, state_col, sl * BLOCK_N, mask_b,
                                                  BLOCK_N)
                    h_sl = forward_projection(
                        sl * BLOCK_N, tl.load(sh_ptrs, mask=sh_mask, other=0.0), r0, r1, r2,
                        r3, wr_base, hh_ptr, cur, y_ptr, col, state_col, mask_b, valid, H, K, 0,
                        True, STREAM_STAGES, BLOCK_B, BLOCK_N, BLOCK_KC, DOT_DTYPE, ACC_DTYPE,
                        PRECISION)
                    tl.store(sh_ptrs, h_sl, mask=sh_mask)
            spent_release = timed_publish(flags_out + pid_n, step + 1, spent_release, FENCED,
                                          PROFILE)
        if PROFILE:
            spent_step += clock64() - step_start

    store_state(c_ptr, H, state_col, n_own, mask_b, c, BLOCK_N)
    store_state(h_ptr, K, state_col, n_own, mask_b, h_own, BLOCK_N)  # none past K's slices
    if PROFILE:
        store_profile(sync_ptr, group, pid_n, progs, T, B, D, spent_step, spent_wait,
                      spent_release, BLOCK_B)


# -- backward --------------------------------------------------------------------------

@triton.jit
def backward_cell(
    n0, dc, dh_cell, a0, a1, a2, a3, c_t, c_prev, h_prev, w0, w1, w2, w3, w_base, dxp_ptr,
    dhg_ptr, part_ptr, tile_stride, col, seq_col, mask_b, valid, H, K,
    CELL: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, RES: tl.constexpr,
    STREAM: tl.constexpr, STAGES: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    """Gate gradients of one step for units n0 + [0, BLOCK_N), given dc_t, the gradient of
    their cell output dh_cell [BLOCK_N, BLOCK_B] and what the forward saved (load_step_saved):
    writes dxp (and GRU's dhg) and the slice's partial product W_rows^T @ dG^T into part_ptr
    (store_partial); returns dc_{t-1} (kept past each length) and GRU's direct share of
    dh_{t-1} (z * dh)."""
    offs_n = n0 + tl.arange(0, BLOCK_N)
    mask = (offs_n[:, None] < H) & mask_b[None, :]
    g0, g1, g2, g3, g_hn, dc_prev, dh_direct = cell_backward(
        CELL, a0, a1, a2, a3, c_t, c_prev, h_prev, dh_cell, dc)
    g0 = tl.where(valid, g0, 0.0)
    g1 = tl.where(valid, g1, 0.0)
    g2 = tl.where(valid, g2, 0.0)
    g3 = tl.where(valid, g3, 0.0)
    dxp_offs = col * G * H + offs_n[:, None]
    ty = dxp_ptr.dtype.element_ty
    tl.store(dxp_ptr + dxp_offs, g0.to(ty), mask=mask)
    if G > 1:
        tl.store(dxp_ptr + dxp_offs + H, g1.to(ty), mask=mask)
        tl.store(dxp_ptr + dxp_offs + 2 * H, g2.to(ty), mask=mask)
    if G > 3:
        tl.store(dxp_ptr + dxp_offs + 3 * H, g3.to(ty), mask=mask)
    g_rec2 = g2
    if CELL == CELL_GRU:  # GRU's recurrent side of gate n sees r * d_n, not d_n
        g_rec2 = tl.where(valid, g_hn, 0.0)
        tl.store(dhg_ptr + seq_col * H + offs_n[:, None], g_rec2.to(dhg_ptr.dtype.element_ty),
                 mask=mask)
    stack = stack_gates(g0, g1, g_rec2, g3, GP, BLOCK_N, BLOCK_B)
    rows, rows_ok = gate_rows(n0, H, G, GP, BLOCK_N)
    rows_t_times_stack(w0, w1, w2, w3, w_base, rows, rows_ok, stack, part_ptr, K, tile_stride,
                       RES, STREAM, STAGES, BLOCK_B, BLOCK_N, BLOCK_KC, DOT_DTYPE, ACC_DTYPE,
                       PRECISION)
    return tl.where(valid, dc_prev, dc), tl.where(valid, dh_direct, 0.0)


@triton.jit
def dh_with_dy(dh, dy_ptr, col, k0, mask_b, valid, K, HAS_DY: tl.constexpr,
               BLOCK_N: tl.constexpr, ACC_DTYPE: tl.constexpr):
    """dh_t + dy_t for the slice of K at k0 (dy only inside each length)."""
    offs_k = k0 + tl.arange(0, BLOCK_N)
    if HAS_DY:
        dh += load_units(dy_ptr, col * K + offs_k[:, None],
                         (offs_k[:, None] < K) & mask_b[None, :] & valid).to(ACC_DTYPE)
    return dh


@triton.jit
def load_step_dy(step, n0, dy_ptr, T, B, D, d, b64, d64, mask_b, lens, K, HAS_DY: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr, ACC_DTYPE: tl.constexpr):
    """dy of step `step` for units n0 + [0, BLOCK_N), zero past each length and the last step."""
    live, valid, _, col, _, _, _ = step_coords(step, T, B, D, d, b64, d64, mask_b, lens, BLOCK_B)
    return dh_with_dy(tl.zeros([BLOCK_N, BLOCK_B], ACC_DTYPE), dy_ptr, col, n0, live, valid, K,
                      HAS_DY, BLOCK_N, ACC_DTYPE)


@triton.jit
def load_step_inputs(step, n0, dy_ptr, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, T, B, D, d, b64,
                     d64, mask_b, lens, state_col, H, K, CELL: tl.constexpr, S: tl.constexpr,
                     HAS_DY: tl.constexpr, HAS_H0: tl.constexpr, HAS_C0: tl.constexpr,
                     ONE_LOAD: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr,
                     ACC_DTYPE: tl.constexpr):
    """Step `step`'s inputs that no program of the launch writes, for units n0 + [0,
    BLOCK_N): (dy_t, then load_step_saved's seven), zero past the last step. Loaded a step
    ahead, during the wait."""
    live, valid, prev_ok, col, seq_col, prev_col, prev_seq_col = step_coords(
        step, T, B, D, d, b64, d64, mask_b, lens, BLOCK_B)
    dy = load_step_dy(step, n0, dy_ptr, T, B, D, d, b64, d64, mask_b, lens, K, HAS_DY, BLOCK_N,
                      BLOCK_B, ACC_DTYPE)
    a0, a1, a2, a3, c_t, c_prev, h_prev = load_step_saved(
        n0, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, col, seq_col, prev_col, prev_seq_col,
        state_col, live, prev_ok, H, K, CELL, S, HAS_H0, HAS_C0, ONE_LOAD, BLOCK_N, BLOCK_B,
        ACC_DTYPE)
    return dy, a0, a1, a2, a3, c_t, c_prev, h_prev


@triton.jit(do_not_specialize=["T", "B", "progs", "spin_limit"])
def split_backward_kernel(
    dy_ptr,     # [T, B, D, K]
    act_ptr,    # [D, T, B, S, H]
    cs_ptr,     # [D, T, B, H]
    y_ptr,      # [T, B, D, K]
    h0_ptr,     # [D, B, K]
    c0_ptr,     # [D, B, H]
    len_ptr,    # [B] int32
    whh_ptr,    # [D, G*H, K]
    whr_ptr,    # [D, K, H]
    dxp_ptr,    # [T, B, D, G, H] out
    dhg_ptr,    # [D, T, B, H] out (GRU)
    dhs_ptr,    # [D, T, B, K] out (projection)
    parts_ptr,  # [2, groups, tiles of K, slices, BLOCK_B, BLOCK_N] ACC_DTYPE: W_rows^T @ dG^T
    dhx_ptr,    # [D, B, K] ACC_DTYPE, projection: dh_t + dy_t, exchanged
    dc_ptr,     # [D, B, H] ACC_DTYPE: dc_n (or zeros) on entry, dc0 on exit
    dh_ptr,     # [2, D, B, K] ACC_DTYPE: [0] dh_n (or zeros) on entry, dh0 on exit; [1] GRU
    sync_ptr,   # int32, as in the forward kernel
    T, B, H, K, D, progs, spin_limit,
    CELL: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, S: tl.constexpr,
    HAS_DY: tl.constexpr, HAS_H0: tl.constexpr, HAS_C0: tl.constexpr,
    PROJ: tl.constexpr, VARLEN: tl.constexpr, MULTI: tl.constexpr,
    RES_CHUNKS: tl.constexpr, RES_PROJ: tl.constexpr, SLICES_P2: tl.constexpr,
    SUM_SLICES: tl.constexpr, WIDE_PARTS: tl.constexpr,
    STREAM_W: tl.constexpr, STREAM_WR: tl.constexpr, STREAM_STAGES: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KC: tl.constexpr,
    DOT_DTYPE: tl.constexpr, ACC_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
    PROFILE: tl.constexpr = 0,
):
    # dy_t loaded a step ahead, during the last step's wait; with a projection only where no
    # W streams (LSTM_PROJ fp16 H=2048, streaming, spilled 16 B with it: sm_90, triton 3.9)
    DY_AHEAD: tl.constexpr = not (PROJ and (STREAM_W or STREAM_WR))
    pid_n, pid_b, d, group = claim_work(sync_ptr, progs, D)
    flags_in = sync_ptr + FLAGS_AT + group * 2 * progs  # projection: dh_t + dy_t out
    flags_part = flags_in + progs                       # partial products out
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = offs_b < B
    b64 = offs_b.to(tl.int64)
    d64 = d.to(tl.int64)
    state_col = (d64 * B + b64)[None, :]
    w_base = whh_ptr + d64 * G * H * K
    wr_base = whr_ptr + d64 * K * H
    n_cell = tl.cdiv(H, BLOCK_N)
    n_rec = tl.cdiv(K, BLOCK_N)
    n_own = pid_n * BLOCK_N
    # parts of this group, per slot: [tiles of K, slices, BLOCK_B, BLOCK_N]. Offsets within
    # them are int32 unless WIDE_PARTS (tiles * slices * BLOCK_B * BLOCK_N >= 2^31). The
    # tiles' stride is a constant (SUM_SLICES = n_cell), so the partials' stores take
    # immediate offsets from one address (with a run-time stride: 160 registers against
    # 152, LSTM fp16 H=768, sm_90).
    tile_stride = SUM_SLICES * BLOCK_N * BLOCK_B
    if WIDE_PARTS:
        tile_stride = tl.full([], SUM_SLICES * BLOCK_N * BLOCK_B, tl.int64)
    group_size = n_rec.to(tl.int64) * n_cell * BLOCK_N * BLOCK_B
    group_parts = parts_ptr + group.to(tl.int64) * group_size
    parts_slot = ((B + BLOCK_B - 1) // BLOCK_B * D).to(tl.int64) * group_size
    dh_direct_ptr = dh_ptr + B.to(tl.int64) * D * K  # dh[1]: GRU's direct share, MULTI

    rows, rows_ok = gate_rows(n_own, H, G, GP, BLOCK_N)
    w0, w1, w2, w3 = load_resident(w_base, rows, rows_ok, K, 1, K, RES_CHUNKS, GP * BLOCK_N,
                                   BLOCK_KC, DOT_DTYPE)
    offs_own = n_own + tl.arange(0, BLOCK_N)
    r0, r1, r2, r3 = w0, w0, w0, w0
    if PROJ:  # W_hr^T rows of the owned units: element [n, p] = W_hr[p, n]
        r0, r1, r2, r3 = load_resident(wr_base, offs_own.to(tl.int64), offs_own < H, 1, H, K,
                                       RES_PROJ, BLOCK_N, BLOCK_KC, DOT_DTYPE)
    dc_ptrs, dc_mask = state_tile(dc_ptr, H, state_col, n_own, mask_b, BLOCK_N)
    dh_ptrs, dh_mask = state_tile(dh_ptr, K, state_col, n_own, mask_b, BLOCK_N)
    dc = tl.load(dc_ptrs, mask=dc_mask, other=0.0)
    dh = tl.load(dh_ptrs, mask=dh_mask, other=0.0)  # carried gradient of the owned h
    lens = tl.zeros([BLOCK_B], tl.int32) + T
    if VARLEN:
        lens = tl.load(len_ptr + offs_b, mask=mask_b, other=0)
    alive = 1
    # step 0's dy and saved values; each step loads the next one's (no projection)
    dy_n, a0_n, a1_n, a2_n, a3_n, ct_n, cp_n, hp_n = load_step_inputs(
        0, n_own, dy_ptr, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, T, B, D, d, b64, d64, mask_b,
        lens, state_col, H, K, CELL, S, HAS_DY, HAS_H0, HAS_C0, PROJ, BLOCK_N, BLOCK_B,
        ACC_DTYPE)
    spent_step = tl.zeros([], tl.int64)  # PROFILE: cycles summed over the steps
    spent_wait = spent_step
    spent_release = spent_step

    for step in range(T):
        if PROFILE:
            step_start = clock64()
        _, valid, prev_ok, col, seq_col, prev_col, prev_seq_col = step_coords(
            step, T, B, D, d, b64, d64, mask_b, lens, BLOCK_B)
        slot_parts = group_parts + parts_slot * (step % 2)
        if DY_AHEAD:  # dy_t (and the saved values) came during the last step's wait
            dh_total = dh + dy_n
        else:
            dh_total = dh_with_dy(dh, dy_ptr, col, n_own, mask_b, valid, K, HAS_DY, BLOCK_N,
                                  ACC_DTYPE)
        if not PROJ:
            a0, a1, a2, a3, c_t, c_prev, h_prev = a0_n, a1_n, a2_n, a3_n, ct_n, cp_n, hp_n
        if PROJ:  # every program needs all of dh_t + dy_t: exchange it first
            offs_k = n_own + tl.arange(0, BLOCK_N)
            kmask = (offs_k[:, None] < K) & mask_b[None, :]
            if pid_n < n_rec:
                tl.store(dhx_ptr + state_col * K + offs_k[:, None], dh_total, mask=kmask)
                tl.store(dhs_ptr + seq_col * K + offs_k[:, None],
                         tl.where(valid, dh_total, 0.0).to(dhs_ptr.dtype.element_ty), mask=kmask)
            if MULTI:
                for sl in range(pid_n + progs, n_rec, progs):
                    sk_ptrs, sk_mask = state_tile(dh_ptr, K, state_col, sl * BLOCK_N, mask_b,
                                                  BLOCK_N)
                    tot = dh_with_dy(tl.load(sk_ptrs, mask=sk_mask, other=0.0), dy_ptr, col,
                                     sl * BLOCK_N, mask_b, valid, K, HAS_DY, BLOCK_N, ACC_DTYPE)
                    tl.store(sk_ptrs, tot, mask=sk_mask)
                    k_rows = sl * BLOCK_N + tl.arange(0, BLOCK_N)[:, None]
                    tl.store(dhx_ptr + state_col * K + k_rows, tot, mask=sk_mask)
                    tl.store(dhs_ptr + seq_col * K + k_rows,
                             tl.where(valid, tot, 0.0).to(dhs_ptr.dtype.element_ty), mask=sk_mask)
            spent_release = timed_publish(flags_in + pid_n, step + 1, spent_release, True,
                                          PROFILE)
            alive, spent_wait = timed_wait(flags_in, progs, step + 1, alive, spin_limit,
                                           sync_ptr, step, spent_wait, SLICES_P2, PROFILE)
            dh_cell = rows_times_state(r0, r1, r2, r3, wr_base, offs_own.to(tl.int64),
                                       offs_own < H, 1, H, dhx_ptr, state_col, K, mask_b, RES_PROJ,
                                       STREAM_WR, STREAM_STAGES, BLOCK_N, BLOCK_B, BLOCK_KC,
                                       DOT_DTYPE, ACC_DTYPE, PRECISION, False)
        else:
            dh_cell = dh_total
        if PROJ:  # after the exchange: sent before its wait they spilled (tf32, sm_80: 16-32 B)
            a0, a1, a2, a3, c_t, c_prev, h_prev = load_step_saved(
                n_own, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, col, seq_col, prev_col,
                prev_seq_col, state_col, mask_b, prev_ok, H, K, CELL, S, HAS_H0, HAS_C0, PROJ,
                BLOCK_N, BLOCK_B, ACC_DTYPE)
        dc, direct = backward_cell(
            n_own, dc, dh_cell, a0, a1, a2, a3, c_t, c_prev, h_prev, w0, w1, w2, w3, w_base,
            dxp_ptr, dhg_ptr, slot_parts + pid_n * BLOCK_N * BLOCK_B, tile_stride, col, seq_col,
            mask_b, valid, H, K, CELL, G, GP, RES_CHUNKS, STREAM_W, STREAM_STAGES, BLOCK_B,
            BLOCK_N, BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION)
        if MULTI:
            for sl in range(pid_n + progs, n_cell, progs):
                n0 = sl * BLOCK_N
                sc_ptrs, sc_mask = state_tile(dc_ptr, H, state_col, n0, mask_b, BLOCK_N)
                if PROJ:
                    sl_offs = n0 + tl.arange(0, BLOCK_N)
                    dh_cell_sl = rows_times_state(
                        r0, r1, r2, r3, wr_base, sl_offs.to(tl.int64), sl_offs < H, 1, H,
                        dhx_ptr, state_col, K, mask_b, 0, True, STREAM_STAGES, BLOCK_N, BLOCK_B,
                        BLOCK_KC, DOT_DTYPE, ACC_DTYPE, PRECISION, False)
                else:
                    sh_ptrs, sh_mask = state_tile(dh_ptr, K, state_col, n0, mask_b, BLOCK_N)
                    dh_cell_sl = dh_with_dy(tl.load(sh_ptrs, mask=sh_mask, other=0.0), dy_ptr,
                                            col, n0, mask_b, valid, K, HAS_DY, BLOCK_N,
                                            ACC_DTYPE)
                    tl.store(sh_ptrs, dh_cell_sl, mask=sh_mask)  # dh_t + dy_t, for the sum
                s0, s1, s2, s3, sc_t, sc_prev, sh_prev = load_step_saved(
                    n0, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, col, seq_col, prev_col,
                    prev_seq_col, state_col, mask_b, prev_ok, H, K, CELL, S, HAS_H0, HAS_C0,
                    PROJ, BLOCK_N, BLOCK_B, ACC_DTYPE)
                dc_sl, direct_sl = backward_cell(
                    n0, tl.load(sc_ptrs, mask=sc_mask, other=0.0), dh_cell_sl, s0, s1, s2, s3,
                    sc_t, sc_prev, sh_prev, w0, w1, w2, w3, w_base, dxp_ptr, dhg_ptr,
                    slot_parts + sl * BLOCK_N * BLOCK_B, tile_stride, col, seq_col, mask_b,
                    valid, H, K, CELL, G, GP, 0, True, STREAM_STAGES, BLOCK_B, BLOCK_N, BLOCK_KC,
                    DOT_DTYPE, ACC_DTYPE, PRECISION)
                tl.store(sc_ptrs, dc_sl, mask=sc_mask)
                if CELL == CELL_GRU:
                    sd_ptrs, sd_mask = state_tile(dh_direct_ptr, K, state_col, n0, mask_b,
                                                  BLOCK_N)
                    tl.store(sd_ptrs, direct_sl, mask=sd_mask)
        spent_release = timed_publish(flags_part + pid_n, step + 1, spent_release, True, PROFILE)
        if PROJ:  # the next step's dy, while the others finish this one (its saved values
            # after its exchange: load_step_saved below)
            if DY_AHEAD:
                dy_n = load_step_dy(step + 1, n_own, dy_ptr, T, B, D, d, b64, d64, mask_b, lens,
                                    K, HAS_DY, BLOCK_N, BLOCK_B, ACC_DTYPE)
        else:  # the next step's loads, while the others finish this one
            dy_n, a0_n, a1_n, a2_n, a3_n, ct_n, cp_n, hp_n = load_step_inputs(
                step + 1, n_own, dy_ptr, act_ptr, cs_ptr, y_ptr, h0_ptr, c0_ptr, T, B, D, d, b64,
                d64, mask_b, lens, state_col, H, K, CELL, S, HAS_DY, HAS_H0, HAS_C0, PROJ,
                BLOCK_N, BLOCK_B, ACC_DTYPE)
        alive, spent_wait = timed_wait(flags_part, progs, step + 1, alive, spin_limit,
                                       sync_ptr, step, spent_wait, SLICES_P2, PROFILE)
        # dh_{t-1} of the owned slices of K: every slice's partial, summed in a fixed order
        if pid_n < n_rec:
            rec = sum_partials(slot_parts + pid_n.to(tl.int64) * tile_stride, BLOCK_B,
                               BLOCK_N, SUM_SLICES)
            if CELL == CELL_GRU:  # h_{t-1} also feeds h directly
                rec += direct
            dh = tl.where(valid, rec, dh)  # past a length dy is masked: dh_total == dh there
        if MULTI:
            for sl in range(pid_n + progs, n_rec, progs):
                n0 = sl * BLOCK_N
                sh_ptrs, sh_mask = state_tile(dh_ptr, K, state_col, n0, mask_b, BLOCK_N)
                rec = sum_partials(slot_parts + tl.cast(sl, tl.int64) * tile_stride, BLOCK_B,
                                   BLOCK_N, SUM_SLICES)
                if CELL == CELL_GRU:
                    sd_ptrs, sd_mask = state_tile(dh_direct_ptr, K, state_col, n0, mask_b,
                                                  BLOCK_N)
                    rec += tl.load(sd_ptrs, mask=sd_mask, other=0.0)
                tl.store(sh_ptrs, tl.where(valid, rec, tl.load(sh_ptrs, mask=sh_mask, other=0.0)),
                         mask=sh_mask)
        if PROFILE:
            spent_step += clock64() - step_start

    store_state(dc_ptr, H, state_col, n_own, mask_b, dc, BLOCK_N)
    store_state(dh_ptr, K, state_col, n_own, mask_b, dh, BLOCK_N)  # none past K's slices
    if PROFILE:
        store_profile(sync_ptr, group, pid_n, progs, T, B, D, spent_step, spent_wait,
                      spent_release, BLOCK_B)
