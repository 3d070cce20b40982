"""Drop-in where user code looks at the layer, not only at its outputs.

- ``isinstance(layer, torch.nn.LSTM)`` (GRU, RNN, the cells) holds for tritonrnn's classes, so
  a library branch on it takes the torch.nn path, and torch.compile(fullgraph=True) still takes
  a model holding them in one graph, while an unconverted torch.nn layer is refused by Dynamo
  exactly as before (tritonrnn/dynamo.py).
- ``convert`` converts subclasses whose own forward wraps ``super().forward`` (keeping their
  methods and attributes; they still pickle), and warns, saying why, for one that computes
  the layer itself.
- TorchScript: torch.jit.trace passes its own check and records torch's ops; torch.jit.script
  raises an error that names what to use instead.

Written from scratch after the patterns of libraries whose models hold torch.nn layers (a
module that branches on isinstance, subclasses that handle lengths around super().forward).
"""
import abc
import copy
import io
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import tritonrnn
import tritonrnn.dynamo
from torch._dynamo.testing import CompileCounterWithBackend
from tests.common import flat_state
from tests.tolerances import assert_close

pytestmark = [pytest.mark.filterwarnings("ignore:LSTM with projections is not supported"),
              pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated"),
              # torch.nn's own argument checks, recorded as constants by the trace
              pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")]

_CLASSES = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")


def _pair(name, **kwargs):
    """(torch.nn module, the same module deep-copied and converted)."""
    torch.manual_seed(0)
    ref = getattr(nn, name)(3, 4, **kwargs)
    return ref, tritonrnn.convert(copy.deepcopy(ref))


@pytest.fixture
def kernel_launches(monkeypatch):
    """A list that grows by one per recurrence_forward call (one per layer or cell step): the
    kernels ran, not a torch.nn fallback."""
    import tritonrnn.functional
    calls = []
    op = tritonrnn.functional.recurrence_forward

    def counted(*args):
        calls.append(args[7])
        return op(*args)

    monkeypatch.setattr(tritonrnn.functional, "recurrence_forward", counted)
    return calls


def _grads(module, loss):
    return torch.autograd.grad(loss, list(module.parameters()))


def _weighted(outs):
    return sum((o * torch.linspace(-1, 1, o.numel()).view(o.shape)).sum() for o in outs)


# -- isinstance ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _CLASSES)
def test_instances_of_their_torch_nn_class(name):
    built = getattr(tritonrnn, name)(3, 4)
    _, converted = _pair(name)
    for m in (built, converted):
        assert isinstance(m, getattr(nn, name))
        assert type(m) is getattr(tritonrnn, name)
    # ...and of nothing of torch's they were not before
    others = [getattr(nn, n) for n in _CLASSES if n != name]
    assert not any(isinstance(built, cls) for cls in others)


class _Recurrent(nn.Module):
    """A library-style wrapper: a torch.nn LSTM/GRU/RNN runs as one call; anything else is
    assumed to be the library's own step-by-step layer, which takes a ``mask`` keyword (a
    torch.nn layer handed that keyword raises TypeError)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        if isinstance(self.layer, (nn.LSTM, nn.GRU, nn.RNN)):
            y, state = self.layer(x)
        else:
            y, state = self.layer(x, mask=torch.ones(x.shape[:2], dtype=torch.bool))
        return [y, *flat_state(state)]


@pytest.mark.parametrize("name", ("RNN", "LSTM", "GRU"))
def test_isinstance_branch_takes_the_torch_nn_path(name, kernel_launches):
    ref, _ = _pair(name, num_layers=2)
    model = _Recurrent(copy.deepcopy(ref))
    tritonrnn.convert(model)
    assert type(model.layer) is getattr(tritonrnn, name)
    x = torch.randn(4, 2, 3)
    outs, ref_outs = model(x), _Recurrent(ref)(x)
    assert len(kernel_launches) == 2  # one per layer
    for o, r in zip(outs, ref_outs):
        assert_close(name, o, r)
    for g, r in zip(_grads(model, _weighted(outs)), _grads(ref, _weighted(ref_outs))):
        assert_close(f"{name} grad", g, r)


def test_compile_fullgraph_with_isinstance_branch_is_one_graph():
    assert tritonrnn.dynamo.hook_installed()
    ref, _ = _pair("LSTM", bidirectional=True)
    model = tritonrnn.convert(_Recurrent(copy.deepcopy(ref)))
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, fullgraph=True, backend=counter)
    x = torch.randn(3, 2, 3)
    outs = compiled(x)
    grads = _grads(model, _weighted(outs))
    assert counter.frame_count == 1
    ops = [str(n.target) for g in counter.graphs for n in g.graph.nodes]
    assert "tritonrnn.recurrence_forward.default" in ops
    eager = model(x)
    for o, e in zip(outs, eager):
        assert_close("y", o, e)
    for g, e in zip(grads, _grads(model, _weighted(eager))):
        assert_close("grad", g, e)
    assert torch._dynamo.config.allow_rnn is False  # left as the user had it


def test_dynamo_still_refuses_unconverted_torch_nn_layers():
    """The hook lets Dynamo wrap tritonrnn's layers only: torch.nn's own graph-break as
    before (an error under fullgraph=True)."""
    torch._dynamo.reset()
    model = _Recurrent(nn.LSTM(3, 4))
    with pytest.raises(Exception, match="RNN, GRU, or LSTM|purposely graph breaks"):
        torch.compile(model, fullgraph=True, backend="eager")(torch.randn(3, 2, 3))
    torch._dynamo.reset()


# -- subclasses ------------------------------------------------------------------------------


class _Sequential(abc.ABC, nn.RNNBase):
    """A library-style mixin over torch.nn's layers (abstract, so its metaclass is ABCMeta):
    optional lengths are packed around super().forward, and an extra method."""

    def forward(self, x, hx=None, lengths=None):
        if lengths is None:
            return super().forward(x, hx)
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, state = super().forward(packed, hx)
        out, _ = pad_packed_sequence(out, total_length=x.size(0))
        return out, state

    @abc.abstractmethod
    def zero_state(self, batch):
        ...


class _SeqLSTM(_Sequential, nn.LSTM):
    def zero_state(self, batch):
        return torch.zeros(self.num_layers, batch, self.hidden_size)


class _SeqGRU(_Sequential, nn.GRU):
    def zero_state(self, batch):
        return torch.zeros(self.num_layers, batch, self.hidden_size)


class _ScaledCell(nn.GRUCell):
    def forward(self, x, hx=None):
        return super().forward(x * self.scale, hx)


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = _SeqLSTM(3, 4, num_layers=2)
        self.gru = _SeqGRU(3, 4)
        self.cell = _ScaledCell(3, 4)
        self.cell.scale = 0.5  # an attribute set on the instance

    def forward(self, x, lengths):
        y, (h, c) = self.lstm(x, lengths=lengths)
        g, hg = self.gru(x, self.gru.zero_state(x.size(1)))
        return [y, h, c, g, hg, self.cell(x[0])]


def test_subclasses_wrapping_super_forward_are_converted(kernel_launches):
    torch.manual_seed(0)
    ref = _Encoder()
    model = copy.deepcopy(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tritonrnn.convert(model)
    for sub, user, ours in ((model.lstm, _SeqLSTM, tritonrnn.LSTM),
                            (model.gru, _SeqGRU, tritonrnn.GRU),
                            (model.cell, _ScaledCell, tritonrnn.GRUCell)):
        assert isinstance(sub, user) and isinstance(sub, ours)
        assert type(sub).__name__ == user.__name__
        # tritonrnn's forward sits between the user's code and torch.nn's
        mro = type(sub).__mro__
        assert mro.index(user) < mro.index(ours) < mro.index(getattr(nn, ours.__name__))
    assert model.cell.scale == 0.5
    x, lengths = torch.randn(5, 3, 3), torch.tensor([2, 5, 3])
    for run in range(2):  # then again after a second convert (a no-op)
        del kernel_launches[:]
        outs, ref_outs = model(x, lengths), ref(x, lengths)
        assert sorted(kernel_launches) == ["GRU", "GRU", "LSTM", "LSTM"]
        for o, r in zip(outs, ref_outs):
            assert_close("out", o, r)
        for g, r in zip(_grads(model, _weighted(outs)), _grads(ref, _weighted(ref_outs))):
            assert_close("grad", g, r)
        classes = [type(m) for m in model.modules()]
        tritonrnn.convert(model)
        assert [type(m) for m in model.modules()] == classes


def test_converted_subclass_compiles_fullgraph():
    torch.manual_seed(0)
    model = tritonrnn.convert(nn.Sequential(_SeqGRU(3, 4)))
    counter = CompileCounterWithBackend("aot_eager")
    x = torch.randn(3, 2, 3)
    y, h = torch.compile(model, fullgraph=True, backend=counter)(x)
    _grads(model, _weighted([y, h]))
    assert counter.frame_count == 1
    y_eager, h_eager = model(x)
    assert_close("y", y, y_eager)
    assert_close("h", h, h_eager)


def test_converted_subclasses_pickle_and_deepcopy():
    torch.manual_seed(0)
    model = tritonrnn.convert(_Encoder())
    x, lengths = torch.randn(4, 2, 3), torch.tensor([4, 2])
    expected = model(x, lengths)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for clone in (torch.load(buffer, weights_only=False), copy.deepcopy(model)):
        assert type(clone.lstm) is type(model.lstm) and type(clone.cell) is type(model.cell)
        assert clone.cell.scale == 0.5
        for o, e in zip(clone(x, lengths), expected):
            assert torch.equal(o, e)


def test_subclass_computing_the_layer_itself_is_left_alone_with_the_reason():
    class OwnLSTM(nn.LSTM):
        def forward(self, x, hx=None):  # calls torch's kernel directly, never nn.LSTM.forward
            return torch._VF.lstm(x, hx, self._flat_weights, self.bias, self.num_layers, 0.0,
                                  False, False, False)

    model = nn.Sequential(OwnLSTM(2, 3))
    with pytest.warns(UserWarning, match="never calls torch.nn's forward"):
        tritonrnn.convert(model)
    assert type(model[0]) is OwnLSTM


# -- TorchScript -----------------------------------------------------------------------------


def _example(name, batch=2):
    return torch.randn(batch, 3) if name.endswith("Cell") else torch.randn(4, batch, 3)


@pytest.mark.parametrize("name", _CLASSES)
def test_jit_trace_passes_its_check_and_saves(name):
    ref, tri = _pair(name)
    x = _example(name)
    traced = torch.jit.trace(tri, (x,), check_inputs=[(_example(name, batch=3),)])
    assert "tritonrnn::" not in str(traced.inlined_graph)  # torch's ops: runs without us
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x2 = _example(name, batch=3)
    for o, r in zip(flat_state(loaded(x2)), flat_state(ref(x2))):
        for a, b in zip(flat_state(o), flat_state(r)):
            assert_close(name, a, b)


@pytest.mark.parametrize("name", ("LSTM", "GRUCell"))
def test_jit_script_names_what_to_use_instead(name):
    _, tri = _pair(name)
    with pytest.raises(RuntimeError, match=r"torch\.jit\.trace"):
        torch.jit.script(tri)
    with pytest.raises(RuntimeError, match=r"torch\.jit\.trace"):
        torch.jit.script(nn.Sequential(tri))
