"""Where the Triton kernels can run."""
from tritonrnn.kernels.config import INTERPRET


def triton_enabled(tensor):
    """True when the Triton kernels handle this tensor: always on CUDA; on CPU only when
    Triton's interpreter is on (TRITON_INTERPRET=1 before triton is imported). Otherwise the
    modules delegate to PyTorch's native implementation with the same weights."""
    return tensor.is_cuda or (INTERPRET and tensor.device.type == "cpu")
