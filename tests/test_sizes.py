"""Hidden sizes from 1 to 2048 in float32 against the float64 reference on the same weights.

Small sizes run in the fused regime; from H ~ 64 (fp32 LSTM) up, the split regime takes over by
itself, with its last program partly masked at 129 and 300. T and B are tiny to keep the
interpreter affordable; the largest sizes run for one cell type only.
"""
import pytest
import torch

from tests.common import KINDS, MODE, make_problem, proj_for, run_layer
from tests.tolerances import assert_all_close
from tritonrnn import functional, reference

SIZES = [1, 5, 20, 129, 300]


def _check(kind, H, T, B):
    P = proj_for(H) if kind == "lstm_proj" else 0
    prob = make_problem(MODE[kind], T=T, B=B, I=7, H=H, P=P, D=1, h0=True,
                        lengths=(T, T - 1) if B == 2 else None).rounded(torch.float32)
    outs, grads = run_layer(functional.recurrent_layer, prob, torch.float32)
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, torch.float64)
    assert_all_close("", outs, ref_outs, torch.float32)
    assert_all_close("grad ", grads, ref_grads, torch.float32)


# lstm_proj has no H=1 case: proj_size must be smaller than hidden_size.
@pytest.mark.parametrize("kind,H", [pytest.param(k, h, id=f"{k}-H{h}") for k in KINDS
                                    for h in SIZES if not (k == "lstm_proj" and h == 1)])
def test_hidden_size(kind, H):
    _check(kind, H, T=3, B=2)


@pytest.mark.parametrize("H", [pytest.param(1024, id="H1024"),
                               pytest.param(2048, id="H2048", marks=pytest.mark.slow)])
def test_large_hidden_size(H):
    """Forward and backward at the sizes of real models; RNN_TANH, the cheapest cell, as the
    interpreter needs ~10 s (1024) and ~30 s (2048) for two steps."""
    _check("rnn_tanh", H, T=2, B=2)
