"""Launches per sequence and bytes per step of the forward recurrence stay at their bounds."""
import pytest
import torch

from bench.traffic import per_step
from tritonrnn.kernels import cells, config

# The fused regime's forward must read only the step's input projection and write h (ratio
# 1.0 measured); 1.2 is the project's ceiling, leaving room for future tiling overheads.
RATIO_CEILING = 1.2


# Shapes whose default fp16 plan is the fused regime (kernels/config.py; larger LSTM/GRU
# sizes spill there and run split, which re-reads W_hh every step: see below).
@pytest.mark.parametrize("cell,H,P", [("LSTM", 64, 0), ("LSTM", 16, 8), ("GRU", 64, 0),
                                      ("RNN_TANH", 128, 0), ("RNN_RELU", 5, 0)],
                         ids=["lstm64", "lstm16-proj8", "gru64", "rnn128", "relu5"])
@pytest.mark.parametrize("training", [False, True], ids=["infer", "train"])
def test_fused_forward_traffic(cell, H, P, training):
    assert not config.plan(cells.lookup(cell).code, H, P or H, torch.float16).split, "not fused"
    launches, per, bound = per_step(cell, H, B=16, P=P, training=training)
    assert launches == (1, 1), "one launch per layer-direction, whatever T"
    assert per / bound <= RATIO_CEILING, (per, bound)


# Shapes whose default fp16 plan is the split regime. Its forward is one launch too; per step
# it must move the lower bound, W_hh once (each slice streams its own rows from L2 on a GPU),
# and each slice's read of all of h_{t-1} (fp32, B x H); the ceiling allows 1.2x that, which
# covers the state the interpreter's multi-slice form keeps in memory (c, the h ring's store).
@pytest.mark.parametrize("cell,H", [("LSTM", 128), ("GRU", 128)], ids=["lstm128", "gru128"])
def test_split_forward_traffic(cell, H):
    code = cells.lookup(cell).code
    plan = config.plan(code, H, H, torch.float16)
    assert plan.split, "not split"
    launches, per, bound = per_step(cell, H, B=16)
    assert launches == (1, 1), "one launch per layer-direction, whatever T"
    weights = cells.lookup(cell).gates * H * H * 2
    h_reads = -(-H // plan.block_h) * 16 * H * 4
    assert bound + weights <= per <= RATIO_CEILING * (bound + weights + h_reads), (per, bound)
