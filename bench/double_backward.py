"""Time of a double backward through tritonrnn against torch.nn: a gradient penalty.

The timed part is what second order adds after the forward pass: g = grad(loss, x,
create_graph=True), then backward of |g|^2 to every parameter. tritonrnn does it on its
differentiable path (tritonrnn/ops.py: recompute with torch ops, one Python step per
timestep), so it costs about what torch.nn's own step-by-step path costs; cuDNN has no double
backward, so on CUDA torch.nn runs with cuDNN off. The forward pass is not timed (on CPU
tritonrnn's runs under Triton's interpreter).

    python -m bench.double_backward        # prints a small table
"""
import os
import statistics
import time

if __name__ == "__main__" and "TRITON_INTERPRET" not in os.environ:
    import torch as _torch  # noqa: E402
    if not _torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"  # before tritonrnn/triton are imported

import torch  # noqa: E402
from torch import nn  # noqa: E402

import tritonrnn  # noqa: E402

# (class name, constructor arguments, T, B)
CONFIGS = [("LSTM", dict(input_size=32, hidden_size=64), 32, 8),
           ("GRU", dict(input_size=32, hidden_size=64), 32, 8),
           ("LSTM", dict(input_size=32, hidden_size=64, num_layers=2, bidirectional=True), 32, 8)]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def second_order_seconds(module, x, repeats=3):
    """Median seconds of grad(create_graph=True) + backward of the penalty, after an untimed
    forward."""
    times = []
    for _ in range(repeats):
        x = x.detach().requires_grad_()
        y = module(x)[0]
        _sync(x.device)
        start = time.perf_counter()
        (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        g.square().sum().backward()
        _sync(x.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"double backward (gradient penalty), {device}, float32, median of 3")
    print("| config | T | B | tritonrnn s | torch.nn s | ratio |")
    print("|---|---|---|---|---|---|")
    for name, kwargs, T, B in CONFIGS:
        torch.manual_seed(0)
        ref = getattr(nn, name)(**kwargs).to(device)
        ours = tritonrnn.convert(getattr(nn, name)(**kwargs).to(device))
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(T, B, kwargs["input_size"], device=device)
        with torch.backends.cudnn.flags(enabled=False):  # cuDNN has no double backward
            theirs = second_order_seconds(ref, x)
        mine = second_order_seconds(ours, x)
        label = f"{name} " + " ".join(f"{k}={v}" for k, v in kwargs.items())
        print(f"| {label} | {T} | {B} | {mine:.3f} | {theirs:.3f} | {mine / theirs:.2f} |")


if __name__ == "__main__":
    main()
