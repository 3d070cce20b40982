"""The four implementations the benchmark compares, all holding the same weights.

- ``tritonrnn``: our modules (Triton kernels on CUDA).
- ``torch``: torch.nn.RNN / LSTM / GRU (cuDNN on CUDA, PyTorch's native kernels on CPU).
- ``loop``: a plain PyTorch time loop over torch.nn.RNNCell / LSTMCell / GRUCell, one Python
  step per timestep, layer by layer and direction by direction: what people write by hand.
- ``loop_compiled``: the same loop with each cell under ``torch.compile`` (default mode,
  static shapes). The step is compiled rather than the whole loop: a compiled loop unrolls
  every timestep into one graph, which for T in the thousands takes longer to compile than
  to run the whole benchmark; compiling the step is what one can actually deploy.

Every model maps time-major input x [T, B, I] to y [T, B, D*H] (D directions).
"""
import torch
from torch import nn

from tritonrnn.kernels.dtypes import torch_dtype

PROVIDERS = ("tritonrnn", "torch", "loop", "loop_compiled")
# The dtypes benchmarks run (torch dtypes from the one naming table, kernels/dtypes.py).
DTYPES = {name: torch_dtype(name) for name in ("fp32", "fp16", "bf16")}

_TORCH_LAYER = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_TANH": nn.RNN, "RNN_RELU": nn.RNN}
_TORCH_CELL = {"LSTM": nn.LSTMCell, "GRU": nn.GRUCell, "RNN_TANH": nn.RNNCell,
               "RNN_RELU": nn.RNNCell}


def _layer_kwargs(shape):
    kw = dict(num_layers=shape.layers, bidirectional=shape.bidirectional)
    if shape.cell.startswith("RNN"):
        kw["nonlinearity"] = "tanh" if shape.cell == "RNN_TANH" else "relu"
    return kw


def reference_layer(shape, dtype, device):
    """The torch.nn layer whose weights every provider copies (seeded: the same weights for
    every provider and every run)."""
    torch.manual_seed(0)
    layer = _TORCH_LAYER[shape.cell](shape.input_size, shape.hidden, **_layer_kwargs(shape))
    return layer.to(device=device, dtype=DTYPES[dtype])


class CellLoop(nn.Module):
    """A stacked, optionally bidirectional recurrent layer written as a Python loop over
    torch.nn cells, with the weights of a torch.nn layer. ``compile_cells`` wraps each cell in
    torch.compile."""

    def __init__(self, layer, compile_cells=False):
        super().__init__()
        self.is_lstm = isinstance(layer, nn.LSTM)
        self.directions = 2 if layer.bidirectional else 1
        self.cells = nn.ModuleList()
        cell_kw = {} if not isinstance(layer, nn.RNN) else {"nonlinearity": layer.nonlinearity}
        for k in range(layer.num_layers):
            for d in range(self.directions):
                suffix = f"_l{k}" + ("_reverse" if d else "")
                w_ih = getattr(layer, "weight_ih" + suffix)
                cell = _TORCH_CELL[layer.mode](w_ih.shape[1], layer.hidden_size, **cell_kw)
                cell = cell.to(device=w_ih.device, dtype=w_ih.dtype)
                with torch.no_grad():
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        getattr(cell, name).copy_(getattr(layer, name + suffix))
                self.cells.append(cell)
        self.steps = [torch.compile(c, dynamic=False) if compile_cells else c
                      for c in self.cells]

    def forward(self, x):
        T, B = x.shape[0], x.shape[1]
        for k in range(len(self.cells) // self.directions):
            outs = []
            for d in range(self.directions):
                i = k * self.directions + d
                step, H = self.steps[i], self.cells[i].hidden_size
                h = x.new_zeros(B, H)
                state = (h, x.new_zeros(B, H)) if self.is_lstm else h
                ys = [None] * T
                for t in (range(T) if d == 0 else range(T - 1, -1, -1)):
                    state = step(x[t], state)
                    ys[t] = state[0] if self.is_lstm else state
                outs.append(torch.stack(ys))
            x = outs[0] if self.directions == 1 else torch.cat(outs, dim=2)
        return x


def build(provider, reference):
    """The model for ``provider`` holding ``reference``'s weights, in training mode (callers
    switch to eval for inference)."""
    if provider == "torch":
        return reference
    if provider == "tritonrnn":
        # Imported here, not at the top: without a GPU, TRITON_INTERPRET must be set before
        # triton is first imported, and `python -m bench` decides that after parsing arguments.
        import tritonrnn

        shape_kw = dict(num_layers=reference.num_layers, bidirectional=reference.bidirectional)
        if isinstance(reference, nn.RNN):
            shape_kw["nonlinearity"] = reference.nonlinearity
        w = reference.weight_ih_l0
        cls = {"LSTM": tritonrnn.LSTM, "GRU": tritonrnn.GRU}.get(reference.mode, tritonrnn.RNN)
        ours = cls(reference.input_size, reference.hidden_size,
                                           device=w.device, dtype=w.dtype, **shape_kw)
        ours.load_state_dict(reference.state_dict())
        return ours
    if provider in ("loop", "loop_compiled"):
        if provider == "loop_compiled":
            # Each new shape compiles a new graph; keep them all instead of falling back to
            # eager once torch's default limit (8 per function) is reached.
            # (Dynamo moves the entry that hits to the front, so a long cache costs nothing per
            # call.) The names changed in torch 2.7; set whichever this torch has.
            config = torch._dynamo.config
            for name, value in (("recompile_limit", 4096), ("cache_size_limit", 4096),
                                ("accumulated_recompile_limit", 65536),
                                ("accumulated_cache_size_limit", 65536)):
                if hasattr(config, name):
                    setattr(config, name, value)
        return CellLoop(reference, compile_cells=provider == "loop_compiled")
    raise ValueError(f"unknown provider {provider!r}; choose from {PROVIDERS}")


def output_of(model, x):
    """y [T, B, D*H] from any provider's model: torch.nn layers return (y, state)."""
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


def make_inputs(shape, dtype, device, count, training):
    """``count`` independent input sets: (x [T, B, I], dy [T, B, D*H] or None)."""
    D = 2 if shape.bidirectional else 1
    dt = DTYPES[dtype]
    sets = []
    for _ in range(count):
        x = torch.randn(shape.seq, shape.batch, shape.input_size, device=device, dtype=dt)
        dy = (torch.randn(shape.seq, shape.batch, D * shape.hidden, device=device, dtype=dt)
              if training else None)
        sets.append((x.requires_grad_(training), dy))
    return sets


def input_set_bytes(shape, dtype, training):
    D = 2 if shape.bidirectional else 1
    elt = torch.empty((), dtype=DTYPES[dtype]).element_size()
    per = shape.seq * shape.batch * (shape.input_size + (D * shape.hidden if training else 0))
    return per * elt


def step_function(model, training):
    """The call to time: inference runs forward under no_grad in eval mode; training runs
    forward and backward of y against a given upstream gradient dy."""
    if training:
        model.train()

        def run(inputs):
            x, dy = inputs
            output_of(model, x).backward(dy)
    else:
        model.eval()

        def run(inputs):
            with torch.no_grad():
                output_of(model, inputs[0])
    return run


def clear_grads(model, input_sets):
    """Before each training call: grads to None, so backward writes fresh ones rather than
    accumulating into the previous call's (which would also be extra work to time)."""
    params = list(model.parameters())
    xs = [x for x, _ in input_sets]

    def clear():
        for t in params + xs:
            t.grad = None
    return clear
