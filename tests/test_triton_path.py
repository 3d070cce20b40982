"""Proof that the Triton kernels ran (not a silent fallback to PyTorch), via the launch counter
tritonrnn.kernels.testing.count_launches, and that the launch count does not grow with T."""
import contextlib

import pytest
import torch

import tritonrnn
from tests.common import WEIGHT_NAMES, make_problem
from tritonrnn import functional
from tritonrnn.kernels import config, testing

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


def test_interpreter_flag_seen_by_kernels():
    """conftest set TRITON_INTERPRET before tritonrnn.kernels read it."""
    assert config.INTERPRET


def _layer_call(mod):
    return mod(torch.randn(3, 2, 4))


def _cell_call(mod):
    return mod(torch.randn(2, 4))


MODULES = [
    pytest.param(lambda: tritonrnn.RNN(4, 5, nonlinearity="tanh"), _layer_call, id="RNN-tanh"),
    pytest.param(lambda: tritonrnn.RNN(4, 5, nonlinearity="relu"), _layer_call, id="RNN-relu"),
    pytest.param(lambda: tritonrnn.LSTM(4, 5), _layer_call, id="LSTM"),
    pytest.param(lambda: tritonrnn.LSTM(4, 5, proj_size=3), _layer_call, id="LSTM-proj"),
    pytest.param(lambda: tritonrnn.GRU(4, 5), _layer_call, id="GRU"),
    pytest.param(lambda: tritonrnn.RNNCell(4, 5), _cell_call, id="RNNCell"),
    pytest.param(lambda: tritonrnn.LSTMCell(4, 5), _cell_call, id="LSTMCell"),
    pytest.param(lambda: tritonrnn.GRUCell(4, 5), _cell_call, id="GRUCell"),
]


@pytest.mark.parametrize("make,call", MODULES)
def test_forward_and_backward_launch_kernels(make, call):
    mod = make()
    with testing.count_launches() as launched:
        out = call(mod)
        forward_launches = sum(launched.values())
        assert forward_launches > 0, "forward ran no Triton kernel"
        tensors = [out] if torch.is_tensor(out) else [t for o in out for t in
                                                      (o if isinstance(o, tuple) else (o,))]
        sum(t.sum() for t in tensors).backward()
        assert sum(launched.values()) > forward_launches, "backward ran no Triton kernel"


@pytest.mark.parametrize("regime", ["fused", "split"])
@pytest.mark.parametrize("D", [1, 2], ids=["uni", "bidir"])
@pytest.mark.parametrize("mode", ["RNN_TANH", "LSTM", "GRU"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_launch_count_independent_of_T(mode, D, training, regime):
    """In both regimes one launch runs the whole sequence, so T=4 and T=9 launch the same
    kernels the same number of times (forward only; `training` makes the inputs require grad,
    so the forward also stores activations). H=20 is two 16-unit slices in the split regime."""
    counts = []
    for T in (4, 9):
        prob = make_problem(mode, T=T, B=2, I=3, H=20, D=D, h0=True, lengths=(T, 2))
        t = {n: v.float().requires_grad_(training) for n, v in prob.named_inputs().items()}
        weights = [tuple(t.get(f"{w}[{d}]") for w in WEIGHT_NAMES) for d in range(D)]
        with testing.count_launches() as launched, \
                config.force_split(16) if regime == "split" else contextlib.nullcontext():
            functional.recurrent_layer(t["x"], weights, mode, t["h0"], t.get("c0"), prob.lengths)
        counts.append(dict(launched))
    assert counts[0] == {f"{regime}_forward": 1}
    assert counts[0] == counts[1], f"T=4: {counts[0]}, T=9: {counts[1]}"
