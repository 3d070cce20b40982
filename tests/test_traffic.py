"""Launches per sequence and bytes per step of the forward recurrence stay at their bounds."""
import pytest
import torch

from bench.traffic import measure, per_step
from tests.threaded_interpreter import programs_in_threads
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


# The split regime as it runs on a GPU: one program per 16-unit slice, each in its own thread
# (tests/threaded_interpreter.py) so that their waits for each other really wait. Each keeps
# its rows of W_hh on chip, so per step a program loads all of h_{t-1} in the storage dtype,
# its units' input projection and the group's step flags: at most 1.1x (h + input projection
# + 1 KiB), the bound of the "resident weights" issue. The difference of a 2- and a 4-step run
# is per-step traffic only (the one load of W per launch drops out). The flags are counted
# apart (int32 words): how often a waiting thread polls them depends on thread scheduling,
# so the data's bytes are held to the bound exactly and the flags to at least one poll of the
# group per program and step.
@pytest.mark.parametrize("cell,H", [("LSTM", 128), ("GRU", 128), ("RNN_TANH", 192),
                                    ("LSTM", 768)],
                         ids=["lstm128", "gru128", "rnn192", "lstm768-anchor"])
def test_split_forward_loads_no_weights_per_step(cell, H):
    B, elt = 16, 2
    kind = cells.lookup(cell)
    slice_units = 64 // config.padded_gates(kind.code)
    programs = -(-H // slice_units)
    data, flags = {}, {}
    for T in (2, 4):
        with config.force_split(slice_units, reduction_chunk=256, programs=1 << 10), \
                programs_in_threads(timeout_s=600) as threaded:
            launches, moved = measure(cell, H, B, T)
        assert launches == 1 and threaded == [programs]
        data[T], flags[T] = moved.loaded - moved.loaded_int32, moved.loaded_int32
    per_program = (data[4] - data[2]) / 2 / programs
    h_and_xp = B * H * elt + kind.gates * B * slice_units * elt
    assert h_and_xp <= per_program <= 1.1 * (h_and_xp + 1024), (per_program, h_and_xp)
    one_poll = programs * 4  # every program reads the group's flags at least once a step
    assert all(flags[T] >= T * programs * one_poll for T in flags), (flags, one_poll)
