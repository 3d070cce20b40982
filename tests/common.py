"""Builders shared by the tests: random single-layer problems for the functional API, module
and cell pairs (torch.nn and tritonrnn holding the same weights). Every problem carries fixed
random loss weights so one loss touches every output and final state.

Kinds name a cell and its options: rnn_tanh, rnn_relu, lstm, lstm_proj (LSTM with proj_size),
gru. Dimension legend: T time, B batch, I input, H hidden, P projection, K = P or H, D
directions.
"""
from dataclasses import dataclass, field

import torch
from torch import nn

import tritonrnn
from tritonrnn.kernels import cells

KINDS = ("rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru")
MODE = {"rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU", "lstm": "LSTM", "lstm_proj": "LSTM",
        "gru": "GRU"}
WEIGHT_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr")


def proj_for(hidden):
    """A projection width for lstm_proj at this hidden size (proj_size must be < hidden)."""
    return max(1, hidden // 3 + 1) if hidden > 2 else 1


# -- functional API: one layer, all directions ---------------------------------------------


@dataclass
class LayerProblem:
    """One recurrent_layer call, stored in float64: every input plus fixed random loss weights
    for every output. `run_layer` casts it to the dtype under test."""
    mode: str
    x: torch.Tensor
    weights: list                 # one (w_ih, w_hh, b_ih, b_hh, w_hr) tuple per direction
    h0: torch.Tensor = None
    c0: torch.Tensor = None
    lengths: torch.Tensor = None  # int64 [B] or None
    loss_weights: dict = field(default_factory=dict)  # output name -> tensor

    def named_inputs(self):
        named = {"x": self.x}
        if self.h0 is not None:
            named["h0"] = self.h0
        if self.c0 is not None:
            named["c0"] = self.c0
        for d, tup in enumerate(self.weights):
            for wname, w in zip(WEIGHT_NAMES, tup):
                if w is not None:
                    named[f"{wname}[{d}]"] = w
        return named

    def rounded(self, dtype):
        """The same problem with every tensor rounded to `dtype` (kept in float64), so a run in
        `dtype` and the float64 reference see identical numbers."""
        r = lambda t: None if t is None else t.to(dtype).to(torch.float64)  # noqa: E731
        return LayerProblem(
            self.mode, r(self.x), [tuple(r(w) for w in tup) for tup in self.weights],
            r(self.h0), r(self.c0), self.lengths,
            {k: r(v) for k, v in self.loss_weights.items()})


def make_problem(mode, T, B, I, H, P=0, D=1, bias=True, h0=False, lengths=None):
    """Random problem. Weights uniform in +-1/sqrt(H) as torch.nn initialises them; h0/c0
    standard normal when requested; lengths a sequence of B ints (any order) or None."""
    f64 = torch.float64
    G = cells.lookup(mode).gates
    K = P or H
    k = H ** -0.5
    u = lambda *shape: (torch.rand(*shape, dtype=f64) * 2 - 1) * k  # noqa: E731
    weights = []
    for _ in range(D):
        weights.append((u(G * H, I), u(G * H, K), u(G * H) if bias else None,
                        u(G * H) if bias else None, u(P, H) if P else None))
    prob = LayerProblem(
        mode, torch.randn(T, B, I, dtype=f64), weights,
        torch.randn(D, B, K, dtype=f64) if h0 else None,
        torch.randn(D, B, H, dtype=f64) if h0 and mode == "LSTM" else None,
        None if lengths is None else torch.tensor(lengths, dtype=torch.int64))
    prob.loss_weights = {"y": torch.randn(T, B, D * K, dtype=f64),
                         "h_n": torch.randn(D, B, K, dtype=f64)}
    if mode == "LSTM":
        prob.loss_weights["c_n"] = torch.randn(D, B, H, dtype=f64)
    return prob


def run_layer(fn, prob, dtype, device="cpu", grads=True):
    """Call fn (functional or reference recurrent_layer) on `prob` cast to dtype/device.
    Returns (outputs {y, h_n, c_n}, gradients {input name -> grad}) of the weighted loss."""
    names = list(prob.named_inputs())
    leaves = {n: t.detach().to(device, dtype).requires_grad_(grads)
              for n, t in prob.named_inputs().items()}
    weights = [tuple(leaves.get(f"{wname}[{d}]") for wname in WEIGHT_NAMES)
               for d in range(len(prob.weights))]
    lengths = None if prob.lengths is None else prob.lengths.to(device)
    y, h_n, c_n = fn(leaves["x"], weights, prob.mode, leaves.get("h0"), leaves.get("c0"),
                     lengths)
    outs = {"y": y, "h_n": h_n, "c_n": c_n}
    if prob.mode != "LSTM":
        assert c_n is None, "c_n must be None for RNN/GRU"
    if not grads:
        return outs, {}
    loss = sum((outs[k] * w.to(device, dtype)).sum() for k, w in prob.loss_weights.items())
    gs = torch.autograd.grad(loss, [leaves[n] for n in names])
    return outs, dict(zip(names, gs))


# -- modules and cells ------------------------------------------------------------------------

_LAYER_CLASS = {"rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}),
                "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
                "lstm": (nn.LSTM, {}), "lstm_proj": (nn.LSTM, {}), "gru": (nn.GRU, {})}
_CELL_CLASS = {"rnn_tanh": (nn.RNNCell, {"nonlinearity": "tanh"}),
               "rnn_relu": (nn.RNNCell, {"nonlinearity": "relu"}),
               "lstm": (nn.LSTMCell, {}), "gru": (nn.GRUCell, {})}


def layer_pair(kind, input_size, hidden_size, proj_size=0, dtype=torch.float32, **kwargs):
    """(torch.nn module, tritonrnn module) with the same constructor arguments; the tritonrnn
    one loads the torch one's state_dict (strict), so both hold identical weights."""
    cls, extra = _LAYER_CLASS[kind]
    extra = dict(extra, **kwargs)
    if kind == "lstm_proj":
        extra["proj_size"] = proj_size
    ref = cls(input_size, hidden_size, dtype=dtype, **extra)
    tri = getattr(tritonrnn, cls.__name__)(input_size, hidden_size, dtype=dtype, **extra)
    tri.load_state_dict(ref.state_dict())
    return ref, tri


def cell_pair(kind, input_size, hidden_size, dtype=torch.float32, **kwargs):
    cls, extra = _CELL_CLASS[kind]
    extra = dict(extra, **kwargs)
    ref = cls(input_size, hidden_size, dtype=dtype, **extra)
    tri = getattr(tritonrnn, cls.__name__)(input_size, hidden_size, dtype=dtype, **extra)
    tri.load_state_dict(ref.state_dict())
    return ref, tri


def flat_state(state):
    """h or (h, c) -> list of tensors."""
    return list(state) if isinstance(state, tuple) else [state]

