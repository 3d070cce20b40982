"""Numerics at the edges: huge and infinite pre-activations, NaN confined to its sample, and
fp32 state arithmetic under fp16/bf16 storage.

torch.nn on the same weights is the oracle throughout. Where torch.nn itself produces inf or
NaN (a ReLU fed +inf; a weight gradient that multiplies an infinite input by a zero
derivative), the same positions must be non-finite here, with the same value, and every other
element must match within the dtype's tolerance.
"""
import contextlib

import pytest
import torch

import tritonrnn
from tests.common import KINDS, cell_pair, flat_state, layer_pair, proj_for
from tests.tolerances import assert_close
from tritonrnn import functional, reference
from tritonrnn.kernels import config

pytestmark = [
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported"),
    # the interpreter's numpy says so whenever inf * 0 makes the NaN torch.nn makes too
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]

T, B, I, H = 4, 3, 2, 5


def assert_close_nonfinite(name, actual, expected):
    """Same inf/NaN pattern (and sign of inf) as expected; finite elements within TOL."""
    __tracebackhide__ = True
    a, e = actual.detach(), expected.detach()
    assert torch.equal(torch.isnan(a), torch.isnan(e)), \
        f"{name}: NaN at {torch.isnan(a).nonzero().tolist()}, expected at " \
        f"{torch.isnan(e).nonzero().tolist()}"
    inf = torch.isinf(e)
    assert torch.equal(torch.isinf(a), inf) and torch.equal(a[inf], e[inf]), \
        f"{name}: inf pattern differs"
    finite = torch.isfinite(e)
    assert_close(name, torch.where(finite, a, 0), torch.where(finite, e, 0))


def _run(mod, kind, x, states):
    x = x.detach().requires_grad_()
    states = [s.detach().requires_grad_() for s in states]
    hx = (tuple(states) if kind.startswith("lstm") else states[0]) if states else None
    out, state = mod(x, hx)
    final = flat_state(state)
    outs = {"output": out, "h_n": final[0], **({"c_n": final[1]} if len(final) > 1 else {})}
    gen = torch.Generator().manual_seed(5)
    sum((t * torch.randn(t.shape, generator=gen)).sum() for t in outs.values()).backward()
    grads = {"input": x.grad, **{f"hx[{i}]": s.grad for i, s in enumerate(states)},
             **{f"param {n}": p.grad for n, p in mod.named_parameters()}}
    return outs, grads


def _pair_run(kind, x, states, **kwargs):
    ref, tri = layer_pair(kind, x.shape[-1], H, proj_size=proj_for(H), **kwargs)
    return _run(ref, kind, x, states), _run(tri, kind, x, states)


def _states(kind, D=2):
    K = proj_for(H) if kind == "lstm_proj" else H
    return [torch.randn(D, B, K)] + ([torch.randn(D, B, H)] if kind.startswith("lstm") else [])


# -- huge and infinite pre-activations --------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_huge_inputs_saturate(kind):
    """Inputs of +-1e4 push every pre-activation far into saturation: sigmoid and tanh must
    return their limits (no exp overflow to inf/inf = NaN), and the gradients through the
    saturated gates must match torch.nn's (mostly exact zeros)."""
    x = torch.randn(T, B, I).sign() * 1e4
    (ref_outs, ref_grads), (tri_outs, tri_grads) = _pair_run(kind, x, _states(kind, D=1))
    for name in ref_outs:
        assert torch.isfinite(ref_outs[name]).all(), f"torch.nn {name} not finite (test bug)"
        assert_close_nonfinite(name, tri_outs[name], ref_outs[name])
    for name in ref_grads:
        assert_close_nonfinite(f"grad {name}", tri_grads[name], ref_grads[name])


