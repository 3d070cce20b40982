"""One layer, all directions, on the kernels, differentiable in every input.

Forward: one GEMM projects every timestep's input for both directions at once (ordinary torch
ops, so autograd differentiates it and torch.compile sees it), then one recurrence launch per
layer (directions are a grid axis), the custom op ``tritonrnn::recurrence_forward``
(tritonrnn/ops.py). Its autograd formula, registered below, runs the backward recurrence
(``tritonrnn::recurrence_backward``) for the per-step pre-activation gradients and turns them
into recurrent-weight gradients with large GEMMs; gradients of the input, W_ih and the biases
flow back through the projection.

Legend: T time, B batch, I input, H hidden, K width of h (P if projecting else H),
G gates, D directions, S activations saved per step.
"""
import torch

from tritonrnn.kernels.cells import CELL_CODES, GATES

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
    if b_ih0 is not None:
        bias = torch.cat([_input_bias(cell, w[2], w[3], H) for w in per_direction])
        xp = torch.addmm(bias, x2d, w_ih.t())
    else:
        xp = x2d @ w_ih.t()
    xp = xp.view(T, B, D, G, H)
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
    y, h_n, c_n, _, _ = recurrence_forward(xp, whh, bhn, whr, h0, c0, lengths, cell, training)
    return y, h_n, (c_n if cell == "LSTM" else None)


# -- autograd of tritonrnn::recurrence_forward ----------------------------------------------


def _setup_context(ctx, inputs, output):
    xp, whh, bhn, whr, h0, c0, lengths, cell, training = inputs
    y, _, _, act, cs = output
    ctx.cell, ctx.training = cell, training
    ctx.has_bhn, ctx.has_whr = bhn is not None, whr is not None
    # Outputs nobody used arrive as None, and the kernel skips them (HAS_DY, ...).
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(h0, c0, lengths, whh, whr, y, act, cs)


def _backward(ctx, dy, dh_n, dc_n, _dact, _dcs):
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
    return grad_xp, grad_whh, grad_bhn, grad_whr, grad_h0, grad_c0, None, None, None


recurrence_forward.register_autograd(_backward, setup_context=_setup_context)
