"""How the split regime lays its programs out on a GPU (kernels/recurrence.py: _split_layout),
checked here with the GPU's SM count faked: a batch tile's programs wait for each other at
barriers, so they must all run at once (no more per group than SMs), and hidden sizes with
more slices than SMs walk several slices per program with a plan that compiles clean in
that form. One launch per sequence in every case; the interpreter's layout (one program per
group) runs in test_functional's split tests, the GPU's in test_gpu."""
import pytest
import torch

from tritonrnn.kernels import config, pruning, recurrence
from tritonrnn.kernels.cells import CELL_CODES

CUDA = torch.device("cuda")
LSTM = CELL_CODES["LSTM"]


@pytest.fixture
def fake_gpu(monkeypatch):
    """Calls _split_layout as on a GPU with `sms` SMs."""
    monkeypatch.setattr(recurrence, "INTERPRET", False)

    def layout(plan, cell, hidden, width, dtype, sms):
        monkeypatch.setattr(recurrence, "_sm_count", lambda device: sms)
        return recurrence._split_layout(plan, cell, hidden, width, dtype, CUDA)
    return layout


def test_interpreter_walks_every_slice_in_one_program():
    plan = config.Plan(True, 16, 16, 32, 8, 1)
    assert recurrence._split_layout(plan, LSTM, 100, 100, torch.float32, torch.device("cpu")) \
        == (plan, 1, 7)


def test_one_program_per_slice_when_the_slices_fit(fake_gpu):
    plan = config.Plan(True, 16, 16, 32, 8, 1)
    assert fake_gpu(plan, LSTM, 2048, 2048, torch.float16, sms=132) == (plan, 128, 128)


@pytest.mark.parametrize("dname", ["fp32", "tf32", "fp16", "bf16"])
@pytest.mark.parametrize("cell,proj", [(c, False) for c in sorted(CELL_CODES)] + [("LSTM", True)],
                         ids=sorted(CELL_CODES) + ["LSTM_PROJ"])
@pytest.mark.parametrize("hidden,sms", [(2048, 108), (2048, 132), (4096, 132), (20000, 132),
                                        (1000, 3)])
def test_more_slices_than_sms(fake_gpu, monkeypatch, dname, cell, proj, hidden, sms):
    """Never more programs per group than SMs; a group walks several slices only with a plan
    the compile report found clean in the multi-slice forms, and with the widest slices."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", dname == "tf32")
    code, dtype = CELL_CODES[cell], config.torch_dtype(dname)
    width = hidden // 4 if proj else hidden
    chosen = config.default_plan(code, hidden, width, dtype)
    assert chosen.split
    plan, progs, n_slices = fake_gpu(chosen, code, hidden, width, dtype, sms)
    assert n_slices == -(-hidden // plan.block_h)
    assert progs == min(n_slices, sms)
    if plan != chosen:  # the chosen plan had more slices than SMs
        assert -(-hidden // chosen.block_h) > sms
        assert plan == config.multi_slice_plan(code, hidden, width, dtype)
    if progs < n_slices:
        assert not pruning.is_pruned(code, proj, dname, plan, multi_slice=True)
        widest = max(p.block_h for p in config.candidates(code, hidden, width, dtype) if p.split
                     and not pruning.is_pruned(code, proj, dname, p, multi_slice=True))
        assert plan.block_h == widest


@pytest.mark.parametrize("dname", ["fp32", "tf32", "fp16", "bf16"])
def test_every_split_shape_has_a_multi_slice_plan(dname, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", dname == "tf32")
    dtype = config.torch_dtype(dname)
    for code in CELL_CODES.values():
        for hidden in (100, 256, 768, 2048, 8192):
            for width in {hidden, hidden // 4} if code == LSTM else {hidden}:
                plan = config.multi_slice_plan(code, hidden, width, dtype)
                assert plan.split and plan in config.candidates(code, hidden, width, dtype)
