"""tritonrnn.RNN / LSTM / GRU against torch.nn on the same weights.

Every case compares the output, the final states, and the gradients of the input, h0, c0 and
every parameter of a loss that weights all outputs and final states with fixed random numbers.
Kinds x cases below; each case switches several options at once so that every option is seen
both ways, and the risky combinations (packed + bidirectional + h0, two layers + bidirectional)
are seen together. Awkward sizes (1, primes, non-powers of two) are their own cases.
"""
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import tritonrnn
from tests.common import KINDS, flat_state, layer_pair, proj_for
from tests.tolerances import assert_all_close

# torch.nn's own CPU LSTM says so on every call with proj_size; nothing to do with us.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


@dataclass(frozen=True)
class Case:
    id: str
    T: int = 4
    B: int = 2
    I: int = 3
    H: int = 5
    bias: bool = True
    batch_first: bool = False
    bidirectional: bool = False
    num_layers: int = 1
    h0: bool = False
    input: str = "padded"  # padded | unbatched | packed_sorted | packed_unsorted
    lengths: tuple = ()    # packed inputs only
    dropout: float = 0.0
    training: bool = False


CASES = [
    Case("base"),
    Case("nobias-h0", bias=False, h0=True),
    Case("batchfirst-h0-2layers", batch_first=True, h0=True, num_layers=2),
    Case("bidir", bidirectional=True),
    Case("bidir-2layers-h0-nobias-batchfirst", T=3, bidirectional=True, num_layers=2, h0=True,
         bias=False, batch_first=True),
    Case("unbatched", input="unbatched"),
    Case("unbatched-bidir-2layers-h0-batchfirst", T=3, input="unbatched", bidirectional=True,
         num_layers=2, h0=True, batch_first=True),
    Case("packed-sorted-bidir-2layers-h0", T=5, B=3, lengths=(5, 3, 1), input="packed_sorted",
         bidirectional=True, num_layers=2, h0=True),
    Case("packed-unsorted-bidir-batchfirst-h0", T=5, B=4, lengths=(2, 5, 1, 4),
         input="packed_unsorted", bidirectional=True, batch_first=True, h0=True),
    Case("packed-unsorted-2layers-nobias", T=4, B=3, lengths=(3, 1, 4), input="packed_unsorted",
         num_layers=2, bias=False),
    Case("size1-T1-B1", T=1, B=1, I=1, H=1, h0=True, bidirectional=True),
    Case("primes-I7-H13-B3", T=3, B=3, I=7, H=13, bidirectional=True, h0=True),
    Case("odd-I17-H31-B5-2layers", T=3, B=5, I=17, H=31, num_layers=2),
    Case("B17-two-batch-tiles", T=3, B=17, I=2, H=3, h0=True),
    # dropout acts between layers, only in training; torch draws its masks with the same
    # F.dropout calls, so under the same seed the masks must agree exactly.
    Case("dropout-eval-3layers", T=3, num_layers=3, dropout=0.5, training=False),
    Case("dropout-train-3layers", T=3, num_layers=3, dropout=0.5, training=True, h0=True),
    Case("dropout-train-packed-bidir", T=4, B=3, lengths=(4, 1, 3), input="packed_unsorted",
         num_layers=2, bidirectional=True, dropout=0.3, training=True),
]


def _sizes(kind, case):
    H = max(case.H, 2) if kind == "lstm_proj" else case.H  # proj_size must be < hidden_size
    return H, (proj_for(H) if kind == "lstm_proj" else 0)


def _make_inputs(kind, case, ref):
    """Input tensor (padded, in the case's layout) and the list of initial states (possibly
    empty), all float32. Padding of packed inputs is NaN: it must never be read."""
    D = 2 if case.bidirectional else 1
    H, P = _sizes(kind, case)
    K = P or H
    if case.input == "unbatched":
        x = torch.randn(case.T, case.I)
        batch = ()
    else:
        x = torch.randn(case.T, case.B, case.I)
        batch = (case.B,)
        if case.input.startswith("packed"):
            for b, n in enumerate(case.lengths):
                x[n:, b] = float("nan")
        if case.batch_first:
            x = x.transpose(0, 1).contiguous()
    states = []
    if case.h0:
        states.append(torch.randn(case.num_layers * D, *batch, K))
        if kind.startswith("lstm"):
            states.append(torch.randn(case.num_layers * D, *batch, H))
    return x, states


