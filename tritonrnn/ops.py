"""The recurrence kernels as ``torch.library`` custom ops: ``tritonrnn::recurrence_forward``
and ``tritonrnn::recurrence_backward``.

Registering them as operators is what lets ``torch.compile`` take a model built on these
layers in one graph: TorchDynamo records each launch as an opaque call instead of tracing into
Triton (or into Triton's interpreter on CPU), and the fake implementations below tell it the
shape, dtype and device of every output without running anything. The autograd formula of
``recurrence_forward`` lives in tritonrnn/autograd.py.

Operator outputs cannot be None, so an output the kernels don't produce (c_n of a GRU, the
saved activations when not training, ...) is returned as an empty tensor, ``shape (0,)``, and
the caller, which knows from the cell and flags what exists, ignores it.

Legend: T time, B batch, D directions, G gates, H hidden, K width of h (P if projecting else
H), S activations saved per step (kernels/cells.py).
"""
from typing import Optional

import torch
from torch import Tensor

from tritonrnn import kernels
from tritonrnn.kernels.cells import CELL_CODES, GATES, LSTM, SAVED


def _empty_like_missing(like):
    """What an op returns in place of an output it does not produce."""
    return like.new_empty((0,))


def _contiguous(t):
    # The launchers index raw pointers; a compiled graph may hand us other strides.
    return None if t is None else t.contiguous()


@torch.library.custom_op("tritonrnn::recurrence_forward", mutates_args=())
def recurrence_forward(xp: Tensor, whh: Tensor, bhn: Optional[Tensor], whr: Optional[Tensor],
                       h0: Optional[Tensor], c0: Optional[Tensor], lengths: Optional[Tensor],
                       cell: str, training: bool, x2d: Optional[Tensor] = None,
                       w_ih: Optional[Tensor] = None, b_in: Optional[Tensor] = None
                       ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """kernels.forward as an operator. xp: [T, B, D, G, H]; whh: [D, G*H, K]; bhn: [D, H];
    whr: [D, K, H]; h0: [D, B, K]; c0: [D, B, H]; lengths: int32 [B] on xp's device.
    x2d [T*B, I], w_ih [D*G*H, I], b_in [D*G*H]: the projection that made xp (xp = x2d w_ih^T
    + b_in); not read here, only by double backward (tritonrnn/autograd.py).
    Returns y [T, B, D*K] (directions side by side, the layer's output layout), h_n
    [D, B, K], c_n [D, B, H] (LSTM), and the tensors backward reads when ``training``:
    act [D, T, B, S, H] and cs [D, T, B, H] (LSTM)."""
    y, h_n, c_n, act, cs = kernels.forward(
        xp.contiguous(), whh.contiguous(), _contiguous(bhn), _contiguous(whr), _contiguous(h0),
        _contiguous(c0), _contiguous(lengths), cell, training)
    T, B, D, K = y.shape
    missing = lambda t: _empty_like_missing(xp) if t is None else t  # noqa: E731
    return y.view(T, B, D * K), h_n, missing(c_n), missing(act), missing(cs)


@recurrence_forward.register_fake
def _recurrence_forward_fake(xp, whh, bhn, whr, h0, c0, lengths, cell, training, x2d=None,
                             w_ih=None, b_in=None):
    code = CELL_CODES[cell]
    T, B, D, G, H = xp.shape
    K = whh.shape[2]
    lstm = code == LSTM
    none = lambda: _empty_like_missing(xp)  # noqa: E731
    return (xp.new_empty((T, B, D * K)), xp.new_empty((D, B, K)),
            xp.new_empty((D, B, H)) if lstm else none(),
            xp.new_empty((D, T, B, SAVED[code], H)) if training else none(),
            xp.new_empty((D, T, B, H)) if training and lstm else none())


@torch.library.custom_op("tritonrnn::recurrence_backward", mutates_args=())
def recurrence_backward(dy: Optional[Tensor], dh_n: Optional[Tensor], dc_n: Optional[Tensor],
                        act: Tensor, cs: Optional[Tensor], y: Tensor, h0: Optional[Tensor],
                        c0: Optional[Tensor], lengths: Optional[Tensor], whh: Tensor,
                        whr: Optional[Tensor], cell: str
                        ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """kernels.backward as an operator; arguments as returned by / given to
    recurrence_forward (dy: [T, B, D, K]). Returns dxp [T, B, D, G, H], dhg [D, T, B, H]
    (GRU), dhs [D, T, B, K] (projection), dh0 [D, B, K], dc0 [D, B, H] (LSTM)."""
    dxp, dhg, dhs, dh0, dc0 = kernels.backward(
        _contiguous(dy), _contiguous(dh_n), _contiguous(dc_n), act.contiguous(),
        _contiguous(cs), y.contiguous(), _contiguous(h0), _contiguous(c0), _contiguous(lengths),
        whh.contiguous(), _contiguous(whr), cell)
    missing = lambda t: _empty_like_missing(act) if t is None else t  # noqa: E731
    return dxp, missing(dhg), missing(dhs), dh0, missing(dc0)


@recurrence_backward.register_fake
def _recurrence_backward_fake(dy, dh_n, dc_n, act, cs, y, h0, c0, lengths, whh, whr, cell):
    code = CELL_CODES[cell]
    D, T, B, _, H = act.shape
    K = whh.shape[2]
    none = lambda: _empty_like_missing(act)  # noqa: E731
    return (act.new_empty((T, B, D, GATES[code], H)),
            act.new_empty((D, T, B, H)) if cell == "GRU" else none(),
            act.new_empty((D, T, B, K)) if whr is not None else none(),
            act.new_empty((D, B, K)),
            act.new_empty((D, B, H)) if code == LSTM else none())
