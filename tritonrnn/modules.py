"""Drop-in replacements for torch.nn's recurrent layers and cells.

Each class takes the same constructor arguments as its torch.nn namesake and has the same
parameters (names, shapes, registration order, initialisation), ``state_dict``, ``repr`` and
forward contract (``batch_first``, unbatched input, ``PackedSequence``, ``proj_size``,
bidirectional layout, dropout between layers in training).

Where the Triton kernels can run (:func:`tritonrnn.runtime.layer_path`, the one fallback
policy: CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``) a forward pass runs one
:func:`tritonrnn.functional.recurrent_layer` call per layer, passing each layer's
per-direction weights as they are. Anywhere else it delegates to PyTorch's native
implementation with the same weights (tritonrnn/native.py). Autocast is handled by one
wrapper for layers and cells (:func:`tritonrnn.amp.run`).

``RNN``, ``LSTM`` and ``GRU`` subclass ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (so
``isinstance(m, torch.nn.LSTM)`` holds and torch.nn's constructors, argument checks and
``repr`` are inherited as they are); the cells subclass torch's cells. TorchDynamo refuses
to trace instances of torch.nn.RNN/LSTM/GRU; tritonrnn/dynamo.py lifts that for these
classes only, so ``torch.compile`` still sees through them.

Dimension legend: T time, B batch, I input, H hidden, K = proj_size or H (width of h),
D directions, L layers.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import amp, dynamo, native, packing, runtime
from .functional import recurrent_layer

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

# The five per-direction weights, in recurrent_layer's tuple order.
_WEIGHT_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def _refuse_torchscript(module):
    """torch.jit.script calls this on every module before compiling it. The forward passes here
    launch Triton kernels through Python custom ops and read PackedSequence and autocast state
    in Python, which TorchScript cannot compile; name what does work instead of TorchScript's
    own type error."""
    raise RuntimeError(
        f"torch.jit.script cannot compile tritonrnn.{type(module).__name__}: its forward runs "
        f"Triton kernels from Python. Use torch.jit.trace(model, example_inputs) instead (it "
        f"records torch's own recurrent ops, so the result runs and saves like a traced "
        f"torch.nn model), or torch.compile / torch.export; or script the model before "
        f"tritonrnn.convert.")


class _RecurrentLayers(nn.RNNBase):
    """Forward pass shared by RNN, LSTM and GRU.

    The hidden state ``hx`` is a tensor for RNN and GRU and an ``(h, c)`` pair for LSTM;
    apart from that the three follow one path. Argument checks mirror torch.nn's, in the same
    order, so the same bad input raises the same exception type on either path.
    """

    __prepare_scriptable__ = _refuse_torchscript

    def flatten_parameters(self):
        """Do nothing. torch.nn packs the weights into one cuDNN buffer here; the Triton kernels
        read each parameter where it lives, so there is nothing to pack."""

    # -- hidden-state helpers (LSTM overrides these for its (h, c) pair) --------------------

    def _zero_state(self, batch, like):
        D = 2 if self.bidirectional else 1
        return like.new_zeros(self.num_layers * D, batch, self.hidden_size)

    def _check_state_dims(self, hx, batched):
        want = 3 if batched else 2
        if hx.dim() != want:
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(
                f"For {kind} input, hx should also be {want}-D but got {hx.dim()}-D tensor"
            )

    def _unsqueeze_state(self, hx):
        return hx.unsqueeze(1)

    def _squeeze_state(self, hx):
        return hx.squeeze(1)

    def _check_args(self, input, hx, batch_sizes):
        """torch.nn's check_forward_args; a default (zero) state always has the expected
        size, so then only the input is checked."""
        if hx is None:
            self.check_input(input, batch_sizes)
        else:
            self.check_forward_args(input, hx, batch_sizes)

    def _check_packed(self, data, hx, batch_sizes):
        self._check_args(data, hx, batch_sizes)

    # -- weights -----------------------------------------------------------------------------

    def _layer_weights(self, layer):
        """One (w_ih, w_hh, b_ih, b_hh, w_hr) tuple per direction of ``layer``; absent ones are
        None. Read by name on every call, so torch.func.functional_call and reassigned
        parameters are honoured."""
        D = 2 if self.bidirectional else 1
        tuples = []
        for direction in range(D):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            tuples.append(tuple(getattr(self, kind + suffix, None) for kind in _WEIGHT_KINDS))
        return tuples

    def _flat_weight_list(self):
        return [getattr(self, name) for name in self._flat_weights_names]

    # -- forward -----------------------------------------------------------------------------

    def forward(self, input, hx=None):
        path = runtime.layer_path(input.data if isinstance(input, PackedSequence) else input,
                                  projects=self.proj_size > 0)
        if path == runtime.NATIVE and runtime.recording_for_another_runtime():
            # torch.jit.trace / torch.onnx.export: record exactly what torch.nn's layer records.
            return super().forward(input, hx)
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            if hx is not None:
                # hx is in the caller's batch order; the packed data is sorted by length.
                hx = self.permute_hidden(hx, sorted_indices)
            self._check_packed(data, hx, batch_sizes)
            if path != runtime.NATIVE:
                out, state = self._forward_packed_layers(data, batch_sizes, hx, sorted_indices)
            else:
                out, state = self._forward_native(data, batch_sizes, hx, int(batch_sizes[0]))
            packed = PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices)
            return packed, self.permute_hidden(state, unsorted_indices)

        if input.dim() not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead"
            )
        batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not batched:
            input = input.unsqueeze(batch_dim)
        if hx is not None:
            self._check_state_dims(hx, batched)
            if not batched:
                hx = self._unsqueeze_state(hx)
        batch = input.size(batch_dim)
        self._check_args(input, hx, None)
        if path != runtime.NATIVE:
            x = input.transpose(0, 1) if self.batch_first else input
            out, state = self._forward_layers(x, hx, None)
            if self.batch_first:
                out = out.transpose(0, 1)
        else:
            out, state = self._forward_native(input, None, hx, batch)
        if not batched:
            out = out.squeeze(batch_dim)
            state = self._squeeze_state(state)
        return out, state

    def _forward_native(self, input, batch_sizes, hx, batch):
        """PyTorch's own implementation, same weights: where the kernels cannot run."""
        if hx is None:
            hx = self._zero_state(batch, input)
        return native.layers(self.mode, input, batch_sizes, hx, self._flat_weight_list(),
                             self.bias, self.num_layers, self.dropout, self.training,
                             self.bidirectional, self.batch_first)

    def _forward_packed_layers(self, data, batch_sizes, hx, sorted_indices=None):
        """Unpack to padded time-major (still in sorted order), run, re-pack (with
        tritonrnn.packing's traceable gathers, so torch.compile sees through packed input)."""
        h = None if hx is None else (hx[0] if self.mode == "LSTM" else hx)
        x, lengths = packing.unpack(data, batch_sizes,
                                    packing.batch_size(batch_sizes, sorted_indices, h))
        out, state = self._forward_layers(x, hx, lengths)
        # lengths are sorted descending, so re-packing reproduces batch_sizes exactly.
        return packing.repack(out, batch_sizes, data.shape[0]), state

    def _forward_layers(self, x, hx, lengths):
        """Layer by layer through functional.recurrent_layer (the kernels, or the reference
        loop while ONNX records a projecting LSTM), under the autocast wrapper.
        x: [T, B, I] time-major; hx: None or state [L*D, B, *]; lengths: None or int64 [B]
        (CPU, sorted descending). Returns (y [T, B, D*K], state)."""
        lstm = self.mode == "LSTM"
        state = None if hx is None else (hx[1] if lstm else hx)
        cast = amp.plan(self.mode, x.device.type, x, None if state is None else state.dtype,
                        proj=self.proj_size > 0, packed=lengths is not None)
        if x.size(0) == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        if lstm and hx is not None and len(hx) != 2:
            raise RuntimeError(f"lstm expects two hidden states, got {len(hx)}")
        h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)
        weights = [self._layer_weights(layer) for layer in range(self.num_layers)]
        y, h_n, c_n = amp.run(cast, lambda *a: self._layers(*a, lengths=lengths), x, h0, c0,
                              weights)
        return y, ((h_n, c_n) if lstm else h_n)

    def _layers(self, x, h0, c0, weights, lengths):
        """Every layer, in one dtype: (y [T, B, D*K], h_n [L*D, B, K], c_n [L*D, B, H] or
        None). weights: per layer, its per-direction tuples."""
        for s in (h0, c0):
            if s is not None and s.dtype != x.dtype:
                raise RuntimeError(
                    f"hidden state dtype ({s.dtype}) does not match input dtype ({x.dtype})"
                )
        dev_lengths = None if lengths is None else lengths.to(x.device)
        D = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for layer, layer_weights in enumerate(weights):
            rows = slice(layer * D, (layer + 1) * D)
            x, h, c = recurrent_layer(
                x, layer_weights, self.mode,
                h0=None if h0 is None else h0[rows],
                c0=None if c0 is None else c0[rows],
                lengths=dev_lengths,
            )
            h_n.append(h)
            c_n.append(c)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = self._between_layer_dropout(x, lengths)
        return x, torch.cat(h_n, 0), (torch.cat(c_n, 0) if self.mode == "LSTM" else None)

    def _between_layer_dropout(self, x, lengths):
        """Dropout on one layer's output. PyTorch's native path drops on the packed data when
        the input was packed, so we do the same: the mask then matches its draw from the RNG."""
        if lengths is None:
            return F.dropout(x, self.dropout, training=True)
        packed = pack_padded_sequence(x, lengths)
        dropped = F.dropout(packed.data, self.dropout, training=True)
        padded, _ = pad_packed_sequence(PackedSequence(dropped, packed.batch_sizes),
                                        total_length=x.size(0))
        return padded


