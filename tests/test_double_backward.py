"""Double backward (second-order gradients) through every class, in float64.

A backward pass with create_graph=True takes the differentiable path of tritonrnn/ops.py
(recompute with torch ops, then differentiate); a plain backward stays on the kernels. Checked:
- torch.autograd.gradgradcheck (fast mode) on small cases: every cell, projection,
  bidirectional, two layers, packed input, given initial states, and the three cells;
- the first-order gradients of that path equal the kernels' (create_graph=False);
- a gradient penalty (the norm of d loss / d input, then backward) matches torch.nn's CPU
  double backward.
"""
import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import tritonrnn
from tests.common import flat_state
from tests.tolerances import assert_close

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

F64 = torch.float64

# name -> (class name, constructor options, whether h0 (and c0) are given, packed lengths)
CASES = {
    "rnn_tanh": ("RNN", {}, True, None),
    "rnn_relu": ("RNN", dict(nonlinearity="relu"), False, None),
    "lstm": ("LSTM", {}, True, None),
    "gru": ("GRU", {}, True, None),
    "lstm_proj_bidirectional": ("LSTM", dict(proj_size=1, bidirectional=True), False, None),
    "gru_two_layers": ("GRU", dict(num_layers=2), False, None),
    "lstm_packed": ("LSTM", {}, False, [3, 1]),
    "rnn_cell": ("RNNCell", {}, True, None),
    "lstm_cell": ("LSTMCell", {}, True, None),
    "gru_cell": ("GRUCell", {}, False, None),
}


def _module(case, seed=0):
    name, options, _, _ = CASES[case]
    torch.manual_seed(seed)
    return getattr(tritonrnn, name)(2, 2, dtype=F64, **options)


def _inputs(module, case):
    """[x, h0?, c0?] for the case, float64, requiring grad."""
    _, _, with_state, lengths = CASES[case]
    cell = isinstance(module, nn.RNNCellBase)
    T, B = (3 if lengths else 2), 2
    x = torch.randn(B, 2, dtype=F64) if cell else torch.randn(T, B, 2, dtype=F64)
    inputs = [x]
    if with_state:
        if cell:
            shape = (B, module.hidden_size)
        else:
            D = 2 if module.bidirectional else 1
            shape = (module.num_layers * D, B, module.proj_size or module.hidden_size)
        inputs.append(torch.randn(*shape, dtype=F64))
        if isinstance(module, (nn.LSTM, nn.LSTMCell)):
            inputs.append(torch.randn(*shape[:-1], module.hidden_size, dtype=F64))
    return [t.requires_grad_() for t in inputs]


def _function(module, case):
    """f(x, [h0, c0,] *parameters) -> every output tensor, for gradgradcheck."""
    lengths = CASES[case][3]
    names = [n for n, _ in module.named_parameters()]
    lstm = isinstance(module, (nn.LSTM, nn.LSTMCell))

    def f(x, *rest):
        states, params = rest[:len(rest) - len(names)], rest[len(rest) - len(names):]
        hx = None if not states else (tuple(states) if lstm else states[0])
        if lengths is not None:
            x = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        out = torch.func.functional_call(module, dict(zip(names, params)), (x, hx))
        if isinstance(module, nn.RNNCellBase):
            return tuple(flat_state(out))
        y = out[0].data if lengths is not None else out[0]
        return (y, *flat_state(out[1]))

    return f


@pytest.mark.parametrize("case", CASES)
def test_gradgradcheck(case):
    module = _module(case)
    args = (*_inputs(module, case), *module.parameters())
    assert torch.autograd.gradgradcheck(_function(module, case), args, fast_mode=True)


def _first_order(module, case, inputs, create_graph):
    outs = _function(module, case)(*inputs, *module.parameters())
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=F64).view(o.shape)).sum()
               for o in outs)
    return torch.autograd.grad(loss, [*inputs, *module.parameters()], create_graph=create_graph)


@pytest.mark.parametrize("case", ["lstm_proj_bidirectional", "gru_two_layers", "lstm_packed",
                                  "lstm_cell"])
def test_differentiable_path_gives_the_kernels_first_order_gradients(case):
    module = _module(case)
    inputs = _inputs(module, case)
    slow = _first_order(module, case, inputs, create_graph=True)
    fast = _first_order(module, case, inputs, create_graph=False)
    assert all(g.grad_fn is not None for g in slow)  # a graph to differentiate again
    for i, (s, f) in enumerate(zip(slow, fast)):
        assert_close(f"grad {i}", s, f)


@pytest.mark.parametrize("case", ["lstm_proj_bidirectional", "gru_two_layers", "rnn_tanh",
                                  "gru_cell"])
def test_gradient_penalty_matches_torch_nn(case):
    """d/d(params) of |d loss / d x|^2, against torch.nn's own double backward on CPU."""
    ours = _module(case)
    torch_class = getattr(nn, CASES[case][0])
    ref = copy.deepcopy(ours)
    ref.__class__ = torch_class  # same parameters' values, torch.nn's forward
    inputs = _inputs(ours, case)
    results = []
    for module in (ours, ref):
        grads = _first_order(module, case, inputs, create_graph=True)
        penalty = (grads[0] ** 2).sum()
        results.append(torch.autograd.grad(penalty, [*inputs, *module.parameters()]))
    for i, (a, b) in enumerate(zip(*results)):
        assert_close(f"second-order grad {i}", a, b)
