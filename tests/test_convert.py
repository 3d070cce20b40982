"""tritonrnn.convert(): every torch.nn recurrent layer and cell in a model becomes its
tritonrnn counterpart in place, keeping its Parameter objects, device, dtype, training mode
and hooks; the converted model computes what the original did (outputs and every gradient),
an optimizer built before conversion keeps training it, and converting twice changes nothing.
"""
import copy
import warnings

import pytest
import torch
from torch import nn

import tritonrnn
from tests.tolerances import assert_close

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


class Zoo(nn.Module):
    """One of each recurrent class, nested in containers, feeding one scalar loss."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        kw = dict(dtype=dtype)
        self.encoder = nn.Sequential(nn.Linear(3, 4, **kw))
        self.layers = nn.ModuleDict({
            "lstm": nn.LSTM(4, 5, proj_size=2, bidirectional=True, **kw),
            "gru": nn.GRU(4, 3, num_layers=2, batch_first=True, **kw),
        })
        self.rnns = nn.ModuleList([nn.RNN(4, 3, nonlinearity="relu", **kw)])
        self.cells = nn.ModuleList([nn.RNNCell(4, 3, **kw), nn.LSTMCell(4, 3, **kw),
                                    nn.GRUCell(4, 3, bias=False, **kw)])

    def forward(self, x):  # x: [T, B, 3]
        e = self.encoder(x)
        y, (h, c) = self.layers["lstm"](e)
        g, hg = self.layers["gru"](e.transpose(0, 1))
        r, hr = self.rnns[0](e)
        first = e[0]
        outs = [y, h, c, g, hg, r, hr, self.cells[0](first), *self.cells[1](first),
                self.cells[2](first)]
        return sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view(o.shape)).sum()
                   for o in outs)


_TORCH_TO_OURS = {nn.RNN: tritonrnn.RNN, nn.LSTM: tritonrnn.LSTM, nn.GRU: tritonrnn.GRU,
                  nn.RNNCell: tritonrnn.RNNCell, nn.LSTMCell: tritonrnn.LSTMCell,
                  nn.GRUCell: tritonrnn.GRUCell}


def _loss_and_grads(model, x):
    loss = model(x)
    return loss, torch.autograd.grad(loss, list(model.parameters()))


def test_convert_in_place_keeps_parameters_and_matches_torch():
    model = Zoo()
    model.rnns[0].eval()  # per-module training mode must survive
    reference = copy.deepcopy(model)
    params_before = dict(model.named_parameters())
    classes_before = {name: type(m) for name, m in model.named_modules()}

    assert tritonrnn.convert(model) is model
    for name, m in model.named_modules():
        expected = _TORCH_TO_OURS.get(classes_before[name], classes_before[name])
        assert type(m) is expected, name
    after = dict(model.named_parameters())
    assert list(after) == list(params_before)
    assert all(after[n] is params_before[n] for n in after)
    assert not model.rnns[0].training and model.layers["lstm"].training
    assert model.layers["lstm"].proj_size == 2 and model.rnns[0].nonlinearity == "relu"

    x = torch.randn(4, 2, 3)
    loss, grads = _loss_and_grads(model, x)
    ref_loss, ref_grads = _loss_and_grads(reference, x)
    assert_close("loss", loss, ref_loss)
    for (name, _), g, g_ref in zip(model.named_parameters(), grads, ref_grads):
        assert_close(f"grad {name}", g, g_ref)


def test_optimizer_built_before_conversion_trains_the_converted_model():
    model = Zoo()
    reference = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_ref = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(3, 2, 3)
    for _ in range(2):  # one step before conversion, one after: the momentum carries over
        for m, o in ((model, opt), (reference, opt_ref)):
            o.zero_grad()
            m(x).backward()
            o.step()
        tritonrnn.convert(model)
    assert isinstance(model.layers["gru"], tritonrnn.GRU)
    for (name, p), p_ref in zip(model.named_parameters(), reference.parameters()):
        assert_close(f"param {name}", p, p_ref)


def test_convert_keeps_dtype_and_hooks():
    model = Zoo(dtype=torch.float64)
    reference = copy.deepcopy(model)
    calls = []
    model.layers["lstm"].register_forward_hook(lambda mod, args, out: calls.append(type(mod)))
    tritonrnn.convert(model)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    x = torch.randn(3, 2, 3, dtype=torch.float64)
    assert_close("loss", model(x), reference(x))
    assert calls == [tritonrnn.LSTM]


def test_convert_a_bare_layer_returns_the_same_object():
    lstm = nn.LSTM(3, 4, num_layers=2)
    weight = lstm.weight_hh_l1
    out = tritonrnn.convert(lstm)
    assert out is lstm and type(out) is tritonrnn.LSTM and out.weight_hh_l1 is weight
    # RNNBase's bookkeeping still sees the same tensors (flat-weight list, state_dict).
    assert out._flat_weights[5] is weight
    assert out.state_dict()["weight_hh_l1"] is not None


def test_convert_twice_is_a_no_op_without_warnings():
    model = tritonrnn.convert(Zoo())
    classes = [type(m) for m in model.modules()]
    params = list(model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tritonrnn.convert(model) is model
    assert [type(m) for m in model.modules()] == classes
    assert all(a is b for a, b in zip(model.parameters(), params))


def test_model_without_recurrent_layers_is_returned_unchanged_with_a_warning():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    state = copy.deepcopy(model.state_dict())
    with pytest.warns(UserWarning, match="holds no RNN"):
        assert tritonrnn.convert(model) is model
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU]
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_convert_rejects_non_modules():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        tritonrnn.convert(torch.zeros(3))