class RNN(_RecurrentLayers, nn.RNN):
    """Elman RNN with tanh or ReLU; same arguments and behaviour as :class:`torch.nn.RNN`.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None)``
    """


class LSTM(_RecurrentLayers, nn.LSTM):
    """LSTM, optionally with projections; same arguments and behaviour as
    :class:`torch.nn.LSTM`.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0, device=None, dtype=None)``. ``h`` has ``proj_size``
    features when ``proj_size > 0``; ``c`` always has ``hidden_size``.
    """

    def _zero_state(self, batch, like):
        D = 2 if self.bidirectional else 1
        width = self.proj_size if self.proj_size > 0 else self.hidden_size
        return (like.new_zeros(self.num_layers * D, batch, width),
                like.new_zeros(self.num_layers * D, batch, self.hidden_size))

    def _check_state_dims(self, hx, batched):
        want = 3 if batched else 2
        if hx[0].dim() != want or hx[1].dim() != want:
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(
                f"For {kind} input, hx and cx should also be {want}-D but got "
                f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
            )

    def _unsqueeze_state(self, hx):
        return hx[0].unsqueeze(1), hx[1].unsqueeze(1)

    def _squeeze_state(self, hx):
        return hx[0].squeeze(1), hx[1].squeeze(1)

    def _check_packed(self, data, hx, batch_sizes):
        # torch.nn.LSTM leaves packed input to its C++ checks, which raise RuntimeError where
        # check_input raises ValueError (dtype mismatch); keep torch's exception type.
        if hx is not None and min(hx[0].dim(), hx[1].dim()) < 3:
            # There, a state with fewer than 3 dimensions fails on indexing dimension 2.
            d = min(hx[0].dim(), hx[1].dim())
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-d}, {d - 1}], but got 2): "
                f"packed input needs 3-D hx and cx (num_layers * num_directions, batch, size), "
                f"got ({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
        try:
            self._check_args(data, hx, batch_sizes)
        except ValueError as err:
            raise RuntimeError(str(err)) from None


