"""tritonrnn.RNNCell / LSTMCell / GRUCell against torch.nn's cells on the same weights:
batched and unbatched, with and without an initial state; output, new cell state and the
gradients of input, states and every parameter."""
import pytest
import torch
from torch import nn

import tritonrnn
from tests.common import cell_pair
from tests.tolerances import assert_all_close

CELL_KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")

# (id, B or None for unbatched, I, H, hx given, bias)
VARIANTS = [
    ("batched-hx", 3, 4, 6, True, True),
    ("batched-nohx-nobias", 2, 5, 3, False, False),
    ("unbatched-hx", None, 4, 6, True, True),
    ("unbatched-nohx", None, 3, 5, False, True),
    ("size1-hx", 1, 1, 1, True, True),
    ("primes-B17-I7-H13-hx", 17, 7, 13, True, True),
]


def _run(cell, kind, x, states, loss_weights):
    x = x.clone().requires_grad_()
    states = [s.clone().requires_grad_() for s in states]
    hx = None
    if states:
        hx = tuple(states) if kind == "lstm" else states[0]
    out = cell(x, hx)
    outs = {"h": out[0], "c": out[1]} if kind == "lstm" else {"h": out}
    if not loss_weights:
        loss_weights.extend(torch.randn(t.shape) for t in outs.values())
    sum((t * w).sum() for t, w in zip(outs.values(), loss_weights)).backward()
    grads = {"input": x.grad}
    grads.update({f"hx[{i}]": s.grad for i, s in enumerate(states)})
    grads.update({f"param {n}": p.grad for n, p in cell.named_parameters()})
    return outs, grads


@pytest.mark.parametrize("variant", [pytest.param(v, id=v[0]) for v in VARIANTS])
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cell_matches_torch_nn(kind, variant):
    _, B, I, H, with_hx, bias = variant
    ref, tri = cell_pair(kind, I, H, bias=bias)
    batch = () if B is None else (B,)
    x = torch.randn(*batch, I)
    states = []
    if with_hx:
        states = [torch.randn(*batch, H) for _ in range(2 if kind == "lstm" else 1)]
    loss_weights = []
    ref_outs, ref_grads = _run(ref, kind, x, states, loss_weights)
    tri_outs, tri_grads = _run(tri, kind, x, states, loss_weights)
    assert_all_close("", tri_outs, ref_outs)
    assert_all_close("grad ", tri_grads, ref_grads)


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_is_a_torch_cell(name):
    torch.manual_seed(0)
    ref = getattr(nn, name)(4, 6)
    torch.manual_seed(0)
    tri = getattr(tritonrnn, name)(4, 6)
    assert isinstance(tri, getattr(nn, name))
    assert repr(tri) == repr(ref)
    assert list(tri.state_dict()) == list(ref.state_dict())
    for (n, p), q in zip(tri.named_parameters(), ref.parameters()):
        assert torch.equal(p, q), n
