"""GPU tier: every selectable launch configuration runs on the GPU (no OutOfResources) and
agrees with the float64 reference, forward and backward.

The compile report shows each configuration compiles without spills inside shared memory;
this launches them. Shapes: one fused-regime and one split-regime hidden size per cell, so
every candidate of config.candidates (minus the pruned ones) is exercised for that regime.
Skipped without CUDA (conftest.py)."""
import pytest
import torch

from tests.common import MODE, make_problem, proj_for, run_layer
from tests.tolerances import assert_all_close
from tritonrnn import functional, reference
from tritonrnn.kernels import config
from tritonrnn.kernels import dtypes
from tritonrnn.kernels.cells import CELL_CODES

pytestmark = pytest.mark.gpu

DTYPES = {name: dtypes.torch_dtype(name) for name in ("fp32", "tf32", "fp16", "bf16")}


def _cases():
    for kind in ("lstm", "lstm_proj", "gru", "rnn_tanh"):
        for H in (64, 768):
            for dname, dtype in DTYPES.items():
                P = proj_for(H) if kind == "lstm_proj" else 0
                code = CELL_CODES[MODE[kind]]
                for plan in config.candidates(code, H, P or H, dtype):
                    cfg = f"{'split' if plan.split else 'fused'}-b{plan.block_b}-n{plan.block_h}" \
                          f"-k{plan.block_k}-w{plan.num_warps}-s{plan.num_stages}"
                    yield pytest.param(kind, H, dname, plan, id=f"{kind}-H{H}-{dname}-{cfg}")


@pytest.mark.parametrize("kind,H,dname,plan", list(_cases()))
def test_every_selectable_config_launches(kind, H, dname, plan, monkeypatch):
    dtype = DTYPES[dname]
    tf32 = dname == "tf32"
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", tf32)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", tf32)
    prob = make_problem(MODE[kind], T=9, B=21, I=17, H=H, P=proj_for(H) if kind == "lstm_proj"
                        else 0, D=2, h0=True,
                        lengths=tuple(1 + (4 * b) % 9 for b in range(21))).rounded(dtype)
    with config.force_plan(plan):
        outs, grads = run_layer(functional.recurrent_layer, prob, dtype, device="cuda")
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, torch.float64)
    tol = "tf32" if tf32 else dtype
    assert_all_close("", outs, ref_outs, tol)
    assert_all_close("grad ", grads, ref_grads, tol)
