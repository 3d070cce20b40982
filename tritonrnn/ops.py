"""The recurrence kernels as ``torch.library`` custom ops: ``tritonrnn::recurrence_forward``
and ``tritonrnn::recurrence_backward``.

Registering them as operators is what lets ``torch.compile`` take a model built on these
layers in one graph: TorchDynamo records each launch as an opaque call instead of tracing into
Triton (or into Triton's interpreter on CPU), and the fake implementations below tell it the
shape, dtype and device of every output without running anything. The autograd formula of
``recurrence_forward`` is registered at the end of this file:

Backward runs the backward recurrence (``tritonrnn::recurrence_backward``) for the per-step
pre-activation gradients and turns them into recurrent-weight gradients with large GEMMs;
gradients of the input, W_ih and the biases flow back through the projection that made xp
(tritonrnn/functional.py), which autograd differentiates as ordinary torch ops.

Double backward (a backward pass run with ``create_graph=True``, so grad mode is on inside
it): the formula then recomputes the layer with differentiable torch ops (the projection
from its inputs, which the op carries for this purpose, and tritonrnn/reference.py's step
loop) and differentiates that, so its result has a graph of its own. Slow (one Python step
per timestep) but exact; a plain backward never takes that path.

Operator outputs cannot be None, so an output the kernels don't produce (c_n of a GRU, the
saved activations when not training, ...) is returned as an empty tensor, ``shape (0,)``, and
the caller, which knows from the cell and flags what exists, ignores it.

Legend: T time, B batch, I input, D directions, G gates, H hidden, K width of h (P if
projecting else H), S activations saved per step (kernels/cells.py).
"""
from typing import Optional

import torch
from torch import Tensor

from tritonrnn import kernels
from tritonrnn.kernels import cells

from . import reference


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
    + b_in); not read here, only by double backward (below).
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
    kind = cells.lookup(cell)
    T, B, D, G, H = xp.shape
    K = whh.shape[2]
    none = lambda: _empty_like_missing(xp)  # noqa: E731
    return (xp.new_empty((T, B, D * K)), xp.new_empty((D, B, K)),
            xp.new_empty((D, B, H)) if kind.has_c else none(),
            xp.new_empty((D, T, B, kind.saved, H)) if training else none(),
            xp.new_empty((D, T, B, H)) if training and kind.has_c else none())


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
    kind = cells.lookup(cell)
    D, T, B, _, H = act.shape
    K = whh.shape[2]
    none = lambda: _empty_like_missing(act)  # noqa: E731
    return (act.new_empty((T, B, D, kind.gates, H)),
            act.new_empty((D, T, B, H)) if kind.name == "GRU" else none(),
            act.new_empty((D, T, B, K)) if whr is not None else none(),
            act.new_empty((D, B, K)),
            act.new_empty((D, B, H)) if kind.has_c else none())


# -- autograd of tritonrnn::recurrence_forward ----------------------------------------------


def project(x2d, w_ih, b_in):
    """[T*B, D*G*H]: every step's input projection, all directions (x2d: [T*B, I]): how the
    layer makes xp (tritonrnn/functional.py) and how double backward remakes it."""
    return x2d @ w_ih.t() if b_in is None else torch.addmm(b_in, x2d, w_ih.t())


def _previous_states(y_d, h0_d, lengths, reverse):
    """[T, B, K]: the state each step started from (y_d: [T, B, K] outputs of one direction)."""
    if not reverse:
        return torch.cat([h0_d.unsqueeze(0), y_d[:-1]])
    shifted = torch.cat([y_d[1:], h0_d.unsqueeze(0)])
    if lengths is None:
        return shifted
    T = y_d.shape[0]
    steps = torch.arange(T, device=y_d.device).unsqueeze(1)
    started_later = (steps + 1 < lengths.to(y_d.device).unsqueeze(0)).unsqueeze(2)  # [T, B, 1]
    return torch.where(started_later, shifted, h0_d.unsqueeze(0))


def _setup_context(ctx, inputs, output):
    xp, whh, bhn, whr, h0, c0, lengths, cell, training, x2d, w_ih, b_in = inputs
    y, _, _, act, cs = output
    ctx.cell, ctx.training = cell, training
    ctx.has_bhn, ctx.has_whr = bhn is not None, whr is not None
    ctx.xp_shape = xp.shape
    # Outputs nobody used arrive as None, and the kernel skips them (HAS_DY, ...).
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(h0, c0, lengths, whh, whr, y, act, cs)
    # For double backward only, held as plain references so that a plain backward neither
    # unpacks them nor checks their versions (FSDP frees and refills parameter storage between
    # forward and backward). x2d and w_ih are what the projection's backward keeps anyway.
    ctx.for_double_backward = (x2d, w_ih, b_in, bhn)
    ctx.versions = tuple(None if t is None else t._version for t in ctx.for_double_backward)


