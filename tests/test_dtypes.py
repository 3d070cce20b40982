"""float16, bfloat16, float32 and float64 against the float64 reference computed from the same
rounded numbers (weights, inputs, states, loss weights), so only the error of computing in the
dtype is measured; tolerances in tests/tolerances.py.

ReLU gradients are not compared in fp16/bf16: relu' jumps from 0 to 1 at 0, and rounding the
pre-activation to a 10- or 7-bit mantissa flips its sign for some elements, which changes those
gradient entries by O(1) however correct the kernel is. ReLU outputs are compared in every
dtype, and ReLU gradients in fp32/fp64.
"""
import pytest
import torch

from tests.common import KINDS, MODE, flat_state, layer_pair, make_problem, proj_for, run_layer
from tests.tolerances import assert_all_close
from tritonrnn import functional, reference

DTYPES = [pytest.param(torch.float16, id="fp16"), pytest.param(torch.bfloat16, id="bf16"),
          pytest.param(torch.float32, id="fp32"), pytest.param(torch.float64, id="fp64")]
LOW = (torch.float16, torch.bfloat16)

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_functional_dtype(kind, dtype):
    H = 12
    prob = make_problem(MODE[kind], T=4, B=3, I=5, H=H, P=proj_for(H) if kind == "lstm_proj"
                        else 0, D=2, h0=True, lengths=(4, 1, 3)).rounded(dtype)
    outs, grads = run_layer(functional.recurrent_layer, prob, dtype)
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, torch.float64)
    for name, t in list(outs.items()) + list(grads.items()):
        assert t is None or t.dtype == dtype, f"{name} is {t.dtype}, not {dtype}"
    assert_all_close("", outs, ref_outs, dtype)
    if not (kind == "rnn_relu" and dtype in LOW):
        assert_all_close("grad ", grads, ref_grads, dtype)


@pytest.mark.parametrize("dtype", [p for p in DTYPES if p.values[0] != torch.float32])
@pytest.mark.parametrize("kind", ["lstm_proj", "gru"])
def test_module_dtype(kind, dtype):
    """A two-layer bidirectional module in `dtype` against torch.nn in float64 holding the same
    (rounded) weights: float32 parity with torch.nn is test_modules.py's job."""
    ref, tri = layer_pair(kind, 5, 10, proj_size=proj_for(10), num_layers=2, bidirectional=True)
    tri.to(dtype)
    ref.load_state_dict(tri.state_dict())
    ref.double()
    x = torch.randn(4, 3, 5).to(dtype)
    loss_weights = None
    results = []
    for mod, dt in ((tri, dtype), (ref, torch.float64)):
        xi = x.to(dt).clone().requires_grad_()
        out, state = mod(xi)
        outs = {"output": out, **dict(zip(("h_n", "c_n"), flat_state(state)))}
        if loss_weights is None:
            loss_weights = [torch.randn(t.shape).to(dtype) for t in outs.values()]
        sum((t * w.to(dt)).sum() for t, w in zip(outs.values(), loss_weights)).backward()
        grads = {"input": xi.grad, **{f"param {n}": p.grad for n, p in mod.named_parameters()}}
        results.append((outs, grads))
    (outs, grads), (ref_outs, ref_grads) = results
    for name, t in list(outs.items()) + list(grads.items()):
        assert t.dtype == dtype, f"{name} is {t.dtype}, not {dtype}"
    assert_all_close("", outs, ref_outs, dtype)
    assert_all_close("grad ", grads, ref_grads, dtype)
