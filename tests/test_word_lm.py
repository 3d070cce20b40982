"""The README's example, examples/word_lm.py: a word-level LSTM language model trained with
torch.nn layers and, after tritonrnn.convert, with ours, on the same generated data.

Losses are compared with the float32 tolerance (tests/tolerances.py): the two runs differ only
in float32 rounding inside the LSTM (their weights end ~3e-8 apart after a few steps, and the
printed losses agree to every digit), while a wrong gradient anywhere moves the loss after one
SGD step at lr=1 by ~1e-2, far outside it.
"""
import sys

import torch

import tritonrnn
from examples import word_lm
from tests.tolerances import assert_close
from tritonrnn.kernels import testing

SMALL = dict(steps=3, batch=2, seq_len=4, embed=8, hidden=16, sentences=40)


def test_converted_language_model_trains_with_the_same_losses():
    with testing.count_launches() as launched:
        ref_losses, our_losses, reference, converted = word_lm.compare(**SMALL)
    assert type(converted.lstm) is tritonrnn.LSTM and type(reference.lstm) is torch.nn.LSTM
    assert launched["fused_backward"] == SMALL["steps"] * 2  # ours ran, both layers
    assert_close("losses", torch.tensor(our_losses), torch.tensor(ref_losses))
    assert ref_losses[0] != ref_losses[-1]  # training moved the weights
    for (name, p), q in zip(converted.named_parameters(), reference.parameters()):
        assert_close(f"trained {name}", p, q)


def test_script_prints_the_comparison(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["word_lm", "--steps", "2", "--batch", "2", "--seq-len",
                                      "3", "--embed", "8", "--hidden", "8"])
    word_lm.main()
    out = capsys.readouterr().out
    assert "Triton kernels under the interpreter" in out
    assert "largest loss difference" in out and len(out.strip().splitlines()) == 5
