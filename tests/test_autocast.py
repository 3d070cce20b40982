"""Under torch.autocast the layers return what torch.nn's return: the same dtypes (the rules
are in tritonrnn/amp.py) and the same values within the autocast dtype's tolerance, with
float32 gradients for the float32 parameters.

CPU bfloat16 autocast is tested here against torch.nn itself. The CUDA rules (cuDNN's float16
for the layers, the autocast dtype for the cells) are checked in the gpu tier, below.
"""
import pytest
import torch

from tests.common import KINDS, cell_pair, flat_state, layer_pair
from tests.tolerances import assert_close

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


def _run(module, x, hx, device_type, dtype):
    """Forward under autocast, a loss on every output, backward outside autocast (as in
    training). Returns (outputs as a list, grads of x and every parameter)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.autocast(device_type, dtype=dtype):
        out = module(x) if hx is None else module(x, hx)
    if isinstance(module, torch.nn.RNNBase):
        outs = [out[0], *flat_state(out[1])]
    else:
        outs = flat_state(out)
    loss = sum((o.float() * torch.linspace(-1, 1, o.numel(), device=o.device).view(o.shape)).sum()
               for o in outs)
    grads = torch.autograd.grad(loss, [x, *module.parameters()])
    return outs, grads


def _compare(ref_outs, ref_grads, outs, grads, dtype, grad_values=True):
    """grad_values=False checks the gradients' dtypes only (see the CUDA layer test)."""
    assert [o.dtype for o in outs] == [o.dtype for o in ref_outs]
    for i, (a, e) in enumerate(zip(outs, ref_outs)):
        assert_close(f"out{i}", a, e, dtype)
    for i, (a, e) in enumerate(zip(grads, ref_grads)):
        assert a.dtype == e.dtype == torch.float32
        if grad_values:
            assert_close(f"grad{i}", a, e, dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("h0", [False, True], ids=["no_h0", "h0"])
def test_layers_cpu_bf16_autocast_match_torch(kind, h0):
    ref, tri = layer_pair(kind, 3, 5, proj_size=2, num_layers=2)
    x = torch.randn(4, 2, 3)
    hx = None
    if h0:
        K = 2 if kind == "lstm_proj" else 5
        hx = torch.randn(2, 2, K)
        hx = (hx, torch.randn(2, 2, 5)) if kind.startswith("lstm") else hx
    # torch.nn.LSTM without projections takes oneDNN under autocast when mkldnn is on, which
    # this CPU may not support in bfloat16; the oneDNN rule is tested on its own below.
    with torch.backends.mkldnn.flags(enabled=False):
        ref_outs, ref_grads = _run(ref, x, hx, "cpu", torch.bfloat16)
        outs, grads = _run(tri, x, hx, "cpu", torch.bfloat16)
    if kind in ("rnn_tanh", "rnn_relu"):  # the rule is not trivially "float32 out"
        assert outs[0].dtype == torch.bfloat16
    _compare(ref_outs, ref_grads, outs, grads, torch.bfloat16)


def test_lstm_cpu_bf16_autocast_with_onednn_is_lstm_in_bf16():
    """With mkldnn on, torch.nn.LSTM computes in oneDNN's bfloat16 LSTM: every output
    bfloat16. Where this CPU lacks bf16 oneDNN torch.nn raises instead, so the oracle is
    torch.nn.LSTM cast to bfloat16 (the same computation, unfused)."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("torch built without oneDNN: the rule does not apply")
    ref, tri = layer_pair("lstm", 3, 5)
    x = torch.randn(4, 2, 3)
    with torch.backends.mkldnn.flags(enabled=True):
        outs, grads = _run(tri, x, None, "cpu", torch.bfloat16)
    ref_bf16 = ref.to(torch.bfloat16)
    ref_outs = [ref_bf16(x.bfloat16())[0], *ref_bf16(x.bfloat16())[1]]
    assert [o.dtype for o in outs] == [torch.bfloat16] * 3
    for i, (a, e) in enumerate(zip(outs, ref_outs)):
        assert_close(f"out{i}", a, e, torch.bfloat16)
    assert all(g.dtype == torch.float32 for g in grads)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("h0", [False, True], ids=["no_h0", "h0"])
def test_cells_cpu_bf16_autocast_match_torch(kind, h0):
    ref, tri = cell_pair(kind, 3, 5)
    x = torch.randn(2, 3)
    hx = None
    if h0:
        hx = (torch.randn(2, 5), torch.randn(2, 5)) if kind == "lstm" else torch.randn(2, 5)
    ref_outs, ref_grads = _run(ref, x, hx, "cpu", torch.bfloat16)
    outs, grads = _run(tri, x, hx, "cpu", torch.bfloat16)
    _compare(ref_outs, ref_grads, outs, grads, torch.bfloat16)


def test_autocast_leaves_float64_alone():
    ref, tri = layer_pair("gru", 3, 5, dtype=torch.float64)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, h = tri(x)
        y_ref, h_ref = ref(x)
    assert y.dtype == h.dtype == torch.float64
    assert_close("y", y, y_ref)
    assert_close("h", h, h_ref)


@pytest.mark.gpu
@pytest.mark.parametrize("autocast_dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_layers_cuda_autocast_match_torch(kind, autocast_dtype):
    ref, tri = layer_pair(kind, 8, 16, proj_size=4, num_layers=2, bidirectional=True)
    ref, tri = ref.cuda(), tri.cuda()
    x = torch.randn(6, 3, 8, device="cuda")
    ref_outs, ref_grads = _run(ref, x, None, "cuda", autocast_dtype)
    outs, grads = _run(tri, x, None, "cuda", autocast_dtype)
    assert outs[0].dtype == torch.float16  # cuDNN's autocast wrapper: always half
    # ReLU gradients are not compared in half precision (as in tests/test_dtypes.py): cuDNN
    # and our kernels round the pre-activations differently, relu' flips where one lands
    # just below zero, and that changes whole gradient entries (H200, 2026-11-30: 13 of 144
    # entries of dx, by up to 0.11, in one seed of four).
    _compare(ref_outs, ref_grads, outs, grads, torch.float16, grad_values=kind != "rnn_relu")


@pytest.mark.gpu
@pytest.mark.parametrize("autocast_dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_cells_cuda_autocast_match_torch(kind, autocast_dtype):
    ref, tri = cell_pair(kind, 8, 16)
    ref, tri = ref.cuda(), tri.cuda()
    x = torch.randn(3, 8, device="cuda")
    ref_outs, ref_grads = _run(ref, x, None, "cuda", autocast_dtype)
    outs, grads = _run(tri, x, None, "cuda", autocast_dtype)
    assert outs[0].dtype == autocast_dtype
    _compare(ref_outs, ref_grads, outs, grads, autocast_dtype)

