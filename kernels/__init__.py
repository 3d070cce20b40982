"""Triton kernels of tritonrnn and their host launchers (no autograd, no nn.Module).

Installed as ``tritonrnn.kernels``. Set TRITON_INTERPRET=1 before importing to run the
kernels on CPU tensors under Triton's interpreter. Test hooks (launch counting, NaN
poisoning, the interpreter's traffic counter, forced plans) are in kernels/testing.py,
imported only by whoever uses them.
"""
from . import config

if config.INTERPRET:
    from . import interpreter_compat
    interpreter_compat.apply()  # Triton 3.6's interpreter under NumPy >= 2.4: see there
from .recurrence import backward, forward

__all__ = ["backward", "config", "forward"]
