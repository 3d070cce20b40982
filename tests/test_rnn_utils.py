"""torch.nn.utils.rnn round trips through the layers: pack_sequence / pack_padded_sequence in,
pad_packed_sequence out, the same padded outputs, lengths and final states as torch.nn, and
gradients back to the variable-length inputs. (tests/test_modules.py covers packed input
option by option; this is the user's end-to-end path.)
"""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence, pad_packed_sequence, \
    pad_sequence

from tests.common import flat_state, layer_pair
from tests.tolerances import assert_close

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

LENGTHS = (3, 5, 1, 4)  # unsorted on purpose


def _sequences():
    return [torch.randn(n, 3) for n in LENGTHS]


def _loss(padded, state):
    outs = [padded, *flat_state(state)]
    return sum((o * torch.linspace(-1, 1, o.numel()).view(o.shape)).sum() for o in outs)


@pytest.mark.parametrize("kind", ["lstm_proj", "gru"])
def test_pack_sequence_round_trip(kind):
    ref, tri = layer_pair(kind, 3, 4, proj_size=2, bidirectional=True)
    results = []
    sequences = _sequences()
    for module in (tri, ref):
        seqs = [s.clone().requires_grad_(True) for s in sequences]
        packed = pack_sequence(seqs, enforce_sorted=False)
        out, state = module(packed)
        padded, lengths = pad_packed_sequence(out)
        assert lengths.tolist() == list(LENGTHS)
        grads = torch.autograd.grad(_loss(padded, state), seqs)
        results.append((padded, flat_state(state), grads))
    (y, states, grads), (y_ref, states_ref, grads_ref) = results
    assert_close("padded output", y, y_ref)
    for i, (a, e) in enumerate(zip(states, states_ref)):
        assert_close(f"state{i}", a, e)
    for i, (a, e) in enumerate(zip(grads, grads_ref)):
        assert_close(f"grad seq{i}", a, e)


@pytest.mark.parametrize("enforce_sorted", [True, False], ids=["sorted", "unsorted"])
def test_pack_padded_batch_first_round_trip(enforce_sorted):
    ref, tri = layer_pair("lstm", 3, 4, batch_first=True, num_layers=2)
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else list(LENGTHS)
    x = pad_sequence([torch.randn(n, 3) for n in lengths], batch_first=True)  # [B, T, 3]
    T = x.shape[1] + 2  # total_length longer than any sequence: zero rows at the end
    outs = []
    for module in (tri, ref):
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True,
                                      enforce_sorted=enforce_sorted)
        out, (h, c) = module(packed)
        padded, out_lengths = pad_packed_sequence(out, batch_first=True, total_length=T)
        assert out_lengths.tolist() == lengths and padded.shape == (len(lengths), T, 4)
        outs.append((padded, h, c))
    for name, a, e in zip(("padded", "h", "c"), *outs):
        assert_close(name, a, e)
    padded = outs[0][0]
    for b, n in enumerate(lengths):
        assert torch.equal(padded[b, n:], torch.zeros_like(padded[b, n:]))
