"""The dtype naming table: one name per arithmetic a recurrence can run in, its torch dtype
and its Triton dtype.

Names are what the compile report, the pruned list, the tuning table and the tuner write:
"fp32" and "tf32" are both float32 tensors, with IEEE or TF32 matmuls (torch's recurrent
layers follow ``torch.backends.cudnn.allow_tf32``, and the two compile to different kernels).
"""
import contextlib
from dataclasses import dataclass

import torch
import triton.language as tl


@dataclass(frozen=True)
class DType:
    name: str
    torch: torch.dtype
    tl: object  # triton.language dtype
    tf32: bool = False  # float32 tensors whose matmuls run in TF32

    @property
    def itemsize(self):
        return torch.empty((), dtype=self.torch).element_size()


DTYPES = {d.name: d for d in (
    DType("fp32", torch.float32, tl.float32),
    DType("tf32", torch.float32, tl.float32, tf32=True),
    DType("fp16", torch.float16, tl.float16),
    DType("bf16", torch.bfloat16, tl.bfloat16),
    DType("fp64", torch.float64, tl.float64),
)}
# The name of each torch dtype apart from float32, whose name depends on the TF32 switch.
_NAME_OF = {d.torch: d.name for d in DTYPES.values() if d.torch != torch.float32}


def torch_dtype(name):
    """torch dtype of a table name ("tf32" is float32 tensors)."""
    return DTYPES[name].torch


def tl_dtype(dtype):
    """Triton dtype of a torch dtype or table name."""
    return DTYPES[dtype if isinstance(dtype, str) else storage_name(dtype)].tl


def storage_name(dtype):
    """Name of a torch dtype as stored ("fp32" for float32 whatever the TF32 switch says)."""
    return "fp32" if dtype == torch.float32 else _NAME_OF[dtype]


def math_dtype_name(dtype):
    """Name of the matmul arithmetic a recurrence on `dtype` tensors uses under the current
    TF32 setting: "tf32" for float32 tensors when torch.backends.cudnn.allow_tf32 is set
    (torch's default for its recurrent layers), else the storage name."""
    if dtype == torch.float32 and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return storage_name(dtype)


@contextlib.contextmanager
def tf32_for(name):
    """Within: float32 tensors use the arithmetic `name` says ("tf32" on, "fp32" off); other
    names leave the switch alone."""
    saved = torch.backends.cudnn.allow_tf32
    named = DTYPES.get(name)
    if named is not None and named.torch == torch.float32:
        torch.backends.cudnn.allow_tf32 = named.tf32
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved
