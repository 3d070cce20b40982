"""tritonrnn.functional.recurrent_layer against the float64 reference loop
(tritonrnn.reference), plus gradcheck, in both regimes: the fused one (one program holds all of
W_hh) and the split one (hidden units divided across programs), which `force_split(16)` drives
at small sizes.
"""
import contextlib
import os

import pytest
import torch

from tests.common import KINDS, MODE, make_problem, proj_for, run_layer
from tests.tolerances import assert_all_close
from tritonrnn import functional, native, reference
from tritonrnn.kernels import config
from tritonrnn.kernels.config import force_split

F64 = torch.float64


def _proj(kind, H):
    return proj_for(H) if kind == "lstm_proj" else 0


# (id, T, B, I, H, D, h0, lengths, bias); lengths in no particular order, with a 1 and a full one.
CONFIGS = [
    ("uni", 5, 3, 4, 6, 1, False, None, True),
    ("uni-h0-lengths", 5, 3, 4, 6, 1, True, (2, 5, 1), True),
    ("bidir-h0", 4, 2, 3, 7, 2, True, None, True),
    ("bidir-lengths-nobias", 5, 3, 4, 6, 2, False, (3, 5, 1), False),
    ("size1-T1-B1-bidir-h0", 1, 1, 1, 2, 2, True, (1,), True),
    ("B17-bidir-h0-lengths", 3, 17, 2, 3, 2, True, tuple(1 + b % 3 for b in range(17)), True),
]


def _check_against_reference(prob):
    outs, grads = run_layer(functional.recurrent_layer, prob, F64)
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, F64)
    assert_all_close("", outs, ref_outs)
    assert_all_close("grad ", grads, ref_grads)


@pytest.mark.parametrize("config", [pytest.param(c, id=c[0]) for c in CONFIGS])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference(kind, config):
    _, T, B, I, H, D, h0, lengths, bias = config
    prob = make_problem(MODE[kind], T, B, I, H, _proj(kind, H), D, bias, h0, lengths)
    _check_against_reference(prob)


# The split regime with 16-unit hidden slices. Under the interpreter one program per batch
# tile and direction walks every slice: its first slice with its rows of W_hh resident and c,
# h in registers, the others streamed with c, h kept in memory (the multi-slice form). H=40 is
# three slices, the last partly masked; H=20 with a projection (P=13) splits W_hr as well;
# H=12 is one slice. B=18 is two batch tiles, four groups of programs taking their work by
# ticket. (Every program in its own thread, waiting for the others: test_threaded_interpreter.)
SPLIT = ([(kind, 40, _proj(kind, 40), 3) for kind in KINDS] + [("lstm_proj", 20, 13, 3)]
         + [(kind, 12, _proj(kind, 12), 3) for kind in KINDS]
         + [("lstm", 40, 0, 18), ("gru", 12, 0, 18)])


@pytest.mark.parametrize("kind,H,P,B", [pytest.param(*s, id=f"{s[0]}-H{s[1]}-P{s[2]}-B{s[3]}")
                                        for s in SPLIT])
def test_split_regime_matches_reference(kind, H, P, B):
    lengths = tuple(1 + (2 * b + 1) % 3 for b in range(B))  # 2, 1, 3, ...: varied, one full
    prob = make_problem(MODE[kind], T=3, B=B, I=5, H=H, P=P, D=2, h0=True, lengths=lengths)
    with force_split(16):
        _check_against_reference(prob)


@pytest.mark.parametrize("kind", KINDS)
def test_split_regime_with_32_batch_rows(kind):
    """The split kernels with 32 batch rows a program (the wide tile the default plan takes
    where 16 rows would need a second wave, config.batch_tiled_layout): B=40 is two tiles,
    the second mostly masked."""
    lengths = tuple(1 + (2 * b + 1) % 3 for b in range(40))
    prob = make_problem(MODE[kind], T=3, B=40, I=5, H=40, P=_proj(kind, 40), D=2, h0=True,
                        lengths=lengths)
    with config.force_plan(config.Plan(True, config.WIDE_BLOCK_B, 16, 16, 4, 1)):
        _check_against_reference(prob)


@pytest.mark.parametrize("kind,H,P", [("lstm", 40, 0), ("gru", 40, 0), ("lstm_proj", 40, 20),
                                      ("rnn_tanh", 40, 0)])
def test_split_regime_streams_what_is_not_resident(kind, H, P):
    """16-wide reduction chunks with one kept on chip: each program's first slice multiplies
    one resident chunk of its W_hh (and W_hr) rows and streams the other two every step."""
    prob = make_problem(MODE[kind], T=3, B=3, I=5, H=H, P=P, D=2, h0=True, lengths=(3, 1, 2))
    with force_split(16, reduction_chunk=16, resident_chunks=1):
        _check_against_reference(prob)


def test_split_projection_backward_keeps_fewer_chunks_than_forward():
    """16-wide reduction chunks, none capped: the forward keeps all three chunks of its W_hr
    rows (H=40), the backward the two of its W_hr^T rows (P=20)."""
    prob = make_problem(MODE["lstm_proj"], T=3, B=3, I=5, H=40, P=20, D=2, h0=True,
                        lengths=(3, 1, 2))
    with force_split(16, reduction_chunk=16):
        _check_against_reference(prob)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_split_backward_wide_partial_offsets(monkeypatch, kind):
    """The backward's partial-product offsets are int32 within a group unless the group's
    partials pass 2^31 elements (H * K of about 2^27, too big to run here): the int64 form,
    forced on a small layer, gives bitwise the same gradients."""
    from tritonrnn.kernels import recurrence
    prob = make_problem(MODE[kind], T=3, B=3, I=5, H=40, P=0, D=2, h0=True, lengths=(3, 1, 2))
    with force_split(16):
        narrow = run_layer(functional.recurrent_layer, prob, F64)
        real_meta = recurrence.split_meta

        calls = []

        def wide_meta(*args, **kwargs):
            meta = real_meta(*args, **kwargs)
            if "WIDE_PARTS" not in meta:  # the forward
                return meta
            assert meta["WIDE_PARTS"] is False  # the small layer's own choice
            calls.append(1)
            return dict(meta, WIDE_PARTS=True)
        monkeypatch.setattr(recurrence, "split_meta", wide_meta)
        wide = run_layer(functional.recurrent_layer, prob, F64)
    assert calls, "the backward did not run in the split regime"
    for got, want in ((wide[0], narrow[0]), (wide[1], narrow[1])):
        for name, value in want.items():
            assert (value is None and got[name] is None) or torch.equal(got[name], value), name


def test_split_backward_sums_the_partials_in_batches(monkeypatch):
    """The backward sums its slices' partial products SUM_BATCH at a time (kernels/split.py,
    sum_partials; 64 there, so only H > 1024 takes a second batch): three slices in batches
    of two, the second part-full, give bitwise the gradients of one batch."""
    import triton.language as tl
    from tritonrnn.kernels import split
    prob = make_problem(MODE["lstm"], T=3, B=3, I=5, H=40, P=0, D=2, h0=True, lengths=(3, 1, 2))
    with force_split(16):
        whole = run_layer(functional.recurrent_layer, prob, F64)
        monkeypatch.setattr(split, "SUM_BATCH", tl.constexpr(2))
        batched = run_layer(functional.recurrent_layer, prob, F64)
        monkeypatch.setattr(split, "SUM_BATCH", tl.constexpr(1))  # guards the guard: a
        single = run_layer(functional.recurrent_layer, prob, F64)  # batch of one still sums
    for run in (batched, single):
        for got, want in ((run[0], whole[0]), (run[1], whole[1])):
            for name, value in want.items():
                assert (value is None and got[name] is None) or torch.equal(got[name], value), \
                    name


def test_split_regime_raises_when_its_programs_cannot_wait_for_each_other(monkeypatch):
    """Two programs per group under the sequential interpreter: the first runs alone and can
    never see the second's flags, as on a GPU whose SMs are held by something else. The waits
    give up after SPIN_LIMIT polls and the launcher raises instead of hanging or returning
    wrong numbers."""
    monkeypatch.setattr(config, "SPIN_LIMIT", 3)
    prob = make_problem("LSTM", T=2, B=2, I=3, H=20, P=0, D=1, h0=True)
    with force_split(16, programs=2), pytest.raises(RuntimeError, match="gave up"):
        run_layer(functional.recurrent_layer, prob, F64)


def test_forward_ablation_leaves_out_the_waits(monkeypatch):
    """config.ablate_split_forward, the hook bench/calibrate.py times the anchor's steps
    with: under ABLATE_NO_WAIT the forward of the test above (two programs that can never see
    each other's flags) runs to its end instead of giving up; outside the block it gives up
    again. (No gradients: only the forward has the hook.)"""
    from tritonrnn.kernels import split
    monkeypatch.setattr(config, "SPIN_LIMIT", 3)
    prob = make_problem("LSTM", T=2, B=2, I=3, H=20, P=0, D=1, h0=True)
    no_wait, no_fence = split.ABLATE_NO_WAIT.value, split.ABLATE_NO_FENCE.value
    with force_split(16, programs=2):
        for mask in (no_wait, no_wait | no_fence):
            with config.ablate_split_forward(mask):
                outs, _ = run_layer(functional.recurrent_layer, prob, F64, grads=False)
            assert outs["y"].shape == prob.x.shape[:2] + (20,)
        assert config._split_ablation == 0
        with pytest.raises(RuntimeError, match="gave up"):
            run_layer(functional.recurrent_layer, prob, F64, grads=False)


def test_step_profile_needs_a_gpu():
    """config.profile_split reads the SM's cycle counter, which the interpreter does
    not have: it refuses at once instead of failing inside a launch (the profiled kernel's
    compile is checked in tests/test_compile.py)."""
    with pytest.raises(RuntimeError, match="needs a GPU"):
        with config.profile_split():
            pass
    assert config._split_profiles is None