@pytest.mark.parametrize("kind", KINDS)
def test_infinite_inputs(kind):
    """+-inf inputs (one feature, so each pre-activation is w * inf = +-inf, never inf - inf):
    bounded cells give the same finite outputs as torch.nn; ReLU's +inf outputs, and the
    gradients that torch.nn turns into inf/NaN (0 * inf), are non-finite in the same places."""
    x = torch.randn(T, B, 1).sign() * float("inf")
    x[1, 0] = 0.3  # one finite step in between
    (ref_outs, ref_grads), (tri_outs, tri_grads) = _pair_run(kind, x, _states(kind, D=1))
    for name in ref_outs:
        if kind != "rnn_relu":
            assert torch.isfinite(ref_outs[name]).all(), f"torch.nn {name} not finite (test bug)"
        assert_close_nonfinite(name, tri_outs[name], ref_outs[name])
    for name in ref_grads:
        assert_close_nonfinite(f"grad {name}", tri_grads[name], ref_grads[name])


@pytest.mark.parametrize("kind,regime", [("rnn_tanh", "fused"), ("lstm_proj", "fused"),
                                         ("gru", "fused"), ("lstm", "split")])
def test_infinite_state(kind, regime):
    """An infinite initial state: W_hh h is +-inf in every unit (one infinite term per sum),
    so the first step saturates and the rest is finite, as in torch.nn. This guards the
    padding lanes of the state (H < BLOCK_H): inf times a padding zero of W is NaN there, and
    it must not reach the next step's dot."""
    states = _states(kind, D=1)
    states[0][:, 0, 0] = float("inf")
    with config.force_split(16) if regime == "split" else contextlib.nullcontext():
        (ref_outs, ref_grads), (tri_outs, tri_grads) = _pair_run(kind, torch.randn(T, B, I),
                                                                 states)
    for name in ref_outs:
        assert_close_nonfinite(name, tri_outs[name], ref_outs[name])
    for name in ("input", "hx[0]"):
        assert_close_nonfinite(f"grad {name}", tri_grads[name], ref_grads[name])


# -- NaN stays in its sample ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["input", "h0"])
@pytest.mark.parametrize("kind", ["rnn_relu", "lstm_proj", "gru"])
def test_nan_stays_in_its_sample(kind, where):
    """A NaN in sample 1 (in its input at step 1, or in its initial state) poisons sample 1
    only: the other samples' outputs, final states and input gradients are finite and match
    torch.nn; sample 1 is NaN exactly where torch.nn's is."""
    x, states = torch.randn(T, B, I), _states(kind)
    if where == "input":
        x[1, 1, 0] = float("nan")
    else:
        states[0][0, 1, 0] = float("nan")
    (ref_outs, ref_grads), (tri_outs, tri_grads) = _pair_run(kind, x, states, bidirectional=True)
    others = [0, 2]
    checks = {**ref_outs, "grad input": ref_grads["input"]}
    ours = {**tri_outs, "grad input": tri_grads["input"]}
    for name, expected in checks.items():
        batch_dim = 1
        clean = expected.index_select(batch_dim, torch.tensor(others))
        assert torch.isfinite(clean).all(), "torch.nn leaks NaN into other samples (test bug)"
        assert_close(f"{name} (clean samples)", ours[name].index_select(
            batch_dim, torch.tensor(others)), clean)
        assert_close_nonfinite(f"{name} (all)", ours[name], expected)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_nan_in_cell_sample(kind):
    """A NaN in one sample of a cell's input: that sample's h (and c) is NaN, the others are
    finite and equal to torch.nn's."""
    ref, tri = cell_pair(kind, I, H)
    x = torch.randn(B, I)
    x[1, 0] = float("nan")
    outs = {}
    for name, cell in (("ref", ref), ("tri", tri)):
        out = cell(x)
        outs[name] = list(out) if isinstance(out, tuple) else [out]
    for r, t in zip(outs["ref"], outs["tri"]):
        assert torch.isnan(t[1]).all() and torch.isfinite(t[[0, 2]]).all()
        assert_close_nonfinite("cell output", t, r)


# -- fp16 / bf16 keep fp32 state arithmetic --------------------------------------------------

