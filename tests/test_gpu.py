"""GPU tier: compiled kernels on CUDA tensors, against torch.nn / the reference loop in float64
on the CPU holding the same rounded numbers. Skipped with a reason without CUDA (and under
TRITON_INTERPRET=1); see conftest.py."""
import contextlib

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from tests.common import KINDS, MODE, flat_state, layer_pair, make_problem, proj_for, run_layer
from tests.tolerances import assert_all_close
from tritonrnn import functional, reference
from tritonrnn.kernels import config, dtypes, testing
from tritonrnn.kernels.cells import CELL_CODES
from tritonrnn.kernels.config import force_split

pytestmark = [pytest.mark.gpu,
              pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")]

CUDA = "cuda"
DTYPES = [pytest.param(torch.float32, id="fp32"), pytest.param(torch.float16, id="fp16"),
          pytest.param(torch.bfloat16, id="bf16")]
LOW = (torch.float16, torch.bfloat16)


@pytest.fixture(autouse=True)
def _no_tf32(monkeypatch):
    """fp32 is compared at fp32 tolerance; TF32 has its own test below."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


def _compare_grads(kind, dtype):
    # see test_dtypes.py: relu' is discontinuous, rounding flips it for some elements
    return not (kind == "rnn_relu" and dtype in LOW)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_module_parity_cuda(kind, dtype):
    """Two-layer bidirectional module, unsorted packed input with a length-1 element and h0/c0,
    on CUDA in `dtype`, against torch.nn in float64 on the CPU with the same rounded weights."""
    H = 37
    ref, tri = layer_pair(kind, 11, H, proj_size=proj_for(H), num_layers=2, bidirectional=True)
    tri.to(CUDA, dtype)
    ref.load_state_dict(tri.state_dict())
    ref.double()
    T, B, lengths = 9, 5, torch.tensor([3, 9, 1, 7, 9])
    K = proj_for(H) if kind == "lstm_proj" else H
    x = torch.randn(T, B, 11).to(dtype)
    states = [torch.randn(4, B, K).to(dtype)]
    if kind.startswith("lstm"):
        states.append(torch.randn(4, B, H).to(dtype))
    loss_weights, results = None, []
    for mod, device, dt in ((tri, CUDA, dtype), (ref, "cpu", torch.float64)):
        xi = x.to(device, dt).clone().requires_grad_()
        si = [s.to(device, dt).clone().requires_grad_() for s in states]
        packed = pack_padded_sequence(xi, lengths, enforce_sorted=False)
        out, state = mod(packed, tuple(si) if len(si) == 2 else si[0])
        outs = {"output": out.data, **dict(zip(("h_n", "c_n"), flat_state(state)))}
        if loss_weights is None:
            loss_weights = [torch.randn(t.shape).to(dtype) for t in outs.values()]
        sum((t * w.to(device, dt)).sum() for t, w in zip(outs.values(), loss_weights)).backward()
        grads = {"input": xi.grad, **{n: s.grad for n, s in zip(("h0", "c0"), si)},
                 **{f"param {n}": p.grad for n, p in mod.named_parameters()}}
        results.append((outs, grads))
    (outs, grads), (ref_outs, ref_grads) = results
    assert all(t.device.type == CUDA and t.dtype == dtype for t in outs.values())
    assert_all_close("", outs, ref_outs, dtype)
    if _compare_grads(kind, dtype):
        assert_all_close("grad ", grads, ref_grads, dtype)


# (H, force_split block or None): fused sizes, sizes where the split regime takes over, and
# the forced split path with its grid-wide barrier at small H. Every size in fp32; three in
# every dtype (each new size x dtype compiles new kernel variants).
SIZES = [(5, None), (64, None), (129, None), (300, None), (1024, None), (2048, None),
         (40, 16), (20, 16)]
EVERY_DTYPE = [(5, None), (300, None), (40, 16)]
CASES = [pytest.param(h, s, dt, id=f"H{h}" + (f"-split{s}" if s else "") + f"-{name}")
         for h, s in SIZES
         for name in ("fp32", "fp16", "bf16", "fp64") for dt in (dtypes.torch_dtype(name),)
         if dt == torch.float32 or (h, s) in EVERY_DTYPE]


@pytest.mark.parametrize("H,split,dtype", CASES)
@pytest.mark.parametrize("kind", KINDS)
def test_functional_cuda(kind, H, split, dtype):
    prob = make_problem(MODE[kind], T=12, B=19, I=13, H=H, P=proj_for(H) if kind == "lstm_proj"
                        else 0, D=2, h0=True,
                        lengths=tuple(1 + (5 * b) % 12 for b in range(19))).rounded(dtype)
    with force_split(split) if split else contextlib.nullcontext():
        with testing.count_launches() as launched:
            outs, grads = run_layer(functional.recurrent_layer, prob, dtype, device=CUDA)
        assert sum(launched.values()) > 0
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, torch.float64)
    assert_all_close("", outs, ref_outs, dtype)
    if _compare_grads(kind, dtype):
        assert_all_close("grad ", grads, ref_grads, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("kind", KINDS)
def test_split_multi_slice_cuda(kind, dtype, monkeypatch):
    """The split regime's multi-slice form, as hidden sizes with more slices than SMs run it:
    the launcher is told the GPU has 2 SMs, so each batch tile's 2 programs walk several
    hidden slices each and wait for each other at every exchange; 3 batch tiles x 2 directions
    make 6 groups that take their work by ticket."""
    real_limits = config.device_limits
    monkeypatch.setattr(config, "device_limits",  # config.plan asks with device=None
                        lambda device: None if device is None else
                        (2,) + real_limits(device)[1:])
    H = 300
    P = proj_for(H) if kind == "lstm_proj" else 0
    code = CELL_CODES[MODE[kind]]
    layout = config.split_layout(config.plan(code, H, P or H, dtype), code, H, P or H, dtype,
                                 config.device_limits(torch.device(CUDA)))
    assert layout.plan.split and layout.progs == 2 < layout.n_slices, layout
    prob = make_problem(MODE[kind], T=9, B=40, I=13, H=H, P=P, D=2, h0=True,
                        lengths=tuple(1 + (5 * b) % 9 for b in range(40))).rounded(dtype)
    with testing.count_launches() as launched:
        outs, grads = run_layer(functional.recurrent_layer, prob, dtype, device=CUDA)
    assert launched["split_forward"] == 1 and launched["split_backward"] == 1
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, torch.float64)
    assert_all_close("", outs, ref_outs, dtype)
    if _compare_grads(kind, dtype):
        assert_all_close("grad ", grads, ref_grads, dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_tf32_default(kind, monkeypatch):
    """torch's default for recurrent layers on CUDA: fp32 tensors, TF32 matmuls."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    prob = make_problem(MODE[kind], T=12, B=7, I=13, H=100, P=proj_for(100)
                        if kind == "lstm_proj" else 0, D=2, h0=True).rounded(torch.float32)
    outs, grads = run_layer(functional.recurrent_layer, prob, torch.float32, device=CUDA)
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, torch.float64)
    assert_all_close("", outs, ref_outs, "tf32")
    if kind != "rnn_relu":
        assert_all_close("grad ", grads, ref_grads, "tf32")
