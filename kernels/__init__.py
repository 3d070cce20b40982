"""Triton kernels of tritonrnn and their host launchers (no autograd, no nn.Module).

Installed as ``tritonrnn.kernels``. Set TRITON_INTERPRET=1 before importing to run the
kernels on CPU tensors under Triton's interpreter.
"""
from . import config, launches
from .recurrence import backward, forward

__all__ = ["backward", "config", "forward", "launches"]