class GRU(_RecurrentLayers, nn.GRU):
    """GRU; same arguments and behaviour as :class:`torch.nn.GRU`.

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None)``
    """


# torch.compile traces these although they are torch.nn.RNN/LSTM/GRU instances.
dynamo.install((RNN, LSTM, GRU))


# -- cells ----------------------------------------------------------------------------------


def _check_cell_dims(cell, input, states, hidden_label):
    """torch.nn's first cell checks (Python, before any C++): input and each state 1-D or 2-D."""
    name = type(cell).__name__
    if input.dim() not in (1, 2):
        raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
    for i, s in enumerate(states or ()):
        if s.dim() not in (1, 2):
            label = hidden_label.format(i)
            raise ValueError(f"{name}: Expected {label} to be 1D or 2D, got {s.dim()}D instead")


def _lstm_cell_states(cell, input, hx):
    """LSTMCell's hx as the (h, c) pair, refused as torch.nn refuses it: unbatched input reads
    hx[0] and hx[1] (IndexError if missing); batched input needs a tuple or list of exactly
    two tensors (TypeError, RuntimeError)."""
    _check_cell_dims(cell, input, tuple(hx), "hx[{}]")
    if input.dim() == 1:
        return hx[0], hx[1]
    if not isinstance(hx, (tuple, list)):
        raise TypeError(f"LSTMCell: hx (argument 2) must be a tuple (h, c) of two Tensors, "
                        f"not {type(hx).__name__}")
    if len(hx) != 2:
        raise RuntimeError(f"lstm_cell expects two hidden states, got {len(hx)}")
    return tuple(hx)


