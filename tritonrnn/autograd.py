"""torch.autograd.Function around the recurrence kernels: one layer, all directions.

Forward: one GEMM projects every timestep's input for both directions at once, then one
recurrence launch per layer (directions are a grid axis). Backward: the recurrence kernel
produces per-step pre-activation gradients; input and weight gradients are large GEMMs.

Legend: T time, B batch, I input, H hidden, K width of h (P if projecting else H),
G gates, D directions.
"""
import torch

from tritonrnn import kernels
from tritonrnn.kernels.cells import CELL_CODES, GATES

_PER_DIRECTION = 5  # w_ih, w_hh, b_ih, b_hh, w_hr


def _direction_weights(weights, d):
    return weights[d * _PER_DIRECTION:(d + 1) * _PER_DIRECTION]


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


class RecurrentLayerFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell, lengths, x, h0, c0, *weights):
        T, B, I = x.shape
        D = len(weights) // _PER_DIRECTION
        G = GATES[CELL_CODES[cell]]
        w_hh0, w_hr0 = weights[1], weights[4]
        H = w_hh0.shape[0] // G
        K = w_hh0.shape[1]
        has_bias = weights[2] is not None
        w_ih = _joined(torch.cat, [weights[d * _PER_DIRECTION] for d in range(D)])  # [D*G*H, I]
        x2d = x.reshape(T * B, I)
        if has_bias:
            bias = torch.cat([_input_bias(cell, *_direction_weights(weights, d)[2:4], H)
                              for d in range(D)])
            xp = torch.addmm(bias, x2d, w_ih.t())
        else:
            xp = x2d @ w_ih.t()
        xp = xp.view(T, B, D, G, H)
        whh = _joined(torch.stack, [weights[d * _PER_DIRECTION + 1] for d in range(D)])
        bhn = None
        if cell == "GRU" and has_bias:
            bhn = torch.stack([weights[d * _PER_DIRECTION + 3][2 * H:] for d in range(D)]).contiguous()
        whr = None
        if w_hr0 is not None:
            whr = _joined(torch.stack, [weights[d * _PER_DIRECTION + 4] for d in range(D)])
        lengths_dev = None if lengths is None else lengths.to(device=x.device, dtype=torch.int32)
        h0c = None if h0 is None else h0.contiguous()
        c0c = None if c0 is None else c0.contiguous()
        training = any(ctx.needs_input_grad)
        y, h_n, c_n, act, cs = kernels.forward(xp, whh, bhn, whr, h0c, c0c, lengths_dev, cell,
                                               training)
        ctx.set_materialize_grads(False)
        ctx.cell, ctx.dims = cell, (T, B, I, D, G, H, K)
        ctx.has_bias, ctx.has_h0, ctx.has_c0 = has_bias, h0 is not None, c0 is not None
        if training:
            ctx.save_for_backward(x, h0c, c0c, y, act, cs, whh, whr, w_ih, lengths_dev)
        y = y.view(T, B, D * K)
        return (y, h_n, c_n) if cell == "LSTM" else (y, h_n)

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n=None):
        x, h0, c0, y, act, cs, whh, whr, w_ih, lengths = ctx.saved_tensors
        cell = ctx.cell
        T, B, I, D, G, H, K = ctx.dims
        if dy is not None:
            dy = dy.reshape(T, B, D, K).contiguous()
        dh_n = None if dh_n is None else dh_n.contiguous()
        dc_n = None if dc_n is None else dc_n.contiguous()
        dxp, dhg, dhs, dh0, dc0 = kernels.backward(dy, dh_n, dc_n, act, cs, y, h0, c0, lengths,
                                                   whh, whr, cell)
        need = ctx.needs_input_grad  # (cell, lengths, x, h0, c0, *weights)
        TB = T * B
        grad_x = None
        if need[2]:
            grad_x = (dxp.view(TB, D * G * H) @ w_ih).view(T, B, I)
        x2d = x.reshape(TB, I)
        grads = []
        for d in range(D):
            g_in = dxp[:, :, d].reshape(TB, G * H)
            if cell == "GRU":
                g_rec = torch.cat([g_in[:, :2 * H], dhg[d].reshape(TB, H)], dim=1)
            else:
                g_rec = g_in
            base = 5 + d * _PER_DIRECTION
            grad_w_ih = g_in.t() @ x2d if need[base] else None
            grad_w_hh = None
            if need[base + 1]:
                h0_d = h0[d] if h0 is not None else y.new_zeros(B, K)
                h_prev = _previous_states(y[:, :, d], h0_d, lengths, reverse=d == 1)
                grad_w_hh = g_rec.t() @ h_prev.reshape(TB, K)
            grad_b_ih = g_in.sum(0) if ctx.has_bias and need[base + 2] else None
            grad_b_hh = g_rec.sum(0) if ctx.has_bias and need[base + 3] else None
            grad_w_hr = None
            if whr is not None and need[base + 4]:
                o, c = act[d, :, :, 3], cs[d]
                math = torch.promote_types(o.dtype, torch.float32)  # cell math in >= fp32
                h_cell = (o.to(math) * torch.tanh(c.to(math))).to(o.dtype)  # [T, B, H]
                grad_w_hr = dhs[d].reshape(TB, K).t() @ h_cell.reshape(TB, H)
            grads += [grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, grad_w_hr]
        grad_h0 = dh0 if ctx.has_h0 and need[3] else None
        grad_c0 = dc0 if ctx.has_c0 and need[4] else None
        return (None, None, grad_x, grad_h0, grad_c0, *grads)