def test_noncontiguous_inputs():
    """x and h0 as transposed views, as a batch_first module hands them over."""
    prob = make_problem("LSTM", T=4, B=3, I=5, H=6, P=4, D=2, h0=True, lengths=(4, 2, 3))

    def transposed_views(x, weights, mode, h0, c0, lengths):
        x = x.transpose(0, 1).contiguous().transpose(0, 1)
        h0 = h0.transpose(0, 1).contiguous().transpose(0, 1)
        assert not x.is_contiguous() and not h0.is_contiguous()
        return functional.recurrent_layer(x, weights, mode, h0, c0, lengths)

    outs, grads = run_layer(transposed_views, prob, F64)
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, F64)
    assert_all_close("", outs, ref_outs)
    assert_all_close("grad ", grads, ref_grads)


# -- gradcheck ---------------------------------------------------------------------------------


@pytest.mark.parametrize("split", [False, True], ids=["fused", "split16"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind, split):
    """Finite differences (float64, fast mode) against the kernels' backward, with respect to
    x, h0, c0 and every weight, with uneven lengths. Fused: bidirectional, T=3. Split: H=17 over
    two programs (the second holds one unit), one direction and T=2 to keep the interpreter's
    ~30 function evaluations affordable; the split regime's reverse direction is covered by the
    gradient comparison in test_split_regime_matches_reference."""
    mode = MODE[kind]
    if split:
        H, P = 17, (13 if kind == "lstm_proj" else 0)
        prob = make_problem(mode, T=2, B=2, I=3, H=H, P=P, D=1, h0=True, lengths=(1, 2))
    else:
        H, P = 4, (3 if kind == "lstm_proj" else 0)
        prob = make_problem(mode, T=3, B=2, I=3, H=H, P=P, D=2, h0=True, lengths=(1, 3))
    named = prob.named_inputs()
    names = list(named)
    D = len(prob.weights)

    def fn(*tensors):
        t = dict(zip(names, tensors))
        weights = [tuple(t.get(f"{w}[{d}]") for w in ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr"))
                   for d in range(D)]
        y, h_n, c_n = functional.recurrent_layer(t["x"], weights, mode, t.get("h0"),
                                                 t.get("c0"), prob.lengths)
        return (y, h_n) if c_n is None else (y, h_n, c_n)

    inputs = tuple(v.clone().requires_grad_() for v in named.values())
    with force_split(16) if split else contextlib.nullcontext():
        assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)


# -- lengths and poisoned outputs ---------------------------------------------------------


@pytest.mark.parametrize("split", [False, True], ids=["fused", "split16"])
@pytest.mark.parametrize("kind", KINDS)
def test_padded_steps_exactly_zero(kind, split):
    """With TRITONRNN_POISON=1 every fresh kernel output starts as NaN. Outputs past each
    sequence's length must be written as exact zeros, nothing may stay NaN, and the input
    gradient past each length must be exactly zero."""
    assert os.environ.get("TRITONRNN_POISON") == "1", "conftest must turn poisoning on"
    lengths = (4, 1, 3)
    H = 20 if split else 6
    prob = make_problem(MODE[kind], T=4, B=3, I=3, H=H, P=_proj(kind, H), D=2, lengths=lengths)
    with force_split(16) if split else contextlib.nullcontext():
        outs, grads = run_layer(functional.recurrent_layer, prob, torch.float32)
    for name, t in list(outs.items()) + list(grads.items()):
        if t is not None:
            assert not torch.isnan(t).any(), f"{name} has NaN (unwritten output?)"
    steps = torch.arange(4).unsqueeze(1)
    past = steps >= torch.tensor(lengths).unsqueeze(0)  # [T, B]
    assert (outs["y"][past] == 0).all(), "output past a sequence's length is not zero"
    assert (grads["x"][past] == 0).all(), "input gradient past a sequence's length is not zero"
    # and the valid part was computed (ReLU outputs legitimately include exact zeros)
    valid = outs["y"][~past]
    assert (valid != 0).any() if kind == "rnn_relu" else (valid != 0).all()


@pytest.mark.parametrize("config", [pytest.param(c, id=c[0]) for c in CONFIGS])
@pytest.mark.parametrize("kind", KINDS)
def test_native_fallback_matches_reference(kind, config):
    """Where the kernels cannot run, recurrent_layer runs torch's own implementation
    (tritonrnn/native.py, the modules' fallback too): the same contract, lengths in any
    order, every gradient."""
    _, T, B, I, H, D, h0, lengths, bias = config
    prob = make_problem(MODE[kind], T, B, I, H, _proj(kind, H), D, bias, h0, lengths)
    outs, grads = run_layer(native.recurrent_layer, prob, F64)
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, F64)
    assert_all_close("", outs, ref_outs)
    assert_all_close("grad ", grads, ref_grads)