def _backward(ctx, dy, dh_n, dc_n, _dact, _dcs):
    if torch.is_grad_enabled():  # create_graph=True: the result must be differentiable
        return _differentiable_backward(ctx, dy, dh_n, dc_n)
    if not ctx.training:
        raise RuntimeError("tritonrnn: backward through a recurrence run without its saved "
                           "activations (training=False)")
    h0, c0, lengths, whh, whr, y, act, cs = ctx.saved_tensors
    cell = ctx.cell
    lstm = cell == "LSTM"
    D, T, B, _, H = act.shape
    K = whh.shape[2]
    y = y.view(T, B, D, K)
    dy = None if dy is None else dy.reshape(T, B, D, K)
    dxp, dhg, dhs, dh0, dc0 = recurrence_backward(
        dy, dh_n, dc_n if lstm else None, act, cs if lstm else None, y, h0, c0, lengths, whh,
        whr, cell)
    need = ctx.needs_input_grad  # (xp, whh, bhn, whr, h0, c0, lengths, cell, training)
    G = dxp.shape[3]
    TB = T * B
    grad_whh = grad_bhn = grad_whr = None
    if need[1]:
        rows = []
        for d in range(D):
            g_rec = dxp[:, :, d].reshape(TB, G * H)
            if cell == "GRU":  # the n gate's recurrent part is r * (W_hn h + b_hn)
                g_rec = torch.cat([g_rec[:, :2 * H], dhg[d].reshape(TB, H)], dim=1)
            h0_d = h0[d] if h0 is not None else y.new_zeros(B, K)
            h_prev = _previous_states(y[:, :, d], h0_d, lengths, reverse=d == 1)
            rows.append(g_rec.t() @ h_prev.reshape(TB, K))
        grad_whh = torch.stack(rows)
    if ctx.has_bhn and need[2]:
        grad_bhn = dhg.sum((1, 2))
    if ctx.has_whr and need[3]:
        o, c = act[:, :, :, 3], cs  # [D, T, B, H]
        math = torch.promote_types(o.dtype, torch.float32)  # cell math in >= fp32
        h_cell = (o.to(math) * torch.tanh(c.to(math))).to(o.dtype)
        grad_whr = torch.bmm(dhs.reshape(D, TB, K).transpose(1, 2), h_cell.reshape(D, TB, H))
    grad_xp = dxp if need[0] else None
    grad_h0 = dh0 if h0 is not None and need[4] else None
    grad_c0 = dc0 if lstm and c0 is not None and need[5] else None
    return grad_xp, grad_whh, grad_bhn, grad_whr, grad_h0, grad_c0, None, None, None, \
        None, None, None


def _recompute(cell, xp, whh, bhn, whr, h0, c0, lengths):
    """The recurrence of tritonrnn::recurrence_forward in differentiable torch ops (the
    reference step loop): (y [T, B, D*K], h_n [D, B, K], c_n [D, B, H] or None)."""
    T, B, D, G, H = xp.shape
    K = whh.shape[2]
    lstm = cell == "LSTM"
    ys, h_n, c_n = [], [], []
    for d in range(D):
        # W_hh h + b_hh inside the cell: only GRU's b_hn is left there (the rest is in xp).
        b_hh = None if bhn is None else torch.cat([bhn.new_zeros(2 * H), bhn[d]])
        h = h0[d] if h0 is not None else xp.new_zeros(B, K)
        c = (c0[d] if c0 is not None else xp.new_zeros(B, H)) if lstm else None
        y_d, h, c = reference.direction(cell, xp[:, :, d].reshape(T, B, G * H), h, c, whh[d],
                                        b_hh, None if whr is None else whr[d], lengths, d == 1)
        ys.append(y_d)
        h_n.append(h)
        c_n.append(c)
    return torch.cat(ys, 2), torch.stack(h_n), (torch.stack(c_n) if lstm else None)


def _differentiable_backward(ctx, dy, dh_n, dc_n):
    """The gradients of _backward as functions with a graph (for double backward): recompute
    the projection and the recurrence with torch ops and differentiate them with
    create_graph=True."""
    h0, c0, lengths, whh, whr, _, _, _ = ctx.saved_tensors
    x2d, w_ih, b_in, bhn = ctx.for_double_backward
    if x2d is None or w_ih is None:
        raise RuntimeError("tritonrnn: double backward through recurrence_forward needs the "
                           "projection's inputs (x2d, w_ih), which this call did not pass")
    if any(t is not None and t._version != v
           for t, v in zip(ctx.for_double_backward, ctx.versions)):
        raise RuntimeError("tritonrnn: one of the tensors double backward recomputes from (the "
                           "layer's input, W_ih or a bias) was modified by an in-place "
                           "operation after the forward pass")
    cell = ctx.cell
    xp = project(x2d, w_ih, b_in).view(ctx.xp_shape)
    need = ctx.needs_input_grad  # (xp, whh, bhn, whr, h0, c0, ...)
    wrt = [t if t is not None and n else None
           for t, n in zip((xp, whh, bhn, whr, h0, c0), need)]
    wrt = [t if t is not None and t.requires_grad else None for t in wrt]
    outs = _recompute(cell, xp, whh, bhn, whr, h0, c0, lengths)
    pairs = [(o, g) for o, g in zip(outs, (dy, dh_n, dc_n)) if o is not None and g is not None]
    present = [t for t in wrt if t is not None]
    if not pairs or not present:
        return (None,) * 12
    grads = iter(torch.autograd.grad([o for o, _ in pairs], present, [g for _, g in pairs],
                                     create_graph=True, allow_unused=True))
    return (*(None if t is None else next(grads) for t in wrt), None, None, None, None, None,
            None)


recurrence_forward.register_autograd(_backward, setup_context=_setup_context)