def _run(mod, kind, case, x, states, loss_weights):
    """Forward + backward of the weighted loss. Returns (outputs, gradients, packed metadata);
    fills loss_weights (a list) on the first call so both modules use the same ones."""
    mod.train(case.training)
    x = x.clone().requires_grad_()
    states = [s.clone().requires_grad_() for s in states]
    inp = x
    if case.input.startswith("packed"):
        inp = pack_padded_sequence(x, torch.tensor(case.lengths), batch_first=case.batch_first,
                                   enforce_sorted=case.input == "packed_sorted")
    hx = None
    if states:
        hx = tuple(states) if kind.startswith("lstm") else states[0]
    torch.manual_seed(1234)  # identical dropout masks for both modules
    out, state = mod(inp, hx)
    meta = {}
    if case.input.startswith("packed"):
        assert isinstance(out, PackedSequence)
        meta = {"batch_sizes": out.batch_sizes, "sorted_indices": out.sorted_indices,
                "unsorted_indices": out.unsorted_indices}
        out = out.data
    final = flat_state(state)
    outs = {"output": out, "h_n": final[0]}
    if kind.startswith("lstm"):
        outs["c_n"] = final[1]
    if not loss_weights:
        loss_weights.extend(torch.randn(t.shape) for t in outs.values())
    loss = sum((t * w).sum() for t, w in zip(outs.values(), loss_weights))
    loss.backward()
    grads = {"input": x.grad}
    for name, s in zip(("h0", "c0"), states):
        grads[name] = s.grad
    grads.update({f"param {n}": p.grad for n, p in mod.named_parameters()})
    return outs, grads, meta


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_torch_nn(kind, case):
    H, P = _sizes(kind, case)
    ref, tri = layer_pair(kind, case.I, H, proj_size=P, bias=case.bias,
                          batch_first=case.batch_first, bidirectional=case.bidirectional,
                          num_layers=case.num_layers, dropout=case.dropout)
    x, states = _make_inputs(kind, case, ref)
    loss_weights = []
    ref_outs, ref_grads, ref_meta = _run(ref, kind, case, x, states, loss_weights)
    tri_outs, tri_grads, tri_meta = _run(tri, kind, case, x, states, loss_weights)

    for key, value in ref_meta.items():  # PackedSequence layout (indices None when sorted)
        got = tri_meta[key]
        assert (got is None and value is None) or torch.equal(got, value), key
    for name, t in tri_outs.items():
        assert t.dtype == torch.float32, name
    assert_all_close("", tri_outs, ref_outs)
    assert_all_close("grad ", tri_grads, ref_grads)


# -- dropout, statistically (the exact match is in the cases above) ------------------------


def test_dropout_only_in_training():
    ref_no_dropout, tri = layer_pair("lstm", 4, 6, num_layers=3, dropout=0.5)
    x = torch.randn(5, 3, 4)
    tri.eval()
    with torch.no_grad():
        eval_out = tri(x)[0]
        # eval: dropout is a no-op, same as the same weights without dropout
        assert torch.equal(eval_out, tri(x)[0])
        no_dropout = tritonrnn.LSTM(4, 6, num_layers=3)
        no_dropout.load_state_dict(tri.state_dict())
        assert_all_close("eval vs no dropout ", {"y": eval_out}, {"y": no_dropout(x)[0]})
        tri.train()
        torch.manual_seed(0)
        first = tri(x)[0]
        torch.manual_seed(1)
        second = tri(x)[0]
    # training: masks depend on the RNG, and change the output
    assert not torch.equal(first, eval_out)
    assert not torch.equal(first, second)


# -- drop-in surface: classes, parameters, state_dict, repr ------------------------------------


@pytest.mark.parametrize("kwargs", [
    pytest.param({}, id="default"),
    pytest.param(dict(num_layers=2, bias=False, batch_first=True, dropout=0.25), id="options"),
    pytest.param(dict(bidirectional=True, num_layers=3), id="bidir-3layers"),
])
@pytest.mark.parametrize("kind", KINDS)
def test_same_parameters_state_dict_and_repr(kind, kwargs):
    cls_name = {"rnn_tanh": "RNN", "rnn_relu": "RNN", "gru": "GRU"}.get(kind, "LSTM")
    extra = {"rnn_tanh": dict(nonlinearity="tanh"), "rnn_relu": dict(nonlinearity="relu"),
             "lstm_proj": dict(proj_size=3)}.get(kind, {})
    torch.manual_seed(0)
    ref = getattr(nn, cls_name)(5, 7, **extra, **kwargs)
    torch.manual_seed(0)
    tri = getattr(tritonrnn, cls_name)(5, 7, **extra, **kwargs)
    assert isinstance(tri, nn.RNNBase)
    assert tri.mode == ref.mode
    assert repr(tri) == repr(ref)
    assert [n for n, _ in tri.named_parameters()] == [n for n, _ in ref.named_parameters()]
    # same initialisation from the same seed
    for (name, p), q in zip(tri.named_parameters(), ref.parameters()):
        assert torch.equal(p, q), name
    assert list(tri.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(tri.state_dict())  # and back
