"""One layer, all directions, on the kernels, differentiable in every input.

Forward: one GEMM projects every timestep's input for both directions at once (ordinary torch
ops, so autograd differentiates it and torch.compile sees it), then one recurrence launch per
layer (directions are a grid axis), the custom op ``tritonrnn::recurrence_forward``
(tritonrnn/ops.py). Its autograd formula, registered below, runs the backward recurrence
(``tritonrnn::recurrence_backward``) for the per-step pre-activation gradients and turns them
into recurrent-weight gradients with large GEMMs; gradients of the input, W_ih and the biases
flow back through the projection.

Double backward (a backward pass run with ``create_graph=True``, so grad mode is on inside
it): the formula then recomputes the layer with differentiable torch ops (the projection
from its inputs, which the op carries for this purpose, and tritonrnn/reference.py's step
loop) and differentiates that, so its result has a graph of its own. Slow (one Python step
per timestep) but exact; a plain backward never takes that path.

Legend: T time, B batch, I input, H hidden, K width of h (P if projecting else H),
G gates, D directions, S activations saved per step.
"""
import torch

from tritonrnn.kernels.cells import CELL_CODES, GATES

from . import reference
from .ops import recurrence_backward, recurrence_forward

_PER_DIRECTION = 5  # w_ih, w_hh, b_ih, b_hh, w_hr


def _input_bias(cell, b_ih, b_hh, H):
    """Bias added to the input projection: b_ih + b_hh, except GRU's b_hn, which sits inside
    r * (W_hn h + b_hn) and goes to the kernel separately."""
    if cell == "GRU":
        return b_ih + torch.cat([b_hh[:2 * H], torch.zeros_like(b_hh[2 * H:])])
    return b_ih + b_hh


def _joined(join, tensors):
    """join(tensors) (torch.cat or torch.stack), contiguous. One direction needs no join: the
    weight itself (or a view of it) is used and saved, so training holds no copy of it."""
    if len(tensors) == 1:
        return (tensors[0] if join is torch.cat else tensors[0].unsqueeze(0)).contiguous()
    return join(tensors).contiguous()


def _project(x2d, w_ih, b_in):
    """[T*B, D*G*H]: every step's input projection, all directions (x2d: [T*B, I])."""
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


def layer(cell, lengths, x, h0, c0, weights):
    """x: [T, B, I]; weights: flat (w_ih, w_hh, b_ih, b_hh, w_hr) per direction, absent ones
    None. Returns (y [T, B, D*K], h_n [D, B, K], c_n [D, B, H] or None)."""
    T, B, I = x.shape
    D = len(weights) // _PER_DIRECTION
    per_direction = [weights[d * _PER_DIRECTION:(d + 1) * _PER_DIRECTION] for d in range(D)]
    G = GATES[CELL_CODES[cell]]
    w_hh0, b_ih0, w_hr0 = per_direction[0][1], per_direction[0][2], per_direction[0][4]
    H = w_hh0.shape[0] // G
    w_ih = _joined(torch.cat, [w[0] for w in per_direction])  # [D*G*H, I]
    x2d = x.reshape(T * B, I)
    b_in = None  # [D*G*H]
    if b_ih0 is not None:
        b_in = torch.cat([_input_bias(cell, w[2], w[3], H) for w in per_direction])
    xp = _project(x2d, w_ih, b_in).view(T, B, D, G, H)
    whh = _joined(torch.stack, [w[1] for w in per_direction])  # [D, G*H, K]
    bhn = None
    if cell == "GRU" and b_ih0 is not None:
        bhn = torch.stack([w[3][2 * H:] for w in per_direction])  # [D, H]
    whr = None  # [D, K, H] when projecting
    if w_hr0 is not None:
        whr = _joined(torch.stack, [w[4] for w in per_direction])
    lengths = None if lengths is None else lengths.to(device=x.device, dtype=torch.int32)
    # Keep what backward reads only when a gradient can be asked for. Under torch.compile
    # requires_grad is known while tracing, so this is a constant of the graph.
    training = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (xp, whh, bhn, whr, h0, c0))
    # y comes out as [T, B, D*K], not a view of the op's output: wrappers such as FSDP2 hook
    # the layer's output and warn about views (an in-place op on one would skip the hook).
    y, h_n, c_n, _, _ = recurrence_forward(xp, whh, bhn, whr, h0, c0, lengths, cell, training,
                                           x2d, w_ih, b_in)
    return y, h_n, (c_n if cell == "LSTM" else None)


# -- autograd of tritonrnn::recurrence_forward ----------------------------------------------


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
    xp = _project(x2d, w_ih, b_in).view(ctx.xp_shape)
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
