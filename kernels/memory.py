"""Allocation of kernel outputs.

While poisoning is on (kernels/testing.py: poison_outputs, which tests/conftest.py turns on
through TRITONRNN_POISON=1) fresh floating-point outputs are filled with NaN, so a test fails
on any element a kernel forgot to write. Off, an output is a plain torch.empty.
"""
import torch

poison = False


def new_output(shape, dtype, device):
    if poison and dtype.is_floating_point:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)