def _prepare_cell(cell, input, states, hidden_label):
    """Checks and batching for the Triton path of a cell, in PyTorch's order and with its
    exception types (its native cells make the size checks in C++, which we don't reach).

    ``states``: None or a tuple of 1-D/2-D state tensors. Returns (input [B, I], states as a
    tuple of [B, *] tensors or None, batched)."""
    name = type(cell).__name__
    _check_cell_dims(cell, input, states, hidden_label)
    batched = input.dim() == 2
    if not batched:
        input = input.unsqueeze(0)
        states = None if states is None else tuple(s.unsqueeze(0) for s in states)
    if input.size(1) != cell.input_size:
        raise RuntimeError(
            f"input has inconsistent input_size: got {input.size(1)} expected {cell.input_size}"
        )
    for i, s in enumerate(states or ()):
        if s.size(0) != input.size(0):
            raise RuntimeError(f"Input batch size {input.size(0)} doesn't match hidden{i} "
                               f"batch size {s.size(0)}")
        if s.size(1) != cell.hidden_size:  # a 1-D state raises IndexError here, as in torch
            raise RuntimeError(f"hidden{i} has inconsistent hidden_size: got {s.size(1)}, "
                               f"expected {cell.hidden_size}")
        if s.dim() != 2:
            raise RuntimeError(f"hidden{i} must be 2-D once batched, got {s.dim()}-D")
    for t in (input, *(states or ())):
        if t.dtype != cell.weight_ih.dtype:
            raise RuntimeError(f"{name}: expected {cell.weight_ih.dtype} input and state, "
                               f"got {t.dtype}")
    return input, states, batched


def _run_cell(cell, mode, input, states):
    """One step of a cell as a T=1 recurrent_layer call, under the autocast wrapper.
    input [B, I]; states None or (h [B, H],) / (h, c). Returns (h [B, H], c [B, H] or None)."""
    weights = [[(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, None)]]
    state = None if states is None else states[-1]  # c for LSTM, else h
    cast = amp.plan(mode, input.device.type, input, None if state is None else state.dtype,
                    for_cell=True)
    h0 = None if states is None else states[0].unsqueeze(0)
    c0 = None if states is None or mode != "LSTM" else states[1].unsqueeze(0)

    def step(x, h0, c0, weights):
        return recurrent_layer(x, weights[0], mode, h0=h0, c0=c0)

    _, h, c = amp.run(cast, step, input.unsqueeze(0), h0, c0, weights)
    return h[0], (None if c is None else c[0])


def _single_state_cell(cell, mode, input, hx):
    """Forward of a cell whose state is one tensor (RNNCell, GRUCell) on the kernels. `mode`
    may be a function giving it: called after the input checks, so bad input fails first, in
    torch.nn's order."""
    input, states, batched = _prepare_cell(cell, input, None if hx is None else (hx,), "hidden")
    h, _ = _run_cell(cell, mode() if callable(mode) else mode, input, states)
    return h if batched else h.squeeze(0)


class RNNCell(nn.RNNCell):
    """Elman RNN cell; :class:`torch.nn.RNNCell` with a Triton forward."""

    __prepare_scriptable__ = _refuse_torchscript

    def forward(self, input, hx=None):
        if runtime.layer_path(input) == runtime.NATIVE:
            return super().forward(input, hx)
        return _single_state_cell(self, self._mode, input, hx)

    def _mode(self):
        modes = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
        if self.nonlinearity not in modes:
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return modes[self.nonlinearity]


class LSTMCell(nn.LSTMCell):
    """LSTM cell; :class:`torch.nn.LSTMCell` with a Triton forward. Returns ``(h, c)``."""

    __prepare_scriptable__ = _refuse_torchscript

    def forward(self, input, hx=None):
        if runtime.layer_path(input) == runtime.NATIVE:
            return super().forward(input, hx)
        states = None if hx is None else _lstm_cell_states(self, input, hx)
        input, states, batched = _prepare_cell(self, input, states, "hx[{}]")
        h, c = _run_cell(self, "LSTM", input, states)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(nn.GRUCell):
    """GRU cell; :class:`torch.nn.GRUCell` with a Triton forward."""

    __prepare_scriptable__ = _refuse_torchscript

    def forward(self, input, hx=None):
        if runtime.layer_path(input) == runtime.NATIVE:
            return super().forward(input, hx)
        return _single_state_cell(self, "GRU", input, hx)
