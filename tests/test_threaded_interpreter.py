"""The split regime's multi-program form with every program in its own thread
(tests/threaded_interpreter.py), so the waits between programs really wait: parity with the
float64 reference forward and backward over several groups (batch tiles x directions), and
broken synchronisation caught.

The sequential interpreter runs one program per group walking every hidden slice (the
launcher's layout under the interpreter); here force_split asks for the GPU's layout, one
program per slice (MULTI=False: W rows resident, c and h in registers), which on CPU only
threads can run.
"""
import pytest
import torch
import triton
import triton.language as tl

from tests.common import make_problem, proj_for, run_layer
from tests.threaded_interpreter import ProgramsHung, programs_in_threads
from tests.tolerances import assert_all_close
from tritonrnn import functional, reference
from tritonrnn.kernels import cells, config, recurrence, split
from tritonrnn.kernels.config import force_split

F64, F16 = torch.float64, torch.float16
SLICE = 16        # hidden units per program (force_split)
WAIT = "wait_for_group"  # the split kernels' wait between programs (looked up at call time)
EVERY_SLICE = 1 << 10  # programs per group asked of force_split: capped at one per slice


def program_per_slice():
    """The split regime as on a GPU with enough SMs: one program per hidden slice
    (MULTI=False: W rows resident, c and h in registers), each program in its own thread."""
    return force_split(SLICE, programs=EVERY_SLICE)


@triton.jit
def _no_wait(flag_row, progs, target, alive, spin_limit, sync_ptr, step,
             SLICES_P2: tl.constexpr):
    return alive


@triton.jit
def _wait_for_one_too_many(flag_row, progs, target, alive, spin_limit, sync_ptr, step,
                           SLICES_P2: tl.constexpr):
    offs = tl.arange(0, SLICES_P2)
    mask = offs < progs
    seen = tl.min(tl.load(flag_row + offs, mask=mask, other=target + 1, volatile=True), axis=0)
    while seen < target + 1:
        seen = tl.min(tl.load(flag_row + offs, mask=mask, other=target + 1, volatile=True), axis=0)
    return alive


@triton.jit
def _gather_after_all_arrive(slots_ptr, counter_ptr, out_ptr, n):
    """Each program publishes pid + 1, waits for every program, then sums all slots."""
    pid = tl.program_id(0)
    tl.store(slots_ptr + pid, pid + 1)
    tl.atomic_add(counter_ptr, 1, sem="release")
    seen = tl.atomic_add(counter_ptr, 0, sem="acquire")
    while seen < n:
        seen = tl.atomic_add(counter_ptr, 0, sem="acquire")
    offs = tl.arange(0, 32)
    tl.store(out_ptr + pid, tl.sum(tl.load(slots_ptr + offs, mask=offs < n, other=0)))


def test_programs_wait_for_each_other():
    """The smallest exchange (no project kernel: runs on any triton the module supports,
    3.6 included): with each program starting later than the one before, every program
    sees every other's slot only because it waited; the sequential interpreter would hang."""
    n = 12
    slots = torch.zeros(32, dtype=torch.int32)
    counter = torch.zeros(1, dtype=torch.int32)
    out = torch.full((n,), -1, dtype=torch.int32)
    with programs_in_threads(timeout_s=30, start_stagger_s=0.01) as launches:
        _gather_after_all_arrive[(n,)](slots, counter, out, n)
    assert launches == [n]
    assert out.tolist() == [n * (n + 1) // 2] * n


def _problem(mode, H, P, B, T=3):
    lengths = tuple(1 + (2 * b + 1) % T for b in range(B))  # varied, one full length
    return make_problem(mode, T=T, B=B, I=5, H=H, P=P, D=2, h0=True, lengths=lengths)


# (mode, H, P, B): 2 or 3 slices (the last partly masked), 2 batch tiles x 2 directions =
# 4 groups: 8-12 programs per launch; the projection adds a second wait per step and a
# program with no slice of K.
CASES = [("LSTM", 32, 0, 18), ("GRU", 40, 0, 18), ("LSTM", 32, proj_for(32), 17)]


@pytest.mark.parametrize("mode,H,P,B", [pytest.param(*c, id=f"{c[0]}-H{c[1]}-P{c[2]}-B{c[3]}")
                                        for c in CASES])
def test_program_per_slice_matches_reference(mode, H, P, B):
    prob = _problem(mode, H, P, B)
    with program_per_slice(), programs_in_threads(timeout_s=120) as launches:
        outs, grads = run_layer(functional.recurrent_layer, prob, F64)
    groups = triton.cdiv(B, 16) * 2
    assert launches == [groups * triton.cdiv(H, SLICE)] * 2  # forward, backward: threaded
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, F64)
    assert_all_close("", outs, ref_outs)
    assert_all_close("grad ", grads, ref_grads)


