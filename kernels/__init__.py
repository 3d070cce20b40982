"""Triton kernels of tritonrnn and their host launchers (no autograd, no nn.Module).

Installed as ``tritonrnn.kernels``. Set TRITON_INTERPRET=1 before importing to run the
kernels on CPU tensors under Triton's interpreter.
"""
from . import config, launches

if config.INTERPRET:
    from . import interpreter_compat
    interpreter_compat.apply()  # Triton 3.6's interpreter under NumPy >= 2.4: see there
from .recurrence import backward, forward

__all__ = ["backward", "config", "forward", "launches"]