# One unit, input x = 1, W_hh = 0, state starting at 1, where the dtype's spacing is SPACING
# (above 1) and SPACING / 2 (below 1). Each step moves the state by a quarter of that or less,
# which a state rounded to the dtype between steps loses entirely (it stays at 1), while an
# fp32 state accumulates it:
# - LSTM: i = f = o = sigmoid(20) == 1 in fp32, g = tanh(SPACING / 4): c grows by SPACING / 4.
# - GRU: z = 1 - SPACING / 16, n = tanh(-20) = -1: h = z h + (1 - z) n falls by ~SPACING / 8.
_SPACING_AT_1 = {torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}


def _accumulating_problem(mode, dtype, steps=24):
    spacing = _SPACING_AT_1[dtype]
    f64 = torch.float64
    if mode == "LSTM":   # gates i, f, g, o
        w_ih = torch.tensor([[20.0], [20.0], [spacing / 4], [20.0]], dtype=f64)
        c0 = torch.ones(1, 1, 1, dtype=f64)
    else:                # gates r, z, n
        z_pre = torch.logit(torch.tensor(1 - spacing / 16, dtype=f64)).item()
        w_ih = torch.tensor([[0.0], [z_pre], [-20.0]], dtype=f64)
        c0 = None
    h0 = torch.full((1, 1, 1), 0.0 if mode == "LSTM" else 1.0, dtype=f64)
    G = w_ih.shape[0]
    x = torch.ones(steps, 1, 1, dtype=f64)
    # weights rounded to the dtype first, so the float64 run sees the same numbers
    weights = [(w_ih.to(dtype).to(f64), torch.zeros(G, 1, dtype=f64), None, None, None)]
    return x, weights, h0, c0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_low_precision_state_is_fp32(mode, dtype):
    """Increments of a quarter spacing or less accumulate over 24 steps: our final state is
    within one spacing of the float64 result, while the same loop with the state rounded to
    the dtype every step (the reference loop run in that dtype) stays stuck and misses by
    several spacings -- so the test tells the two apart."""
    x, weights, h0, c0 = _accumulating_problem(mode, dtype)
    cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
    low_w = [tuple(cast(w) for w in weights[0])]
    _, h_n, c_n = functional.recurrent_layer(cast(x), low_w, mode, cast(h0), cast(c0))
    _, ref_h, ref_c = reference.recurrent_layer(x, weights, mode, h0, c0)
    _, low_h, low_c = reference.recurrent_layer(cast(x), low_w, mode, cast(h0), cast(c0))
    state, ref, low = (c_n, ref_c, low_c) if mode == "LSTM" else (h_n, ref_h, low_h)
    spacing = _SPACING_AT_1[dtype]
    moved = (ref - 1.0).abs().item()
    assert moved > 2 * spacing, f"the float64 state moved only {moved:g} (test bug)"
    assert (low.double() - ref).abs().item() > 2 * spacing, "low-precision loop not stuck"
    assert (state.double() - ref).abs().item() <= spacing, \
        f"{mode} {dtype}: state {state.item()} vs float64 {ref.item()}: not fp32 arithmetic"


def test_module_fp16_matches_reference_tolerance():
    """The documented fp16 tolerance against the float64 reference holds through the module
    with huge (saturating) inputs too."""
    torch.manual_seed(0)
    tri = tritonrnn.LSTM(I, H, dtype=torch.float16)
    ref = torch.nn.LSTM(I, H, dtype=torch.float64)
    ref.load_state_dict({k: v.double() for k, v in tri.state_dict().items()})
    x = (torch.randn(T, B, I).sign() * 1e4).half()
    y, (h, c) = tri(x)
    y_ref, (h_ref, c_ref) = ref(x.double())
    for name, a, e in (("y", y, y_ref), ("h", h, h_ref), ("c", c, c_ref)):
        assert a.dtype == torch.float16
        assert_close(name, a, e, torch.float16)