# (mode, H): the chunks of h loaded alongside the resident chunks of W end within H (16-column
# chunks), so the forward's programs load them, in fp16, with no mask (split.loads_h_unmasked,
# split_forward_kernel's WHOLE). B=18: the second batch tile's lanes past B read row B - 1.
WHOLE_CASES = [("LSTM", 64), ("GRU", 64), ("RNN_TANH", 128)]


@pytest.mark.parametrize("mode,H", WHOLE_CASES, ids=[f"{m}-H{h}" for m, h in WHOLE_CASES])
def test_unmasked_exchange_loads_match_reference(mode, H):
    prob = _problem(mode, H, 0, B=18)
    code = cells.lookup(mode).code
    with force_split(SLICE, reduction_chunk=16, programs=EVERY_SLICE):
        layout = config.launch(code, H, H, F16, 18, None, 2).layout
        assert recurrence.split_meta(layout, code, H, H, 2, False)["WHOLE"]
        with programs_in_threads(timeout_s=300) as launches:
            outs, grads = run_layer(functional.recurrent_layer, prob, F16)
    assert launches == [2 * 2 * triton.cdiv(H, layout.plan.block_h)] * 2
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, F64)
    assert_all_close("", outs, ref_outs, F16)
    assert_all_close("grad ", grads, ref_grads, F16)


def test_program_per_slice_with_32_batch_rows(monkeypatch):
    """The 32-row batch tile (config.batch_tiled_layout) in the exchange: B=40 is two tiles
    (the second mostly masked) x 2 directions, 2 programs each, in threads."""
    prob = _problem("LSTM", 32, 0, 40)
    with force_split(SLICE, programs=EVERY_SLICE, batch_block=32), \
            programs_in_threads(timeout_s=120) as launches:
        outs, grads = run_layer(functional.recurrent_layer, prob, F64)
    assert launches == [2 * 2 * 2] * 2
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, F64)
    assert_all_close("", outs, ref_outs)
    assert_all_close("grad ", grads, ref_grads)


def test_programs_walking_several_slices_match_reference(monkeypatch):
    """The multi-slice form (c kept in memory) with 2 programs sharing 3 slices, in threads."""
    prob = _problem("LSTM", 40, 0, 18)
    with force_split(SLICE, programs=2), programs_in_threads(timeout_s=120) as launches:
        outs, grads = run_layer(functional.recurrent_layer, prob, F64)
    assert launches == [4 * 2] * 2
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, F64)
    assert_all_close("", outs, ref_outs)
    assert_all_close("grad ", grads, ref_grads)


def test_missing_wait_gives_wrong_results(monkeypatch):
    """With the wait between programs removed and each program starting later than the one
    before, programs read h before the others have written it: the outputs must be wrong
    (the same run with the wait in place is the parity test above)."""
    monkeypatch.setattr(split, WAIT, _no_wait)
    prob = _problem("LSTM", 32, 0, 18)
    with program_per_slice(), programs_in_threads(timeout_s=120, start_stagger_s=0.3):
        outs, _ = run_layer(functional.recurrent_layer, prob, F64, grads=False)
    ref_outs, _ = run_layer(reference.recurrent_layer, prob, F64, grads=False)
    with pytest.raises(AssertionError, match="out of tolerance"):
        assert_all_close("", outs, ref_outs)


def test_wait_that_never_ends_is_reported(monkeypatch):
    """A wait for one arrival too many deadlocks every program: the launch fails with
    ProgramsHung naming the line they wait at, instead of hanging."""
    monkeypatch.setattr(split, WAIT, _wait_for_one_too_many)
    prob = _problem("LSTM", 32, 0, 18, T=2)
    with program_per_slice(), programs_in_threads(timeout_s=60, idle_polls=500):
        with pytest.raises(Exception) as failure:
            run_layer(functional.recurrent_layer, prob, F64, grads=False)
    cause = failure.value
    while cause is not None and not isinstance(cause, ProgramsHung):
        cause = cause.__cause__
    assert isinstance(cause, ProgramsHung), repr(failure.value)
    assert "deadlock" in str(cause) and "seen = tl.min(tl.load(flag_row" in str(cause)
